"""The owner's board as served, against a bare Flask + Jinja page of the same cards.

One run on a fresh database: a workspace with two lead generators, then ``--deals``
open deals made by the app's builder and spread over the six open stages (New to
Negotiation; a third of them due a touch, a third with a decision date from five
days ago to three weeks on, arrivals over 30 days), 500 clients and 2,000 closed
deals (Won and Lost, closed over the last 90 days: a third of them show). Then
gunicorn serves Conveyor and the yardstick (``bare_app.py``: one SELECT of the same
cards and a Jinja page of them in the board card's markup) with the same settings.
The owner signs in through the login form; ``GET /board`` and the bare ``/board``
are timed one at a time, in alternating slices (both meet the same background
load), and so is the board's pulse.

The SQL statements of one board request and of one pulse are counted in this
process (the app as served, production settings, through its test client). With
``--profile N``, cProfile then runs over N board requests in this process and the
functions that cost the most are printed (CPU time).

    .venv/bin/python benchmarks/board.py [--deals 10000] [--requests 200] [--profile 200]
"""

import cProfile
import io
import pstats
import re
import sys
import time

import harness as h
import psycopg
import requests

TARGET = 3.0
MAX_STATEMENTS = 10
SLICE = 10  # requests per turn when the two apps alternate


def seed(app, tenant_id: int, owner_email: str, deals: int, source: tuple[int, str]) -> float:
    """Open deals over the open stages, clients and closed deals, by the app's builder."""
    import random
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from app.builder.leads import LeadDraft, build_leads
    from app.extensions import db
    from app.models import Phase, Stage, User
    from app.tenancy import tenant_scope

    rng, started = random.Random(tenant_id), time.monotonic()
    now = datetime.now(UTC)
    with app.app_context(), tenant_scope(tenant_id):
        owner_id = db.session.scalar(sa.select(User.id).where(User.email == owner_email))
        stages = list(
            db.session.scalars(
                sa.select(Stage).where(Stage.tenant_id == tenant_id).order_by(Stage.position)
            )
        )
        open_stages = [s for s in stages if s.phase != Phase.ACCOUNT and not s.is_won | s.is_lost]
        plan = [(s, deals // len(open_stages)) for s in open_stages]
        plan[0] = (plan[0][0], plan[0][1] + deals - sum(n for _, n in plan))
        plan += [(s, 500) for s in stages if s.phase == Phase.ACCOUNT]
        plan += [(s, 1000) for s in stages if s.is_won or s.is_lost]
        n = 0
        for stage, count in plan:
            for first in range(0, count, 2500):
                drafts = []
                for _ in range(first, min(count, first + 2500)):
                    kind = n % 3
                    drafts.append(
                        LeadDraft(
                            name=f"Person {n}",
                            email=f"p{n}@seed.example.com",
                            phone=f"+1212{n % 10_000_000:07d}",
                            company=f"Company {n % 4999}",
                            value_minor=rng.randrange(1, 500) * 10_000,
                            source_id=source[0],
                            source_name=source[1],
                            owner_id=owner_id,
                            arrived_at=now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                            next_touch_on=now.date() + timedelta(days=n % 7 - 3)
                            if kind == 1
                            else None,
                            decision_date=now.date() + timedelta(days=n % 26 - 5)
                            if kind == 2 and stage.phase == Phase.CONVERSION
                            else None,
                            flagged=n % 97 == 0,
                        )
                    )
                    n += 1
                route = stage.phase == Phase.GENERATION
                build_leads(tenant_id, drafts, stage.id, route=route, now=now)
                db.session.commit()
                if n == len(drafts):  # statistics once the tables have rows (see harness)
                    db.session.execute(sa.text("ANALYZE contact, lead"))
                    db.session.commit()
        db.session.remove()
    return time.monotonic() - started


def close_deals(dsn: str, tenant_id: int) -> None:
    """Set-up only: the deals seeded into Won and Lost closed over the last 90 days."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE lead SET won_at = CASE WHEN stage.is_won THEN closed END,"
            " closed_at = CASE WHEN stage.is_lost THEN closed END, last_activity_at = closed"
            " FROM (SELECT lead.id, now() - (lead.id %% 90) * interval '1 day' AS closed"
            "       FROM lead) AS c, stage"
            " WHERE c.id = lead.id AND stage.id = lead.stage_id AND lead.tenant_id = %s"
            " AND (stage.is_won OR stage.is_lost)",
            (tenant_id,),
        )


def signed_in_client(app, email: str):
    """The app's test client signed in through the login form (https: cookies are Secure)."""
    client = app.test_client()
    base = "https://localhost"
    form = client.get("/login", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    client.post(
        "/login",
        base_url=base,
        data={"email": email, "password": h.PASSWORD, "csrf_token": token},
        headers={"Referer": f"{base}/login"},
    )
    if client.get("/board", base_url=base).status_code != 200:
        raise RuntimeError(f"the test client could not sign in as {email}")
    return lambda path, **kw: client.get(path, base_url=base, **kw)


def count_statements(app, get, path: str, show: bool = False, **kw) -> tuple[int, int]:
    """SQL statements one request sends (after a first request warmed the caches)."""
    import sqlalchemy as sa

    from app.extensions import db

    with app.app_context():
        engine = db.engine
    statements = []

    def note(conn, cursor, statement, parameters, *args):
        statements.append((statement, parameters))

    get(path, **kw)
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        answer = get(path, **kw)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    if show:  # each statement, and the plans of those over the workspace's leads
        for statement, parameters in statements:
            print(" ".join(statement.split()), end="\n\n")
            if "FROM lead" in statement:
                with engine.connect() as conn:
                    plan = conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters)
                    print("\n".join(row[0] for row in plan), end="\n\n")
    return len(statements), answer.status_code


def profile(get, count: int) -> str:
    started = time.process_time()
    for _ in range(count):
        get("/board")
    plain = 1000 * (time.process_time() - started) / count
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    for _ in range(count):
        get("/board")
    profiler.disable()
    cpu = 1000 * (time.process_time() - started) / count
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(45)
    return (
        f"in-process CPU per board: {plain:.1f} ms ({cpu:.1f} ms under cProfile)\n" + out.getvalue()
    )


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--in-process-only", action="store_true", help="count statements and profile; no timing"
    )
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("board", args.ref) as logdir, h.Database("board") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        app = h.make_app(env)
        seconds = seed(
            app,
            workspace["tenant_id"],
            workspace["owner"],
            args.deals,
            (workspace["source_id"], "Bench API"),
        )
        close_deals(db.dsn, workspace["tenant_id"])
        h.log(f"{args.deals:,} open deals, 500 clients, 2,000 closed built in {seconds:.1f} s")
        h.analyze(db.dsn)
        if args.in_process_only:
            get = signed_in_client(app, workspace["owner"])
            print(f"statements per board: {count_statements(app, get, '/board', show=True)[0]}")
            print(profile(get, args.profile or args.requests))
            return 0
        web = h.gunicorn("conveyor", "wsgi:app", env, logdir)
        bare_env = {**env, "BENCH_BARE_DSN": db.dsn, "PYTHONPATH": str(h.REPO / "benchmarks")}
        bare = h.gunicorn("bare", "bare_app:app", bare_env, logdir)
        try:
            web.start()
            bare.start()
            session = h.sign_in(web.port, workspace["owner"])
            board = session.page("GET", "/board").text
            cards = board.count('class="card deal')
            stamp = re.search(r"stamp=([^\"&]+)", board)
            pulse = f"/board/pulse?stamp={stamp.group(1) if stamp else ''}"
            bare_path = f"/board?tenant={workspace['tenant_id']}"
            bare_page = requests.get(f"http://{h.HOST}:{bare.port}{bare_path}", timeout=60).text
            bare_cards = bare_page.count('class="card deal')

            def conveyor(path: str):
                return session.page("GET", path)

            def baseline(path: str):
                return requests.get(f"http://{h.HOST}:{bare.port}{path}", timeout=60)

            board_ms, bare_ms = [], []
            with h.CpuMeter({}, "") as load:
                for turn in range(0, args.requests, SLICE):
                    n = min(SLICE, args.requests - turn)
                    board_ms += h.time_pages(conveyor, ["/board"], n, warmup=2 if turn else 5)
                    bare_ms += h.time_pages(baseline, [bare_path], n, warmup=2 if turn else 5)
            cpu_count = max(20, args.requests // 2)
            with h.CpuMeter({"conveyor": web.pid}, db.dsn) as cpu:
                h.time_pages(conveyor, ["/board"], cpu_count, warmup=0)
            with h.CpuMeter({"bare": bare.pid}, db.dsn) as bare_cpu:
                h.time_pages(baseline, [bare_path], cpu_count, warmup=0)
            pulse_ms = h.time_pages(conveyor, [pulse], args.requests)
        finally:
            web.stop()
            bare.stop()
        get = signed_in_client(app, workspace["owner"])
        board_sql, board_status = count_statements(app, get, "/board")
        htmx_sql, _ = count_statements(app, get, "/board", headers={"HX-Request": "true"})
        pulse_sql, _ = count_statements(app, get, pulse)
        profiled = profile(get, args.profile) if args.profile else ""
        h.flush_redis()
    p95, bare_p95 = h.percentile(board_ms, 0.95), h.percentile(bare_ms, 0.95)
    p50, bare_p50 = h.percentile(board_ms, 0.5), h.percentile(bare_ms, 0.5)
    ratio = p95 / bare_p95
    met = ratio <= TARGET and board_sql <= MAX_STATEMENTS
    if profiled:
        print(profiled)
    h.report(
        [
            h.Figure(
                "board",
                h.command(),
                f"`GET /board` p95 {p95:.1f} ms (p50 {p50:.1f}), {cards} cards of "
                f"{args.deals:,} open deals, {board_sql} SQL statements "
                f"({htmx_sql} for its htmx refresh); pulse p95 "
                f"{h.percentile(pulse_ms, 0.95):.1f} ms, {pulse_sql} statements",
                f"bare Flask + Jinja page of the same {bare_cards} cards p95 {bare_p95:.1f} ms "
                f"(p50 {bare_p50:.1f})",
                f"**{ratio:.2f}×** (p50 {p50 / bare_p50:.2f}×)",
                f"≤ {TARGET:.0f}×, ≤ {MAX_STATEMENTS} statements",
                met,
            )
        ],
        [
            "Served: gunicorn, 4 sync workers each, production settings, nothing frozen or "
            f"preloaded; requests one at a time, the two apps alternating every {SLICE}.",
            f"CPU ms per board request ({cpu_count} more, after the timing): "
            f"{cpu.per(cpu_count)}; per bare request: {bare_cpu.per(cpu_count)}.",
            f"machine {100 * load.busy:.0f} % busy during the timing.",
            f"first board answered {board_status}.",
        ],
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
