"""Shared helpers for benchmarks/board.py, radar.py and digest.py.

- a fresh PostgreSQL database per run (createdb / dropdb --force), always dropped;
- the app built with ``create_app({...})`` overrides as in tests/conftest.py, migrated;
- fast seeding with bulk Core inserts (``sa.insert(table)`` with lists of dicts, in
  batches, RETURNING ids in parameter order where the ids are needed);
- workspaces with the default stages, members of each role and a subscription, made
  in bulk (one shared password hash: argon2id is deliberately slow);
- a SQL statement counter (``before_cursor_execute``) and in-process request timing
  with the Flask test client.

Nothing here changes app code; it only uses the app's models and factory.
"""

import contextvars
import gc
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379/12"  # db 12 only: flushed at start and end
BENCH_PASSWORD = "bench-Pa55word-2026"
BATCH = 5000
MACHINE = "2 cores"


class HardTimeout(BaseException):
    """SIGALRM: the whole run overstayed its bound (cleanup still runs)."""


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def summary(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50": percentile(ms, 0.50),
        "p95": percentile(ms, 0.95),
        "max": max(ms) if ms else float("nan"),
        "mean": sum(ms) / len(ms) if ms else float("nan"),
    }


def machine_busy_share(seconds: float = 2.0) -> float:
    """Share of all CPUs busy before the run (another benchmark on the box spoils ours)."""

    def sample():
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        total = sum(values[:8])
        return total - idle, total

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def _cpu_sample() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4], sum(values[:8])


def _processes_cpu(marker: str) -> dict[int, float]:
    """CPU seconds of every process whose command line contains ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


class MachineLoad:
    """How busy all CPUs were over a stretch: this process (with the children it waited
    for), the PostgreSQL backends serving this run's database, and everything else —
    other work on the box, which spoils the figures when it is large."""

    def __init__(self, database: str):
        self.database = database
        self._cpu = _cpu_sample()
        self._own = sum(os.times()[:4])
        self._backends = _processes_cpu(database)

    def stop(self) -> dict:
        busy, total = _cpu_sample()
        backends = _processes_cpu(self.database)
        ticks = max(1, total - self._cpu[1])
        capacity_s = ticks / os.sysconf("SC_CLK_TCK")
        backend_s = sum(cpu - self._backends.get(pid, 0.0) for pid, cpu in backends.items())
        return {
            "machine_busy": (busy - self._cpu[0]) / ticks,
            "this_process": (sum(os.times()[:4]) - self._own) / capacity_s,
            "postgres": backend_s / capacity_s,
        }

    @staticmethod
    def describe(load: dict) -> str:
        others = max(0.0, load["machine_busy"] - load["this_process"] - load["postgres"])
        return (
            f"during the measurement all {os.cpu_count()} CPUs were {load['machine_busy']:.0%} "
            f"busy: this benchmark {load['this_process']:.0%}, its PostgreSQL backends "
            f"{load['postgres']:.0%}, anything else {others:.0%}"
        )


def max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    """Resident memory now (VmRSS), as opposed to the peak that ru_maxrss reports."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def install_hard_timeout(seconds: int) -> None:
    def hard_stop(signum, frame):
        raise HardTimeout(f"the run exceeded its bound of {seconds} s")

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGALRM, hard_stop)
    signal.signal(signal.SIGTERM, terminate)
    signal.alarm(seconds)


# --------------------------------------------------------------------------- database


class FreshDatabase:
    """``with FreshDatabase("board") as db:`` creates a database and always drops it."""

    def __init__(self, purpose: str):
        self.name = f"conveyor_bench_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.dsn = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    def _pg(self, command: str, *extra: str) -> None:
        subprocess.run(
            [command, "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, *extra, self.name],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def __enter__(self) -> "FreshDatabase":
        self._pg("createdb")
        log(f"created database {self.name}")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._pg("dropdb", "--if-exists", "--force")
            log(f"dropped database {self.name}")
        except (subprocess.SubprocessError, OSError) as error:
            log(f"WARNING: could not drop {self.name}: {error}")


def flush_redis() -> None:
    redis.Redis.from_url(REDIS_URL, socket_timeout=10).flushdb()


def make_app(dsn: str, migrate: bool = True, **overrides):
    """The app as tests/conftest.py builds it, on this database and Redis db 12."""
    from flask_migrate import upgrade

    from app import create_app

    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": dsn,
        "REDIS_URL": REDIS_URL,
        "RQ_QUEUE": "bench",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 2525,
        "MAIL_USE_TLS": False,
        "MAIL_TRANSPORT": "smtp",
        "BASE_URL": "http://conveyor.bench",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
    }
    config.update(overrides)
    app = create_app(config)
    if migrate:
        with app.app_context():
            upgrade(directory=str(REPO / "migrations"))
    return app


def analyze(app) -> None:
    """Fresh planner statistics after seeding (autovacuum would do it a little later)."""
    from app.extensions import db

    with (
        app.app_context(),
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(sa.text("VACUUM ANALYZE"))


class QueryCounter:
    """Counts statements sent to the database (executemany counts once) and the time
    spent waiting for them; ``recording`` (a list) also keeps (statement, parameters)."""

    def __init__(self, engine):
        self.count = 0
        self.seconds = 0.0
        self.recording: list[tuple[str, object, float]] | None = None
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self._started.append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        spent = time.perf_counter() - self._started.pop()
        self.seconds += spent
        if self.recording is not None:
            self.recording.append((statement, parameters, spent))


def explain(app, statement: str, parameters) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a recorded statement, as text."""
    from app.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            raw.rollback()
            raw.close()


# --------------------------------------------------------------------------- bulk inserts


def seed_engine(dsn: str):
    """An engine for seeding only: plain executemany (psycopg pipelines it with one
    parsed statement) instead of SQLAlchemy's multi-VALUES "insertmanyvalues", whose
    5,000-row statements psycopg spends most of its time parsing (measured: 10,000
    leads with their contacts in 4.4 s that way, 0.7 s this way)."""
    return sa.create_engine(dsn, use_insertmanyvalues=False)


def allocate_ids(conn, table, count: int) -> list[int]:
    """``count`` new ids from the table's own sequence (so later app inserts follow)."""
    if count == 0:
        return []
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": f'"{table.name}"'}
    ).scalar_one()
    return list(
        conn.execute(
            sa.text("SELECT nextval(:seq) FROM generate_series(1, :n)"),
            {"seq": sequence, "n": count},
        ).scalars()
    )


def insert_rows(conn, table, rows: list[dict], returning: bool = False, batch: int = BATCH):
    """Bulk Core insert (``sa.insert(table)`` with lists of dicts) in batches; with
    ``returning`` the rows get ids from the sequence first and the ids are returned."""
    ids: list[int] = []
    if returning:
        ids = allocate_ids(conn, table, len(rows))
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    for start in range(0, len(rows), batch):
        conn.execute(sa.insert(table), rows[start : start + batch])
    return ids


_PASSWORD_HASH: str | None = None


def password_hash() -> str:
    """One real argon2id hash shared by every benchmark user (hashing is slow on purpose)."""
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        from app.passwords import hash_password

        _PASSWORD_HASH = hash_password(BENCH_PASSWORD)
    return _PASSWORD_HASH


# (name, phase, rot_days, won, lost) as app/workspace/services.py DEFAULT_STAGES
STAGES = [
    ("New", "generation", 1, False, False),
    ("Contacted", "generation", 3, False, False),
    ("Qualified", "generation", 2, False, False),
    ("Assigned", "conversion", 2, False, False),
    ("Proposal", "conversion", 5, False, False),
    ("Negotiation", "conversion", 7, False, False),
    ("Won", "conversion", 30, True, False),
    ("Lost", "conversion", 365, False, True),
    ("Client", "account", 7, False, False),
]
ROLES = ("owner", "lead_generator", "closer", "account_manager")


@dataclass
class Workspace:
    id: int
    slug: str
    timezone: str
    stages: dict[str, int] = field(default_factory=dict)  # name -> stage id
    members: dict[str, list[int]] = field(default_factory=dict)  # role -> user ids
    emails: dict[int, str] = field(default_factory=dict)  # user id -> email
    sources: list[int] = field(default_factory=list)

    def email(self, role: str, index: int = 0) -> str:
        return self.emails[self.members[role][index]]


def seed_workspaces(conn, specs: list[dict], now: datetime) -> list[Workspace]:
    """Workspaces in bulk. Each spec: slug, timezone (opt), members {role: count}, plus
    any Tenant column (digest_hour, queue_size, ...)."""
    from app.models import Membership, Stage, Subscription, Tenant, User

    tenant_rows = []
    for spec in specs:
        row = {
            "name": spec.get("name", spec["slug"].replace("-", " ").title()),
            "slug": spec["slug"],
            "timezone": spec.get("timezone", "UTC"),
            "language": spec.get("language", "en"),
            "currency": spec.get("currency", "USD"),
            "touch_cadence_days": 7,
            "queue_size": 20,
            "max_discount_percent": 10,
            "closer_daily_capacity": 20,
            "assignment_mode": "least_loaded",
            "digest_hour": 8,
            "junk_share_max": 30,
            "qualified_share_min": 20,
            "quality_window": 20,
            "created_at": now - timedelta(days=400),
        }
        row.update({k: v for k, v in spec.items() if k in row and k != "slug"})
        tenant_rows.append(row)
    tenant_ids = insert_rows(conn, Tenant.__table__, tenant_rows, returning=True)
    workspaces = [
        Workspace(id=tid, slug=spec["slug"], timezone=row["timezone"])
        for tid, spec, row in zip(tenant_ids, specs, tenant_rows, strict=True)
    ]

    stage_rows, stage_keys = [], []
    for ws in workspaces:
        for position, (name, phase, rot, won, lost) in enumerate(STAGES):
            stage_rows.append(
                {
                    "tenant_id": ws.id,
                    "name": name,
                    "phase": phase,
                    "position": position,
                    "rot_days": rot,
                    "is_won": won,
                    "is_lost": lost,
                }
            )
            stage_keys.append((ws, name))
    for (ws, name), stage_id in zip(
        stage_keys, insert_rows(conn, Stage.__table__, stage_rows, returning=True), strict=True
    ):
        ws.stages[name] = stage_id

    hashed = password_hash()
    user_rows, user_keys = [], []
    for ws, spec in zip(workspaces, specs, strict=True):
        members = {"owner": 1, **spec.get("members", {})}
        for role in ROLES:
            for i in range(members.get(role, 0)):
                email = f"{role.replace('_', '-')}{i}@{ws.slug}.bench.example.com"
                user_rows.append(
                    {
                        "email": email,
                        "name": f"{role.replace('_', ' ').title()} {i} of {ws.slug}",
                        "password_hash": hashed,
                        "locale": None,
                        "session_version": 1,
                        "last_tenant_id": ws.id,
                        "created_at": now - timedelta(days=300),
                    }
                )
                user_keys.append((ws, role, email))
    user_ids = insert_rows(conn, User.__table__, user_rows, returning=True)
    membership_rows = []
    for (ws, role, email), user_id in zip(user_keys, user_ids, strict=True):
        ws.members.setdefault(role, []).append(user_id)
        ws.emails[user_id] = email
        membership_rows.append(
            {
                "tenant_id": ws.id,
                "user_id": user_id,
                "role": role,
                "active": True,
                "digest_opt_out": False,
                "created_at": now - timedelta(days=300),
            }
        )
    insert_rows(conn, Membership.__table__, membership_rows)
    insert_rows(
        conn,
        Subscription.__table__,
        [
            {
                "tenant_id": ws.id,
                "status": "active",
                "plan": "team",
                "trial_ends_at": now - timedelta(days=200),
                "seats": len(ws.emails),
                "seats_version": 0,
                "cancel_at_period_end": False,
                "created_at": now - timedelta(days=300),
                "updated_at": now - timedelta(days=1),
            }
            for ws in workspaces
        ],
    )
    return workspaces


def seed_sources(conn, ws: Workspace, count: int, rng: random.Random, now: datetime) -> list[int]:
    from app.models import Source

    kinds = ("site_form", "ad", "partner", "referral", "other")
    names = ("Google Ads", "Yandex Direct", "Partner", "Site form", "Referral", "Expo")
    rows = [
        {
            "tenant_id": ws.id,
            "name": f"Source {i:02d} {rng.choice(names)}",
            "kind": kinds[i % len(kinds)],
            "cost_per_lead_minor": rng.choice((0, 500, 1500, 3000, 8000)),
            "active": i % 17 != 16,
            "intake_token": uuid.uuid4().hex + uuid.uuid4().hex[:16],
            "alert_armed": True,
            "rate_limit_per_minute": 600,
            "created_at": now - timedelta(days=380),
        }
        for i in range(count)
    ]
    ws.sources = insert_rows(conn, Source.__table__, rows, returning=True)
    return ws.sources


FIRST = (
    "Anna",
    "Maria",
    "Olga",
    "Elena",
    "Ivan",
    "Dmitry",
    "James",
    "Emma",
    "Noah",
    "Mia",
    "Lucas",
    "Sofia",
    "Kenji",
    "Omar",
    "Pierre",
    "Lars",
    "Piotr",
    "Grace",
)
LAST = (
    "Ivanova",
    "Petrov",
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Kozlova",
    "Novikov",
    "Brown",
    "Lee",
    "Martin",
    "Walker",
    "Young",
    "King",
    "Hill",
    "Adams",
)
COMPANIES = (
    "Northwind Traders",
    "Blue Fern Dental",
    "Harbor & Hill Law",
    "Maple Bakery",
    "Quantum Roofing",
    "Ural Logistics",
    "Sever Stroy",
    "Pixel Forge",
    None,
    None,
)


def contact_row(ws_id: int, n: int, rng: random.Random, created: datetime) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "tenant_id": ws_id,
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{n}@example.org".lower(),
        "phone": f"+1212{rng.randrange(2000000, 9999999)}",
        "company": rng.choice(COMPANIES),
        "created_at": created,
    }


LEAD_DEFAULTS = {
    "source_id": None,
    "owner_id": None,
    "value_minor": 0,
    "problem": None,
    "money": None,
    "decision_date": None,
    "next_touch_on": None,
    "message": None,
    "budget": None,
    "external_id": None,
    "utm": {},
    "extra": {},
    "flagged": False,
    "qualified_at": None,
    "closed_at": None,
    "won_at": None,
    "lost_reason": None,
    "lost_note": None,
    "cadence_days": None,
    "last_touch_at": None,
    "first_touch_at": None,
}


def insert_leads(conn, ws_id: int, leads: list[dict], rng: random.Random) -> list[int]:
    """Leads (each with its own new contact); each dict needs stage_id, title,
    created_at, last_activity_at and may set any other Lead column."""
    from app.models import Contact, Lead

    ids: list[int] = []
    for start in range(0, len(leads), BATCH):
        chunk = leads[start : start + BATCH]
        contacts = [
            contact_row(ws_id, start + i + rng.randrange(10**9), rng, lead["created_at"])
            for i, lead in enumerate(chunk)
        ]
        contact_ids = insert_rows(conn, Contact.__table__, contacts, returning=True)
        rows = []
        for lead, contact_id in zip(chunk, contact_ids, strict=True):
            row = {**LEAD_DEFAULTS, **lead, "tenant_id": ws_id, "contact_id": contact_id}
            rows.append(row)
        ids.extend(insert_rows(conn, Lead.__table__, rows, returning=True))
    return ids


# --------------------------------------------------------------------------- requests


def login(app, email: str):
    """A test client signed in through the real login form (argon2id verify once)."""
    client = app.test_client()
    response = isolated(client.post, "/login", data={"email": email, "password": BENCH_PASSWORD})
    if response.status_code != 302:
        raise RuntimeError(f"login as {email} failed: {response.status_code}")
    return client


def isolated(call, *args, **kwargs):
    """Run a request in its own context, as a production request would be."""
    return contextvars.Context().run(call, *args, **kwargs)


@dataclass
class Timing:
    ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    full_gcs: int = 0
    full_gc_ms: float = 0.0
    statuses: set = field(default_factory=set)
    bytes: int = 0

    def row(self) -> dict:
        s = summary(self.ms)
        s["queries_min"] = min(self.queries) if self.queries else 0
        s["queries_max"] = max(self.queries) if self.queries else 0
        s["sql_p50"] = percentile(self.sql_ms, 0.50)
        s["full_gcs"] = self.full_gcs
        s["full_gc_ms"] = self.full_gc_ms / self.full_gcs if self.full_gcs else 0.0
        s["statuses"] = sorted(self.statuses)
        s["bytes"] = self.bytes
        return s


def time_get(client, urls, counter: QueryCounter | None, n: int, warmup: int) -> Timing:
    """GET each url in turn (cycling) ``warmup`` times unmeasured, then ``n`` times."""
    urls = list(urls) if not isinstance(urls, str) else [urls]
    for i in range(warmup):
        isolated(client.get, urls[i % len(urls)])
    timing = Timing()
    watch = GcWatch()
    for i in range(n):
        before = counter.count if counter else 0
        sql_before = counter.seconds if counter else 0.0
        started = time.perf_counter()
        response = isolated(client.get, urls[i % len(urls)])
        elapsed = (time.perf_counter() - started) * 1000
        timing.ms.append(elapsed)
        timing.queries.append((counter.count - before) if counter else 0)
        timing.sql_ms.append(((counter.seconds - sql_before) * 1000) if counter else 0.0)
        timing.statuses.add(response.status_code)
        timing.bytes = len(response.data)
    timing.full_gcs, timing.full_gc_ms = watch.stop()
    return timing


class GcWatch:
    """Counts the interpreter's full (generation 2) collections and their time."""

    def __init__(self):
        self.count, self.seconds, self._started = 0, 0.0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started

    def stop(self) -> tuple[int, float]:
        gc.callbacks.remove(self._callback)
        return self.count, self.seconds * 1000


def fmt_ms(value: float) -> str:
    return f"{value:.1f}"
