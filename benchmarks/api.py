"""The public API's listing, and webhook fan-out, as an integrator meets them.

One run on a fresh database: a workspace with ``--leads`` leads made by the app's builder
and an owner's read-write token (made by the service the settings page uses).

- **Listing**: gunicorn serves the API; ``GET /api/v1/leads?limit=100`` is walked from the
  first page to the last with ``next_cursor``, ``--walks`` times, one page at a time: p95
  per page. The same walk through the app in this process counts SQL statements per page.
- **Fan-out**: ``--endpoints`` loopback receivers (each verifies every delivery with the
  ``standardwebhooks`` library) subscribe to ``lead.created``; ``--events`` leads are built
  in one transaction while ``worker.py`` runs: the time from that commit to the last
  verified delivery, and whether each receiver got each event exactly once (by webhook-id).

    .venv/bin/python benchmarks/api.py [--leads 10000] [--walks 3] [--events 1000]
"""

import sys
import time

import harness as h
import requests

PAGE = 100
TARGET_QUERIES = 5


def _token(app, tenant_id: int, owner_email: str) -> str:
    import sqlalchemy as sa

    from app.api import tokens
    from app.extensions import db
    from app.models import Membership, Tenant, TokenAccess, User
    from app.tenancy import tenant_scope

    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        owner = db.session.scalar(sa.select(User).where(User.email == owner_email))
        seat = db.session.scalar(
            sa.select(Membership).where(
                Membership.tenant_id == tenant_id, Membership.user_id == owner.id
            )
        )
        _, secret = tokens.create_token(tenant, owner, "Bench", TokenAccess.WRITE, seat)
        db.session.remove()
    return secret


def _walk(get) -> list[float]:
    """Milliseconds per page of one walk from the first page to the last."""
    ms, cursor = [], None
    while True:
        query = f"/api/v1/leads?limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        started = time.perf_counter()
        answer = get(query)
        ms.append(1000 * (time.perf_counter() - started))
        if answer.status_code != 200:
            raise RuntimeError(f"GET {query}: {answer.status_code} {answer.text[:300]}")
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return ms


def _queries_per_page(app, secret: str) -> tuple[list[int], int]:
    """SQL statements per page of a walk through the app in this process; rows seen."""
    import sqlalchemy as sa

    from app.extensions import db

    counts, seen, cursor = [], 0, None
    with app.app_context():
        engine = db.engine
    statements = []

    def count(*_args, **_kwargs):
        statements.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    client = app.test_client()
    try:
        while True:
            statements.clear()
            query = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
            answer = client.get(
                "/api/v1/leads", query_string=query, headers={"Authorization": f"Bearer {secret}"}
            )
            counts.append(len(statements))
            seen += len(answer.json["data"])
            cursor = answer.json["next_cursor"]
            if cursor is None:
                return counts, seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _fan_out(app, env, logdir, tenant_id: int, owner_email: str, events: int, endpoints: int):
    """Seconds from the commit of ``events`` new leads to the last verified delivery."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Membership, Tenant, User
    from app.tenancy import tenant_scope
    from app.webhooks import endpoints as service
    from tests.webhook_receiver import Receiver

    receivers = [Receiver() for _ in range(endpoints)]
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        owner = db.session.scalar(sa.select(User).where(User.email == owner_email))
        seat = db.session.scalar(
            sa.select(Membership).where(
                Membership.tenant_id == tenant_id, Membership.user_id == owner.id
            )
        )
        for n, receiver in enumerate(receivers):
            endpoint = service.create_endpoint(
                tenant, seat, receiver.url, f"Bench {n}", ["lead.created"]
            )
            receiver.secret = endpoint.secret
        db.session.remove()
    work = h.worker(env, logdir)
    try:
        work.start(health=None)
        time.sleep(3)  # the worker up and waiting
        started = time.monotonic()
        h.build_leads(app, tenant_id, events, tag="fanout", batch=events)
        committed = time.monotonic()

        def all_delivered() -> bool:
            return all(len(r.unique()) >= events for r in receivers)

        h.wait_for(all_delivered, 900, "every event at every endpoint", every=0.05)
        seconds = time.monotonic() - committed
        repeats = sum(len(r.received) - len(r.unique()) for r in receivers)
        wrong = sum(1 for r in receivers for x in r.unique() if x["type"] != "lead.created")
    finally:
        work.stop()
        for receiver in receivers:
            receiver.close()
    return seconds, committed - started, repeats, wrong


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--walks", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("api", args.ref) as logdir, h.Database("api") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        env.update(API_RATE_LIMIT="1000000/minute", WEBHOOKS_ALLOW_LOOPBACK="1")
        workspace = h.set_up_workspace(env)
        app = h.make_app(env)
        seconds = h.build_leads(app, workspace["tenant_id"], args.leads, spread_days=30)
        h.log(f"{args.leads:,} leads built in {seconds:.1f} s")
        h.analyze(db.dsn)
        secret = _token(app, workspace["tenant_id"], workspace["owner"])
        queries, seen = _queries_per_page(app, secret)
        web = h.gunicorn("conveyor", "wsgi:app", env, logdir)
        try:
            web.start()
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {secret}"
            base = f"http://{h.HOST}:{web.port}"

            def get(path: str):
                return session.get(base + path, timeout=60)

            _walk(get)  # warm-up
            with h.CpuMeter({"conveyor": web.pid}, db.dsn) as cpu:
                page_ms = [ms for _ in range(args.walks) for ms in _walk(get)]
        finally:
            web.stop()
        fan_out, build_s, repeats, wrong = _fan_out(
            app,
            env,
            logdir,
            workspace["tenant_id"],
            workspace["owner"],
            args.events,
            args.endpoints,
        )
        h.flush_redis()
    p95, most = h.percentile(page_ms, 0.95), max(queries)
    deliveries = args.events * args.endpoints
    listed_ok = seen == args.leads and most <= TARGET_QUERIES
    h.report(
        [
            h.Figure(
                "API: list leads",
                h.command(),
                f"{args.leads:,} leads by pages of {PAGE} ({len(queries)} pages, each lead "
                f"once: {seen == args.leads}), {args.walks} walks: page p95 {p95:.1f} ms, "
                f"p50 {h.percentile(page_ms, 0.5):.1f} ms; **at most {most} SQL statements "
                "per page**",
                "",
                "",
                f"≤ {TARGET_QUERIES} queries per page",
                listed_ok,
            ),
            h.Figure(
                "API: webhook fan-out",
                "same run",
                f"{args.events:,} `lead.created` × {args.endpoints} loopback endpoints = "
                f"{deliveries:,} deliveries, each verified (standardwebhooks): **last verified "
                f"{fan_out:.1f} s after the commit** ({deliveries / fan_out:.0f}/s); "
                f"{repeats} repeats, {wrong} wrong types",
                "",
                "",
                "all delivered, none lost",
                wrong == 0,
            ),
        ],
        [
            f"Leads built in {build_s:.1f} s (one transaction) before the clock started.",
            f"CPU ms per page: {cpu.per(len(page_ms))}; machine {100 * cpu.busy:.0f} % busy.",
        ],
    )
    return 0 if listed_ok and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
