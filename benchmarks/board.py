"""The board as served, against a bare Jinja page of as many cards from the same database.

One run on a fresh database: a workspace with two lead generators and ``--leads``
leads made by the app's builder (arrivals over 30 days), then gunicorn serving
Conveyor and the bare app (``bare_app.py``, same settings). The owner signs in
through the login form; ``GET /board`` and its pulse are timed one at a time, and
so is the bare app's ``/cards`` with the same number of cards the board drew.

    .venv/bin/python benchmarks/board.py [--leads 5000] [--requests 200]
"""

import re
import sys

import harness as h
import requests

TARGET = 3.0


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("board", args.ref) as logdir, h.Database("board") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        seconds = h.build_leads(
            h.make_app(env),
            workspace["tenant_id"],
            args.leads,
            sources=[(workspace["source_id"], "Bench API")],
            spread_days=30,
        )
        h.log(f"{args.leads:,} leads built in {seconds:.1f} s")
        h.analyze(db.dsn)
        web = h.gunicorn("conveyor", "wsgi:app", env, logdir)
        bare = h.bare_app(db.dsn, logdir)
        try:
            web.start()
            bare.start()
            session = h.sign_in(web.port, workspace["owner"])
            board = session.page("GET", "/board").text
            cards = board.count('class="card deal')
            stamp = re.search(r"stamp=([^\"&]+)", board)
            pulse = f"/board/pulse?stamp={stamp.group(1) if stamp else ''}"

            def conveyor(path: str):
                return session.page("GET", path)

            def baseline(path: str):
                return requests.get(f"http://{h.HOST}:{bare.port}{path}", timeout=60)

            bare_path = f"/cards?tenant={workspace['tenant_id']}&limit={cards}"
            with h.CpuMeter({"conveyor": web.pid}, db.dsn) as cpu:
                board_ms = h.time_pages(conveyor, ["/board"], args.requests)
            pulse_ms = h.time_pages(conveyor, [pulse], args.requests)
            bare_ms = h.time_pages(baseline, [bare_path], args.requests)
            bare_cards = baseline(bare_path).text.count('class="card"')
        finally:
            web.stop()
            bare.stop()
        h.flush_redis()
    p95, bare_p95 = h.percentile(board_ms, 0.95), h.percentile(bare_ms, 0.95)
    ratio = p95 / bare_p95
    h.report(
        [
            h.Figure(
                "board",
                h.command(),
                f"`GET /board` p95 {p95:.1f} ms (p50 {h.percentile(board_ms, 0.5):.1f}), "
                f"{cards} cards of {args.leads:,} leads; pulse p95 "
                f"{h.percentile(pulse_ms, 0.95):.1f} ms",
                f"bare Jinja page of {bare_cards} cards p95 {bare_p95:.1f} ms",
                f"**{ratio:.2f}×**",
                f"≤ {TARGET:.0f}×",
                ratio <= TARGET,
            )
        ],
        [f"CPU ms per board: {cpu.per(len(board_ms))}; machine {100 * cpu.busy:.0f} % busy."],
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
