"""The radar at 200,000 leads: its source page and funnel, as served.

One run on a fresh database: a workspace with two lead generators, four more
sources and ``--leads`` leads made by the app's builder (arrivals over 90 days,
round robin over the sources), ``VACUUM ANALYZE``, then gunicorn; the owner signs in
and each page is timed one at a time for 30 and 90 days.

    .venv/bin/python benchmarks/radar.py [--leads 200000] [--requests 30]
"""

import sys

import harness as h

TARGET_MS = 300
PAGES = ("/radar?days=30", "/radar?days=90", "/radar/funnel?days=30", "/radar/funnel?days=90")


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=30, help="per page")
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("radar", args.ref) as logdir, h.Database("radar") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        sources = [(workspace["source_id"], "Bench API")]
        for name in ("Partner", "Ads", "Fair", "Referral"):
            made = h.flask(
                env, "source", "create", "--workspace", workspace["slug"], "--name", name
            )
            sources.append((made["id"], name))
        seconds = h.build_leads(
            h.make_app(env), workspace["tenant_id"], args.leads, sources=sources, spread_days=90
        )
        h.log(f"{args.leads:,} leads built in {seconds:.1f} s ({args.leads / seconds:,.0f}/s)")
        h.analyze(db.dsn)
        web = h.gunicorn("conveyor", "wsgi:app", env, logdir)
        try:
            web.start()
            session = h.sign_in(web.port, workspace["owner"])

            def get(path: str):
                return session.page("GET", path)

            timings = {page: h.time_pages(get, [page], args.requests, 3) for page in PAGES}
        finally:
            web.stop()
        h.flush_redis()
    p95 = {page: h.percentile(ms, 0.95) for page, ms in timings.items()}
    worst = max(p95.values())
    h.report(
        [
            h.Figure(
                "radar",
                h.command(),
                f"{args.leads:,} leads: "
                + "; ".join(f"`{page}` p95 {ms:.0f} ms" for page, ms in p95.items()),
                "",
                "",
                f"< {TARGET_MS} ms",
                worst < TARGET_MS,
            )
        ],
        [f"Seeding through the builder in one process: {args.leads / seconds:,.0f} leads/s."],
    )
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
