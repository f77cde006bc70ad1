"""The contact engine at scale: ``schedule.tick(now)`` over a day, and ``deliver_due``.

One run, everything on 127.0.0.1 and bounded:

1. a fresh PostgreSQL database (dropped at the end), migrations, Redis db 12 flushed;
2. bulk-seeded: 1,000 workspaces over 21 timezones (Europe/Moscow the largest group,
   America/New_York, Australia/Lord_Howe, Asia/Kolkata, Asia/Kathmandu, UTC, …; digest
   hour 8 for 90 %, 7 or 9 for the rest), 5 members each (5 % opted out of the digest),
   100 clients each (100,000) with next-touch dates spread around the day (85 % in the
   next week or up to 2 days late, 15 % 3–30 days late and already escalated), 10 open
   deals with decision dates, 10 new leads (some untouched), 20 closed deals, touches,
   and 14 days of sent outbox history;
3. a separate process (so that its peak RSS is the engine's, not the seeding's) runs
   ``schedule.tick(now)`` for every minute (or every ``--step`` minutes) of the UTC day
   2026-11-27, each tick in its own app context as the RQ job is, timing each tick and
   counting its SQL statements; 05:00 UTC is the "due hour" tick (08:00 in Moscow);
4. the same process then sends a batch of outbox rows (default 2,000, the oldest first,
   as the worker would) with ``delivery.deliver_due`` in calls of 50 (the worker's
   batch) to a local aiosmtpd server running in a third process, which counts them;
5. peak resident memory (``ru_maxrss``) of that process after start, after the ticks
   and after sending; the database dropped, Redis db 12 flushed.

    .venv/bin/python benchmarks/digest.py [--small] [--step MINUTES] [--batch N]
"""

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from _seed import FreshDatabase, HardTimeout, insert_leads, insert_rows, log  # noqa: E402

DAY = date(2026, 11, 27)
DUE_HOUR_TICK = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 08:00 in Europe/Moscow
FULL = {"workspaces": 1000, "clients": 100, "history_days": 14, "step": 1, "batch": 2000}
SMALL = {"workspaces": 100, "clients": 100, "history_days": 3, "step": 5, "batch": 300}
TIMEZONES = {
    "Europe/Moscow": 220,
    "America/New_York": 110,
    "Europe/Berlin": 80,
    "Europe/London": 60,
    "UTC": 50,
    "Asia/Kolkata": 60,
    "Asia/Yekaterinburg": 60,
    "America/Los_Angeles": 60,
    "Asia/Dubai": 40,
    "Asia/Novosibirsk": 40,
    "America/Chicago": 40,
    "Asia/Vladivostok": 30,
    "Asia/Tokyo": 30,
    "Australia/Sydney": 20,
    "Australia/Lord_Howe": 20,
    "Europe/Kaliningrad": 20,
    "America/Sao_Paulo": 20,
    "Asia/Kathmandu": 10,
    "America/St_Johns": 10,
    "Pacific/Chatham": 5,
    "Pacific/Kiritimati": 5,
}
MEMBERS = {"lead_generator": 1, "closer": 1, "account_manager": 2}  # + the owner
TICK_TARGET_S = 5.0
RSS_TARGET_MB = 200.0
SMTP_SERVER = r"""
import sys, signal, threading
from aiosmtpd.controller import Controller

class Count:
    received = 0
    async def handle_DATA(self, server, session, envelope):
        Count.received += 1
        return "250 OK"

controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *args: stop.set())
while not stop.wait(0.5):
    pass
controller.stop()
print(Count.received, flush=True)
"""


# --------------------------------------------------------------------------- seeding


def due_instant(zone: str, hour: int) -> datetime:
    """The UTC instant within DAY (UTC) at which the workspace's local clock shows hour:00."""
    tz = ZoneInfo(zone)
    start = datetime.combine(DAY, dtime(), UTC)
    for offset in (-1, 0, 1):
        instant = datetime.combine(DAY + timedelta(days=offset), dtime(hour), tz).astimezone(UTC)
        if start <= instant < start + timedelta(days=1):
            return instant
    raise ValueError(zone)


def seed(app, params: dict, rng: random.Random) -> dict:
    from app.models import Conflict, Membership, OutboxMessage, Touch

    started = time.perf_counter()
    zones = [z for z, weight in TIMEZONES.items() for _ in range(weight)]
    zones = [zones[int(i * len(zones) / params["workspaces"])] for i in range(params["workspaces"])]
    specs = []
    for i, zone in enumerate(zones):
        hour = 8 if rng.random() < 0.9 else rng.choice((7, 9))
        specs.append(
            {"slug": f"ws{i:04d}", "timezone": zone, "digest_hour": hour, "members": MEMBERS}
        )
    engine = _seed.seed_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    counts = Counter()
    real_now = datetime.now(UTC)
    with engine.begin() as conn:
        workspaces = _seed.seed_workspaces(conn, specs, real_now)
        conn.execute(
            _seed.sa.update(Membership.__table__)
            .where(Membership.__table__.c.id % 20 == 7)
            .values(digest_opt_out=True)
        )
    due_at = {}
    for chunk_start in range(0, len(workspaces), 100):
        conflicts, touches, outbox = [], [], []
        chunk = workspaces[chunk_start : chunk_start + 100]
        with engine.begin() as conn:
            for ws, spec in zip(chunk, specs[chunk_start : chunk_start + 100], strict=True):
                moment = due_instant(ws.timezone, spec["digest_hour"])
                today = moment.astimezone(ZoneInfo(ws.timezone)).date()
                due_at[ws.id] = (moment, today)
                rows, escalate = [], []
                for _ in range(params["clients"]):
                    late = rng.random() < 0.15
                    shift = rng.randint(-30, -3) if late else rng.randint(-2, 6)
                    rows.append(
                        {
                            "stage_id": ws.stages["Client"],
                            "title": "Client",
                            "owner_id": rng.choice(ws.members["account_manager"]),
                            "created_at": moment - timedelta(days=rng.uniform(30, 700)),
                            "last_activity_at": moment - timedelta(days=7 - shift),
                            "next_touch_on": today + timedelta(days=shift),
                            "last_touch_at": moment - timedelta(days=7 - shift),
                            "cadence_days": 14 if rng.random() < 0.1 else None,
                            "won_at": moment - timedelta(days=30),
                            "value_minor": 150_000,
                        }
                    )
                    escalate.append("cadence" if shift <= -4 else None)
                for _ in range(10):
                    rows.append(
                        {
                            "stage_id": ws.stages[
                                rng.choice(("Assigned", "Proposal", "Negotiation"))
                            ],
                            "title": "Deal",
                            "owner_id": ws.members["closer"][0],
                            "created_at": moment - timedelta(days=rng.uniform(3, 40)),
                            "last_activity_at": moment - timedelta(days=rng.uniform(0, 3)),
                            "problem": "Needs it",
                            "money": "Has budget",
                            "decision_date": today + timedelta(days=rng.randint(-10, 20)),
                            "last_touch_at": moment - timedelta(days=1),
                        }
                    )
                    escalate.append(None)
                for _ in range(10):
                    age = rng.uniform(0.1, 6)
                    untouched = rng.random() < 0.5
                    rows.append(
                        {
                            "stage_id": ws.stages[rng.choice(("New", "Contacted"))],
                            "title": "Lead",
                            "owner_id": ws.members["lead_generator"][0],
                            "created_at": moment - timedelta(days=age),
                            "last_activity_at": moment - timedelta(days=age),
                            "last_touch_at": None if untouched else moment - timedelta(hours=2),
                        }
                    )
                    escalate.append("untouched" if untouched and age > 2 else None)
                for _ in range(20):
                    won = rng.random() < 0.4
                    closed = moment - timedelta(days=rng.uniform(1, 200))
                    rows.append(
                        {
                            "stage_id": ws.stages["Won" if won else "Lost"],
                            "title": "Closed",
                            "owner_id": ws.members["closer"][0],
                            "created_at": closed - timedelta(days=9),
                            "last_activity_at": closed,
                            "closed_at": closed,
                            "lost_reason": None if won else "no_money",
                        }
                    )
                    escalate.append(None)
                ids = insert_leads(conn, ws.id, rows, rng)
                counts["leads"] += len(ids)
                counts["clients"] += params["clients"]
                for lead_id, row, kind in zip(ids, rows, escalate, strict=True):
                    if kind:
                        conflicts.append(
                            {
                                "tenant_id": ws.id,
                                "lead_id": lead_id,
                                "user_id": row["owner_id"],
                                "kind": "cadence_missed" if kind == "cadence" else "lead_untouched",
                                "status": "open",
                                "source_id": None,
                                "promise_id": None,
                                "details": {"due": row["next_touch_on"].isoformat()}
                                if row.get("next_touch_on")
                                else {},
                                "resolution_note": None,
                                "created_at": moment - timedelta(days=1),
                                "resolved_at": None,
                            }
                        )
                client_ids = ids[: params["clients"]]
                for _ in range(20):
                    touches.append(
                        {
                            "tenant_id": ws.id,
                            "lead_id": rng.choice(client_ids),
                            "actor_id": rng.choice(ws.members["account_manager"]),
                            "channel": "call",
                            "outcome": "fine",
                            "note": None,
                            "happened_at": moment - timedelta(days=rng.uniform(0, 6)),
                        }
                    )
                for back in range(1, params["history_days"] + 1):
                    day = today - timedelta(days=back)
                    sent = moment - timedelta(days=back)
                    keyed = [(uid, "digest", None) for uid in ws.emails] + [
                        (rng.choice(ws.members["account_manager"]), "touch_due", lead_id)
                        for lead_id in rng.sample(client_ids, min(11, len(client_ids)))
                    ]
                    for uid, kind, subject in keyed:
                        outbox.append(
                            {
                                "tenant_id": ws.id,
                                "user_id": uid,
                                "kind": kind,
                                "unique_key": (
                                    f"{ws.id}:{uid}:{kind}:{subject or '-'}:{day.isoformat()}"
                                ),
                                "subject_id": subject,
                                "local_date": day,
                                "status": "sent",
                                "attempts": 1,
                                "next_attempt_at": sent,
                                "claimed_at": sent,
                                "sent_at": sent + timedelta(seconds=5),
                                "last_error": None,
                                "created_at": sent,
                            }
                        )
            insert_rows(conn, Conflict.__table__, conflicts)
            insert_rows(conn, Touch.__table__, touches)
            insert_rows(conn, OutboxMessage.__table__, outbox)
            counts["conflicts_before"] += len(conflicts)
            counts["outbox_history"] += len(outbox)
    engine.dispose()
    _seed.analyze(app)
    due_now = sum(
        1
        for moment, _ in due_at.values()
        if moment <= DUE_HOUR_TICK < moment + timedelta(minutes=15)
    )
    log(
        f"seeded {len(workspaces)} workspaces, {counts['clients']} clients, {counts['leads']} "
        f"leads, {counts['outbox_history']} outbox history rows in "
        f"{time.perf_counter() - started:.1f} s; {due_now} workspaces due at "
        f"{DUE_HOUR_TICK:%H:%M} UTC"
    )
    return {
        "counts": dict(counts),
        "due_at_tick": due_now,
        "zones": Counter(ws.timezone for ws in workspaces),
    }


# --------------------------------------------------------------------------- the engine process


def engine_process(spec: dict) -> dict:
    """Runs in its own process: the day of ticks, then the sending; prints JSON."""
    rss_start = _seed.max_rss_mb()
    now_rss = {"start": _seed.current_rss_mb()}
    app = _seed.make_app(spec["dsn"], migrate=False, MAIL_PORT=spec["smtp_port"])
    from app.engine import delivery, schedule
    from app.extensions import db

    with app.app_context():
        counter = _seed.QueryCounter(db.engine)
        db.session.execute(_seed.sa.text("SELECT 1"))  # connect before measuring
        db.session.remove()
    rss_app = _seed.max_rss_mb()
    now_rss["app"] = _seed.current_rss_mb()
    deadline = time.monotonic() + spec["tick_budget_s"]
    ticks, stopped_early, due_hour_statements = [], False, []
    day_start = datetime.combine(DAY, dtime(), UTC)
    minutes = list(range(0, 1440, spec["step"]))
    if spec["step"] > 1 and 300 not in minutes:
        minutes = sorted(set(minutes) | {300})
    for minute in minutes:
        if time.monotonic() > deadline:
            stopped_early = True
            break
        now = day_start + timedelta(minutes=minute)
        if minute == 300:
            counter.recording = []
        before_q, started = counter.count, time.perf_counter()
        with app.app_context():
            result = schedule.tick(now)
        if minute == 300:
            due_hour_statements, counter.recording = shapes(counter.recording), None
        ticks.append(
            {
                "minute": minute,
                "s": time.perf_counter() - started,
                "queries": counter.count - before_q,
                "due": result["workspaces_due"],
                "rows": result["rows"],
            }
        )
    rss_ticks = _seed.max_rss_mb()
    now_rss["ticks"] = _seed.current_rss_mb()

    outcome, sent_s, send_queries, calls = Counter(), 0.0, 0, 0
    before_q, started = counter.count, time.perf_counter()
    send_statements = []
    while (
        sum(outcome.values()) < spec["batch"]
        and time.perf_counter() - started < spec["send_budget_s"]
    ):
        counter.recording = [] if calls == 0 else None
        with app.app_context():
            counts = delivery.deliver_due(
                datetime.now(UTC), limit=min(delivery.BATCH, spec["batch"] - sum(outcome.values()))
            )
        if calls == 0:
            send_statements, counter.recording = shapes(counter.recording), None
        calls += 1
        if not sum(counts.values()):
            break
        outcome.update(counts)
    sent_s = time.perf_counter() - started
    send_queries = counter.count - before_q
    with app.app_context():
        kinds = dict(
            db.session.execute(
                _seed.sa.text(
                    "SELECT kind, count(*) FROM outbox_message "
                    "WHERE sent_at >= now() - interval '1 hour' AND status = 'sent' GROUP BY kind"
                )
            ).all()
        )
        db.session.remove()
        db.engine.dispose()
    return {
        "rss_start_mb": rss_start,
        "rss_app_mb": rss_app,
        "rss_ticks_mb": rss_ticks,
        "rss_end_mb": _seed.max_rss_mb(),
        "now_rss": now_rss | {"end": _seed.current_rss_mb()},
        "ticks": ticks,
        "due_hour_statements": due_hour_statements,
        "send_statements": send_statements,
        "stopped_early": stopped_early,
        "send": {
            "outcome": dict(outcome),
            "s": sent_s,
            "queries": send_queries,
            "calls": calls,
            "kinds": kinds,
        },
    }


def shapes(recorded: list) -> list:
    """Statements grouped by their text (parameters aside): count and total ms, top 8."""
    grouped: dict[str, list] = {}
    for sql, _params, spent in recorded:
        key = " ".join(sql.split())[:110]
        entry = grouped.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += spent * 1000
    return sorted(([k, n, ms] for k, (n, ms) in grouped.items()), key=lambda e: -e[2])[:8]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_engine_process() -> subprocess.Popen:
    """Started before seeding, while this process is small: on Linux a child inherits
    its parent's peak RSS (ru_maxrss) through fork, so a child forked after seeding would
    report the seeding's peak. It waits for its instructions on stdin."""
    return subprocess.Popen(
        [sys.executable, __file__, "--engine-process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=_seed.REPO,
    )


def run_engine(child: subprocess.Popen, dsn: str, params: dict, budget_s: float):
    port = free_port()
    smtp = subprocess.Popen(
        [sys.executable, "-c", SMTP_SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if smtp.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server did not start")
        spec = {
            "dsn": dsn,
            "smtp_port": port,
            "step": params["step"],
            "batch": params["batch"],
            "tick_budget_s": budget_s * 0.75,
            "send_budget_s": budget_s * 0.25,
        }
        out, err = child.communicate(json.dumps(spec) + "\n", timeout=budget_s + 120)
        if child.returncode != 0:
            raise RuntimeError(f"engine process failed:\n{err[-4000:]}")
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        smtp.terminate()
        try:
            smtp_out, _ = smtp.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            smtp.kill()
            smtp_out, _ = smtp.communicate()
    received = int(smtp_out.strip().splitlines()[-1]) if smtp_out.strip() else -1
    return result, received


# --------------------------------------------------------------------------- report


def fit(ticks: list[dict]) -> tuple[float, float]:
    """Least squares: queries = a + b * workspaces due."""
    n = len(ticks)
    xs = [t["due"] for t in ticks]
    ys = [t["queries"] for t in ticks]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - b * mx, b


def print_report(params, seeded, result, received, db_after, command, busy, load, seconds) -> None:
    ticks = result["ticks"]
    due_tick = next((t for t in ticks if t["minute"] == 300), None)
    heaviest = max(ticks, key=lambda t: t["s"])
    idle = [t for t in ticks if t["due"] == 0]
    busy_ticks = [t for t in ticks if t["due"] > 0]
    a, b = fit(ticks)
    send = result["send"]
    sent = send["outcome"].get("sent", 0)
    processed = sum(send["outcome"].values())
    print()
    print(
        f"# digest.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_seed.MACHINE}, "
        f"machine busy before start {busy * 100:.0f} %"
    )
    print(f"command: {command}")
    print(_seed.MachineLoad.describe(load))
    print(
        f"parameters: {params}; seeded {seeded['counts']}; simulated day {DAY} UTC, a tick "
        f"every {params['step']} min ({len(ticks)} ticks"
        f"{', STOPPED EARLY by the time bound' if result['stopped_early'] else ''})"
    )
    print(f"timezones: {dict(seeded['zones'])}")
    print()
    print("| figure | value | target |")
    print("|---|---|---|")
    if due_tick:
        ok = "met" if due_tick["s"] < TICK_TARGET_S else "NOT met"
        print(
            f"| one tick at {DUE_HOUR_TICK:%H:%M} UTC (08:00 Moscow): workspaces due | "
            f"{due_tick['due']} of {params['workspaces']} | |"
        )
        print(f"| — time | {due_tick['s'] * 1000:.0f} ms | < {TICK_TARGET_S:.0f} s: {ok} |")
        print(
            f"| — SQL statements | {due_tick['queries']} "
            f"({(due_tick['queries'] - 1) / max(1, due_tick['due']):.1f} per due workspace) | "
            f"proportional to workspaces due |"
        )
        print(f"| — outbox rows written | {due_tick['rows']} | |")
    print(
        f"| heaviest tick of the day | {heaviest['s'] * 1000:.0f} ms at minute "
        f"{heaviest['minute']} ({heaviest['due']} due, {heaviest['queries']} statements, "
        f"{heaviest['rows']} rows) | < {TICK_TARGET_S:.0f} s |"
    )
    print(
        f"| sum over the day ({len(ticks)} ticks, every {params['step']} min) | "
        f"{sum(t['s'] for t in ticks):.1f} s, {sum(t['queries'] for t in ticks)} statements, "
        f"{sum(t['rows'] for t in ticks)} rows | |"
    )
    if idle:
        print(
            f"| tick with no workspace due (mean of {len(idle)}) | "
            f"{sum(t['s'] for t in idle) / len(idle) * 1000:.1f} ms, "
            f"{max(t['queries'] for t in idle)} statement(s) | |"
        )
    if busy_ticks:
        print(
            f"| tick with workspaces due (mean of {len(busy_ticks)}) | "
            f"{sum(t['s'] for t in busy_ticks) / len(busy_ticks) * 1000:.1f} ms, "
            f"{sum(t['due'] for t in busy_ticks) / len(busy_ticks):.1f} due | |"
        )
    print(
        f"| statements per tick (least squares over the day) | {a:.1f} + {b:.2f} × workspaces "
        f"due | not growing with clients |"
    )
    print(f"| conflicts escalated during the day | {db_after['conflicts_new']} | |")
    rate = sent / send["s"] if send["s"] else 0.0
    print(
        f"| sending: outbox rows processed | {processed} of {params['batch']} "
        f"({send['outcome']}; kinds sent {send['kinds']}) in {send['calls']} "
        f"deliver_due calls | |"
    )
    print(
        f"| — messages per second (SMTP, aiosmtpd on loopback; server counted {received}) | "
        f"{rate:.1f} msg/s ({send['s']:.1f} s) | |"
    )
    print(f"| — SQL statements per message | {send['queries'] / max(1, processed):.1f} | |")
    burst = due_tick["rows"] if due_tick else 0
    day_rows = sum(t["rows"] for t in ticks)
    print(
        "| — sending capacity as deployed: deliver_due(limit=50) runs only inside the "
        "per-minute tick job, whose job id names the minute (one per minute however many "
        f"workers) | 50 msg/min: the {DUE_HOUR_TICK:%H:%M} UTC burst of {burst} rows takes "
        f"~{burst / 50:.0f} min to send, the day's {day_rows} rows ~{day_rows / 50:.0f} min | |"
    )
    now_rss = result["now_rss"]
    print(f"| peak RSS (ru_maxrss) before importing the app | {result['rss_start_mb']:.0f} MB | |")
    for label, key, moment in (
        ("after start (imports + app)", "rss_app_mb", "app"),
        ("after the day of ticks", "rss_ticks_mb", "ticks"),
        ("after sending = peak of the process", "rss_end_mb", "end"),
    ):
        ok = "met" if result[key] < RSS_TARGET_MB else "NOT met"
        print(
            f"| peak RSS (ru_maxrss) {label} | {result[key]:.0f} MB (resident now: "
            f"{now_rss[moment]:.0f} MB) | < {RSS_TARGET_MB:.0f} MB: {ok} |"
        )
    for title, rows in (
        (f"statements of the {DUE_HOUR_TICK:%H:%M} UTC tick", result["due_hour_statements"]),
        ("statements of the first deliver_due call (50 messages)", result["send_statements"]),
    ):
        print(f"\n{title} (count, total ms, SQL):")
        for sql, n, ms in rows:
            print(f"  {n:5d} {ms:9.1f}  {sql}")
    print(f"\noutbox pending after the run: {db_after['pending']}; run took {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick version")
    parser.add_argument("--step", type=int, help="minutes between ticks (1 = every minute)")
    parser.add_argument("--batch", type=int, help="outbox rows to send")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=int, default=600, help="hard bound for the run (s)")
    parser.add_argument("--engine-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_process:
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the parent gave up before seeding finished
        print(json.dumps(engine_process(json.loads(line))))
        return 0
    params = dict(SMALL if args.small else FULL)
    if args.step:
        params["step"] = args.step
    if args.batch:
        params["batch"] = args.batch
    command = " ".join([".venv/bin/python benchmarks/digest.py", *sys.argv[1:]])
    _seed.install_hard_timeout(args.timeout)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    busy = _seed.machine_busy_share()
    log(f"machine busy before start: {busy * 100:.0f} %")
    child = start_engine_process()
    try:
        _seed.flush_redis()
        with FreshDatabase("digest") as database:
            app = _seed.make_app(database.dsn)
            from app.extensions import db

            try:
                seeded = seed(app, params, rng)
                with app.app_context():
                    db.engine.dispose()
                budget = max(60.0, args.timeout - (time.perf_counter() - started) - 90)
                log(
                    f"engine process: ticks every {params['step']} min, then {params['batch']} "
                    f"messages (budget {budget:.0f} s)"
                )
                load = _seed.MachineLoad(database.name)
                result, received = run_engine(child, database.dsn, params, budget)
                load = load.stop()
                with app.app_context():
                    db_after = {
                        "conflicts_new": db.session.execute(
                            _seed.sa.text(
                                "SELECT count(*) FROM conflict "
                                "WHERE created_at > now() - interval '1 hour'"
                            )
                        ).scalar(),
                        "pending": db.session.execute(
                            _seed.sa.text(
                                "SELECT count(*) FROM outbox_message WHERE status = 'pending'"
                            )
                        ).scalar(),
                    }
                    db.session.remove()
            finally:
                with app.app_context():
                    db.engine.dispose()
        print_report(
            params,
            seeded,
            result,
            received,
            db_after,
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
        if child.poll() is None:  # our own child, by its pid
            child.kill()
            child.wait(timeout=30)
        _seed.flush_redis()


if __name__ == "__main__":
    sys.exit(main())
