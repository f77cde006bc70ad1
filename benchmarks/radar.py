"""Server time and SQL queries of the conflict radar: /radar?days=30|90 and /conflicts.

One run, everything in-process on 127.0.0.1 and bounded:

1. a fresh PostgreSQL database (dropped at the end), migrations, Redis db 12 flushed;
2. bulk-seeded: one big workspace with 200,000 leads over the last 365 days across 50
   sources of different quality (verdicts: qualified, junk, unreachable, other lost
   reasons, won with values; first touches; 2 % flagged), 10 % as many spam posts in
   the inbox, 20,000 conflicts (20 % open); plus other workspaces (20 × 5,000 leads)
   so that the big one is not the whole table;
3. Flask test client requests as the big workspace's owner, each in its own context,
   timed after a warm-up, SQL statements counted (``before_cursor_execute``);
4. the slowest statements of each radar page, with EXPLAIN (ANALYZE, BUFFERS) of the
   slowest, to say what dominates; the database dropped.

    .venv/bin/python benchmarks/radar.py [--small]
"""

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from _seed import FreshDatabase, HardTimeout, QueryCounter, insert_leads, insert_rows, log  # noqa: E402

FULL = {
    "big_leads": 200_000,
    "sources": 50,
    "conflicts": 20_000,
    "others": 20,
    "other_leads": 5_000,
    "requests": 50,
    "warmup": 5,
}
SMALL = {
    "big_leads": 20_000,
    "sources": 50,
    "conflicts": 2_000,
    "others": 5,
    "other_leads": 1_000,
    "requests": 15,
    "warmup": 3,
}
SPREAD_DAYS = 365
SPAM_SHARE = 0.10
TARGET_P95_MS = 300.0
OTHER_REASONS = ("no_problem", "no_money", "bad_timing", "competitor", "other")
CONFLICT_KINDS = (
    "source_quality",
    "promise_flagged",
    "promise_beyond_authority",
    "cadence_missed",
    "lead_untouched",
)


# --------------------------------------------------------------------------- seeding


def radar_leads(ws, count: int, rng: random.Random, now: datetime) -> list[dict]:
    quality = {
        source: (rng.uniform(0.03, 0.40), rng.uniform(0.03, 0.15), rng.uniform(0.08, 0.45))
        for source in ws.sources
    }
    rows = []
    for i in range(count):
        source = rng.choice(ws.sources) if rng.random() < 0.99 else None
        junk, unreachable, qualified = quality.get(source, (0.1, 0.1, 0.2))
        created = now - timedelta(seconds=rng.uniform(0, SPREAD_DAYS * 86400))
        row = {
            "title": f"Inquiry {i}",
            "created_at": created,
            "last_activity_at": created + timedelta(hours=rng.uniform(0, 200)),
            "source_id": source,
            "flagged": rng.random() < 0.02,
            "utm": {"utm_source": "google"},
        }
        if rng.random() < 0.8:
            row["first_touch_at"] = created + timedelta(hours=rng.lognormvariate(1.0, 1.2))
        r = rng.random()
        if r < junk or r < junk + unreachable:
            row.update(
                stage_id=ws.stages["Lost"],
                lost_reason="junk" if r < junk else "unreachable",
                closed_at=created + timedelta(days=rng.uniform(0.1, 5)),
                owner_id=rng.choice(ws.members["lead_generator"]),
            )
        elif r < junk + unreachable + qualified:
            row["qualified_at"] = created + timedelta(hours=rng.uniform(1, 120))
            fate = rng.random()
            if fate < 0.25:
                row.update(
                    stage_id=ws.stages["Client"],
                    won_at=row["qualified_at"] + timedelta(days=rng.uniform(1, 30)),
                    value_minor=rng.randrange(100, 20_000) * 100,
                    owner_id=rng.choice(ws.members["account_manager"]),
                )
            elif fate < 0.45:
                row.update(
                    stage_id=ws.stages["Lost"],
                    lost_reason=rng.choice(OTHER_REASONS),
                    closed_at=row["qualified_at"] + timedelta(days=rng.uniform(1, 30)),
                    owner_id=rng.choice(ws.members["closer"]),
                )
            else:
                row.update(
                    stage_id=ws.stages[rng.choice(("Assigned", "Proposal", "Negotiation"))],
                    owner_id=rng.choice(ws.members["closer"]),
                )
        else:
            row.update(
                stage_id=ws.stages[rng.choice(("New", "Contacted", "Qualified"))],
                owner_id=rng.choice(ws.members["lead_generator"]),
            )
        rows.append(row)
    return rows


PATH = ("New", "Contacted", "Qualified", "Assigned", "Proposal", "Negotiation", "Won", "Client")


def stay_rows(ws, leads: list[dict], ids: list[int], rng: random.Random) -> list[dict]:
    """The finished stage stays (``stage_visit``) that led each lead to where it is:
    along the pipeline to its stage, or part way and then into Lost."""
    by_id = {stage_id: name for name, stage_id in ws.stages.items()}
    rows = []
    for lead, lead_id in zip(leads, ids, strict=True):
        name = by_id[lead["stage_id"]]
        if name == "Lost":
            steps = PATH[: rng.randint(1, 5 if lead.get("qualified_at") else 3)] + ("Lost",)
        else:
            steps = PATH[: PATH.index(name) + 1]
        entered = lead["created_at"]
        for here, there in zip(steps, steps[1:], strict=False):
            left = entered + timedelta(hours=rng.lognormvariate(3.0, 1.0))
            rows.append(
                {
                    "tenant_id": ws.id,
                    "lead_id": lead_id,
                    "stage_id": ws.stages[here],
                    "next_stage_id": ws.stages[there],
                    "owner_id": lead.get("owner_id"),
                    "forward": there != "Lost",
                    "lead_created_at": lead["created_at"],
                    "entered_at": entered,
                    "left_at": left,
                    "seconds": int((left - entered).total_seconds()),
                }
            )
            entered = left
    return rows


def spam_rows(ws, count: int, rng: random.Random, now: datetime) -> list[dict]:
    return [
        {
            "tenant_id": ws.id,
            "source_id": rng.choice(ws.sources),
            "received_at": now - timedelta(seconds=rng.uniform(0, SPREAD_DAYS * 86400)),
            "content_type": "application/x-www-form-urlencoded",
            "headers": {"User-Agent": "Mozilla/5.0 (bot)"},
            "body": b"name=Best+SEO&email=seo%40spam.example&website=http%3A%2F%2Fspam"
            b"&message=cheap",
            "body_truncated": False,
            "status": "spam",
            "http_status": 200,
            "reason": "honeypot",
            "errors": {},
            "fields": {"name": "Best SEO"},
            "lead_id": None,
        }
        for _ in range(count)
    ]


def conflict_rows(ws, count: int, lead_ids: list[int], rng, now) -> list[dict]:
    users = [u for ids in ws.members.values() for u in ids]
    rows = []
    for _ in range(count):
        kind = rng.choice(CONFLICT_KINDS)
        created = now - timedelta(seconds=rng.uniform(0, SPREAD_DAYS * 86400))
        status = rng.choices(("open", "acknowledged", "resolved"), (20, 10, 70))[0]
        rows.append(
            {
                "tenant_id": ws.id,
                "kind": kind,
                "status": status,
                "lead_id": None if kind == "source_quality" else rng.choice(lead_ids),
                "source_id": rng.choice(ws.sources) if kind == "source_quality" else None,
                "promise_id": None,
                "user_id": rng.choice(users),
                "details": {"junk_share": 41, "window": 20} if kind == "source_quality" else {},
                "resolution_note": "Talked to the partner." if status == "resolved" else None,
                "created_at": created,
                "resolved_at": created + timedelta(days=2) if status == "resolved" else None,
            }
        )
    return rows


def seed(app, params: dict, rng: random.Random, now: datetime) -> dict:
    from app.extensions import db
    from app.models import Conflict, InboxItem, StageVisit

    started = time.perf_counter()
    specs = [{"slug": "big", "members": {"lead_generator": 5, "closer": 8, "account_manager": 6}}]
    specs += [
        {
            "slug": f"other{i:02d}",
            "members": {"lead_generator": 2, "closer": 2, "account_manager": 2},
        }
        for i in range(params["others"])
    ]
    counts = {"leads": 0, "stays": 0, "spam": 0, "conflicts": 0}
    engine = _seed.seed_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        workspaces = _seed.seed_workspaces(conn, specs, now)
    for ws in workspaces:
        big = ws is workspaces[0]
        n_leads = params["big_leads"] if big else params["other_leads"]
        n_conflicts = params["conflicts"] if big else params["other_leads"] // 10
        with engine.begin() as conn:  # one transaction per workspace
            _seed.seed_sources(conn, ws, params["sources"] if big else 8, rng, now)
            rows = radar_leads(ws, n_leads, rng, now)
            ids = insert_leads(conn, ws.id, rows, rng)
            stays = stay_rows(ws, rows, ids, rng)
            insert_rows(conn, StageVisit.__table__, stays)
            counts["stays"] += len(stays)
            spam = spam_rows(ws, int(n_leads * SPAM_SHARE), rng, now)
            insert_rows(conn, InboxItem.__table__, spam)
            conflicts = conflict_rows(ws, n_conflicts, ids, rng, now)
            insert_rows(conn, Conflict.__table__, conflicts)
        counts["leads"] += len(ids)
        counts["spam"] += len(spam)
        counts["conflicts"] += len(conflicts)
        if big:
            log(
                f"big workspace: {len(ids)} leads, {len(spam)} spam posts, "
                f"{len(conflicts)} conflicts ({time.perf_counter() - started:.0f} s)"
            )
    engine.dispose()
    _seed.analyze(app)
    log(
        f"seeded {len(workspaces)} workspaces, {counts['leads']} leads, {counts['stays']} "
        f"finished stage stays, {counts['spam']} spam "
        f"posts, {counts['conflicts']} conflicts in {time.perf_counter() - started:.1f} s"
    )
    with app.app_context():
        in_period = {}
        for days in (30, 90):
            in_period[days] = db.session.execute(
                _seed.sa.text(
                    "SELECT count(*) FROM lead WHERE tenant_id = :t AND created_at >= :since"
                ),
                {"t": workspaces[0].id, "since": now - timedelta(days=days)},
            ).scalar()
        db.session.remove()
    return {"big": workspaces[0], "counts": counts, "in_period": in_period}


# --------------------------------------------------------------------------- measuring

PAGES = [
    ("/radar?days=30", "radar, 30 days"),
    ("/radar?days=90", "radar, 90 days"),
    ("/radar/funnel?days=30", "funnel (loaded into the radar page), 30 days"),
    ("/radar/funnel?days=90", "funnel (loaded into the radar page), 90 days"),
    ("/conflicts", "conflicts, first page"),
    ("/conflicts?status=open", "conflicts, open (the nav link)"),
    ("/conflicts?page=200", "conflicts, page 200 (offset 9,950)"),
]


def measure(app, seeded: dict, params: dict, counter: QueryCounter) -> dict:
    owner = _seed.login(app, seeded["big"].email("owner"))
    pages = {}
    for url, label in PAGES:
        timing = _seed.time_get(owner, [url], counter, params["requests"], params["warmup"])
        pages[label] = timing.row() | {"url": url}
        row = pages[label]
        log(
            f"{label}: p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms, "
            f"{row['queries_min']}-{row['queries_max']} queries, status {row['statuses']}"
        )
    return pages


def statements_of(app, client, url: str, counter: QueryCounter) -> list:
    counter.recording = []
    _seed.isolated(client.get, url)
    recorded, counter.recording = counter.recording, None
    return sorted(recorded, key=lambda r: -r[2])


def diagnose(app, seeded: dict, counter: QueryCounter) -> dict:
    owner = _seed.login(app, seeded["big"].email("owner"))
    found = {}
    for url in ("/radar?days=30", "/radar?days=90", "/conflicts"):
        ranked = statements_of(app, owner, url, counter)
        found[url] = {
            "statements": [(s * 1000, " ".join(sql.split())[:150]) for sql, _, s in ranked[:6]],
            "sql_total_ms": sum(s for _, _, s in ranked) * 1000,
        }
        sql, parameters, _ = (
            ranked[0] if url != "/conflicts" else next(r for r in ranked if "OFFSET" in r[0])
        )
        found[url]["explain"] = _seed.explain(app, sql, parameters)
        found[url]["explain_sql"] = " ".join(sql.split())
    return found


COMBINED_SQL = """
SELECT source_id,
       count(*) AS leads,
       count(*) FILTER (WHERE lost_reason = 'junk') AS junk,
       count(*) FILTER (WHERE lost_reason = 'unreachable') AS unreachable,
       count(*) FILTER (WHERE qualified_at IS NOT NULL) AS qualified,
       count(*) FILTER (WHERE won_at IS NOT NULL) AS won,
       coalesce(sum(value_minor) FILTER (WHERE won_at IS NOT NULL), 0) AS revenue,
       count(*) FILTER (WHERE NOT flagged) AS paid,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM first_touch_at - created_at) / 3600
       ) FILTER (WHERE first_touch_at IS NOT NULL) AS median_first_touch_hours
FROM lead
WHERE tenant_id = %(tenant)s AND created_at >= %(start)s AND created_at < %(end)s
  AND source_id IS NOT NULL
GROUP BY source_id
"""


def what_if_index(app, seeded: dict, params: dict, counter: QueryCounter) -> dict:
    """Not app code: the same pages after adding an index (tenant_id, created_at) in this
    throw-away database, and the four lead queries + the median as one SQL statement."""
    from app.extensions import db

    started = time.perf_counter()
    with (
        app.app_context(),
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(
            _seed.sa.text(
                "CREATE INDEX bench_ix_lead_tenant_created ON lead (tenant_id, created_at)"
            )
        )
        conn.execute(_seed.sa.text("ANALYZE lead"))
    built = time.perf_counter() - started
    owner = _seed.login(app, seeded["big"].email("owner"))
    pages = {}
    for url in ("/radar?days=30", "/radar?days=90"):
        timing = _seed.time_get(owner, [url], counter, params["requests"], params["warmup"])
        pages[url] = timing.row()
        log(f"what-if index, {url}: p50 {pages[url]['p50']:.1f} ms, p95 {pages[url]['p95']:.1f} ms")
    now = datetime.now(UTC)
    combined = {}
    for days in (30, 90):
        plan = _seed.explain(
            app,
            COMBINED_SQL,
            {"tenant": seeded["big"].id, "start": now - timedelta(days=days), "end": now},
        )
        combined[days] = next(
            line for line in plan.splitlines() if line.startswith("Execution Time")
        )
    return {"index_build_s": built, "pages": pages, "combined": combined}


# --------------------------------------------------------------------------- report


def print_report(params, seeded, pages, diagnosis, what_if, command, busy, load, seconds) -> None:
    print()
    print(
        f"# radar.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_seed.MACHINE}, "
        f"machine busy before start {busy * 100:.0f} %"
    )
    print(f"command: {command}")
    print(_seed.MachineLoad.describe(load))
    print(
        f"parameters: {params}; leads spread over {SPREAD_DAYS} days; big workspace "
        f"leads in the last 30 days: {seeded['in_period'][30]}, last 90 days: "
        f"{seeded['in_period'][90]}; seeded in total {seeded['counts']}"
    )
    print()
    print(
        "| page | requests | p50 ms | p95 ms | max ms | SQL ms p50 | queries/request "
        "| p95 < 300 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, row in pages.items():
        queries = (
            f"{row['queries_min']}"
            if row["queries_min"] == row["queries_max"]
            else f"{row['queries_min']}–{row['queries_max']}"
        )
        ok = "yes" if row["p95"] < TARGET_P95_MS else "NO"
        print(
            f"| {label} (`{row['url']}`) | {row['n']} | {row['p50']:.1f} | {row['p95']:.1f} "
            f"| {row['max']:.1f} | {row['sql_p50']:.1f} | {queries} | {ok} |"
        )
    for url, found in diagnosis.items():
        print()
        print(f"{url}: SQL {found['sql_total_ms']:.1f} ms in one request; slowest statements:")
        for spent, sql in found["statements"]:
            print(f"  {spent:8.2f} ms  {sql}")
        if "explain" in found:
            print(f"EXPLAIN (ANALYZE, BUFFERS) of the slowest:\n  {found['explain_sql']}")
            print(found["explain"])
    print()
    print(
        f"what-if (benchmark database only, not app code): index lead (tenant_id, created_at), "
        f"built in {what_if['index_build_s']:.1f} s:"
    )
    for url, row in what_if["pages"].items():
        before = next(p for p in pages.values() if p["url"] == url)
        print(
            f"  {url}: p50 {row['p50']:.1f} ms (was {before['p50']:.1f}), p95 {row['p95']:.1f} "
            f"ms (was {before['p95']:.1f}), SQL p50 {row['sql_p50']:.1f} ms "
            f"(was {before['sql_p50']:.1f})"
        )
    for days, line in what_if["combined"].items():
        print(f"  one grouped statement with FILTER and percentile_cont, {days} days: {line}")
    print(f"\nrun took {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick version")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=int, default=600, help="hard bound for the run (s)")
    args = parser.parse_args()
    params = dict(SMALL if args.small else FULL)
    command = ".venv/bin/python benchmarks/radar.py" + (" --small" if args.small else "")
    _seed.install_hard_timeout(args.timeout)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    busy = _seed.machine_busy_share()
    log(f"machine busy before start: {busy * 100:.0f} %")
    try:
        _seed.flush_redis()
        with FreshDatabase("radar") as database:
            app = _seed.make_app(database.dsn)
            from app.extensions import db

            try:
                seeded = seed(app, params, rng, now)
                with app.app_context():
                    counter = QueryCounter(db.engine)
                load = _seed.MachineLoad(database.name)
                pages = measure(app, seeded, params, counter)
                load = load.stop()
                diagnosis = diagnose(app, seeded, counter)
                what_if = what_if_index(app, seeded, params, counter)
            finally:
                with app.app_context():
                    db.engine.dispose()
        print_report(
            params,
            seeded,
            pages,
            diagnosis,
            what_if,
            command,
            busy,
            load,
            time.perf_counter() - started,
        )
        return 0
    except (HardTimeout, KeyboardInterrupt) as error:
        log(f"aborted: {error}")
        return 2
    finally:
        _seed.flush_redis()


if __name__ == "__main__":
    sys.exit(main())
