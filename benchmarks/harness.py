"""What every benchmark shares: databases, servers, load, CPU accounting and the report.

Everything runs on 127.0.0.1 and is bounded in count and time:

- ``Database``: a fresh PostgreSQL database per run on the machine's server
  (127.0.0.1:5432, user postgres, trust) or on a ``PrivatePostgres``; always dropped;
- ``PrivatePostgres`` / ``PrivateRedis``: servers of this run's own on free ports, for
  the chaos scenario, which restarts them (the machine's servers are shared);
- ``Proc``: gunicorn, ``worker.py`` or the bare baseline app as a subprocess in its own
  process group, stopped by its id;
- ``send``: the load generator (threads, keep-alive, an optional steady rate);
- ``CpuMeter``: CPU seconds of the processes under test, PostgreSQL and the rest;
- ``report``: one table, each figure with its baseline from the same run.

Benchmarks drive the real app (HTTP, ``worker.py``, its services); SQL here only sets
up databases and counts what the app wrote.
"""

import contextlib
import http.client
import io
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
MEASURED = "the working tree"
APP_DIR = REPO  # where the app under test is run from (``use_ref`` unpacks a commit)
HOST = "127.0.0.1"
PG_DSN = f"postgresql://postgres@{HOST}:5432/postgres"
REDIS_URL = f"redis://{HOST}:6379/11"  # a spare db of the machine's Redis, flushed per run
PYTHON = str(REPO / ".venv" / "bin" / "python")
SECRET_KEY = "benchmark-" + uuid.uuid4().hex
PASSWORD = "bench-Pa55word-2026"
# A SIGTERM ends a run like Ctrl-C: its servers stopped, its databases dropped.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
SHARED_NOTE = (
    "The machine (2 cores) is shared with other engineers' test suites: absolute rates move "
    "between runs; ratios are to a baseline measured in the same run."
)


def parser(doc: str):
    """A scenario's arguments, with ``--ref``: the commit whose app is measured."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--ref",
        default="HEAD",
        help="run the app as committed at REF (default HEAD); 'worktree': the working tree",
    )
    return parser


def use_ref(ref: str, into: Path) -> str:
    """Run the app from ``ref`` unpacked into ``into`` (others edit the working tree)."""
    global APP_DIR
    if ref == "worktree":
        return "the working tree"
    import tarfile

    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    APP_DIR = into / f"conveyor-{commit[:10]}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(APP_DIR, filter="data")
    log(f"the app as committed at {commit[:10]}")
    return commit[:10]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values, share: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))]


def median(values) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Deadline:
    """A run's bound: every wait below is cut at it."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self, what: str) -> None:
        if not self.left():
            raise TimeoutError(f"out of time while {what}")


def wait_for(check, seconds: float, what: str, every: float = 0.2):
    """Call ``check`` until it returns something true; TimeoutError after ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise TimeoutError(f"waited {seconds:.0f} s for {what}")
        time.sleep(every)


# --------------------------------------------------------------------------- PostgreSQL


class Database:
    """A fresh database on a server; dropped when the ``with`` block ends."""

    def __init__(self, name: str, server_dsn: str = PG_DSN):
        self.name = f"bench_{name}_{uuid.uuid4().hex[:6]}"
        self.server_dsn = server_dsn
        self.dsn = server_dsn.rsplit("/", 1)[0] + "/" + self.name

    def __enter__(self) -> "Database":
        with psycopg.connect(self.server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self

    def __exit__(self, *exc) -> None:
        try:
            with psycopg.connect(self.server_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.name)
                    )
                )
        except psycopg.Error as error:
            log(f"WARNING: could not drop {self.name}: {error}")

    def one(self, query: str, *params):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchone()

    def all(self, query: str, *params) -> list:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


class PrivatePostgres:
    """A throw-away cluster (initdb into a temp dir, run as ``postgres``) on a free port."""

    def __init__(self, root: Path):
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not binaries:
            raise RuntimeError("no PostgreSQL server in /usr/lib/postgresql/*/bin")
        self.bin = binaries[-1].parent
        self.root = root / "pg"
        self.data = self.root / "data"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode:
            raise RuntimeError(f"{program} {' '.join(args)}: {done.stderr[-1500:]}")

    def __enter__(self) -> "PrivatePostgres":
        self.root.mkdir(parents=True)
        shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{HOST}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 80\n"
            )
        self.start()
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self.stop("immediate")


class PrivateRedis:
    """A redis-server of this run's own on a free port, with an append-only file."""

    def __init__(self, root: Path):
        self.root = root / "redis"
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "PrivateRedis":
        self.root.mkdir(parents=True)
        self.start()
        return self

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", HOST, "--port", str(self.port), "--dir", str(self.root)]
            + ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: _answers(self.port), 10, "redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis writes its append-only file and exits
            self.proc.wait(20)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
        return True
    return False


def flush_redis(url: str = REDIS_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --------------------------------------------------------------------------- the app


def app_env(database: str, redis_url: str = REDIS_URL, port: int = 0) -> dict:
    """The environment every process of the app under test reads (production rules)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "RATELIMIT_"))}
    env.update(
        CONVEYOR_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        RQ_QUEUE="bench-" + uuid.uuid4().hex[:6],
        BASE_URL=f"http://{HOST}:{port or 5000}",
        PYTHONUNBUFFERED="1",
    )
    return env


def flask(env: dict, *words: str) -> dict:
    """Run an operator command (``flask --app wsgi ...``); its JSON answer."""
    done = subprocess.run(
        [PYTHON, "-m", "flask", "--app", "wsgi", *words],
        env=env,
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(words[:2])}: {done.stderr[-2000:]}")
    out = done.stdout.strip().splitlines()
    return json.loads(out[-1]) if out and out[-1].startswith("{") else {}


def set_up_workspace(env: dict, lead_generators: int = 2, rate_limit: int = 10_000_000) -> dict:
    """Migrate, then a workspace with lead generators and one unsigned source, by the CLI."""
    flask(env, "db", "upgrade")
    owner = "owner@bench.example.com"
    workspace = flask(
        env,
        "workspace",
        "create",
        "--name",
        "Bench Co",
        "--owner-email",
        owner,
        "--owner-password",
        PASSWORD,
    )
    for n in range(lead_generators):
        flask(
            env,
            "user",
            "add",
            "--workspace",
            workspace["slug"],
            "--email",
            f"leads{n}@bench.example.com",
            "--role",
            "lead_generator",
            "--password",
            PASSWORD,
        )
    source = flask(
        env,
        "source",
        "create",
        "--workspace",
        workspace["slug"],
        "--name",
        "Bench API",
        "--rate-limit",
        str(rate_limit),
    )
    path = "/" + source["intake_url"].split("/", 3)[3]
    return {
        "tenant_id": workspace["id"],
        "slug": workspace["slug"],
        "owner": owner,
        "source_id": source["id"],
        "path": path,
    }


def make_app(env: dict):
    """The app in this process, reading the same environment as its servers (for the
    services a scenario calls directly: an upload, seeding through the builder)."""
    os.environ.update(env)
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    from app import create_app

    return create_app()


def build_leads(
    app,
    tenant_id: int,
    count: int,
    phase: str = "generation",
    owner_id: int | None = None,
    sources: list[tuple[int, str]] = (),
    spread_days: int = 0,
    tag: str = "",
    batch: int = 5000,
) -> float:
    """Leads made by the app's one builder (``app.builder.leads.build_leads``), a batch per
    transaction, as the worker makes them: routed to lead generators unless ``owner_id``
    (then clients, due to be touched from three days ago to three days on). Arrivals
    over ``spread_days``. Returns the seconds it took."""
    import random
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from app.builder.leads import LeadDraft
    from app.builder.leads import build_leads as build
    from app.extensions import db
    from app.models import Phase
    from app.pipeline import first_stage
    from app.tenancy import tenant_scope

    rng, tag, started = random.Random(tenant_id), tag or uuid.uuid4().hex[:6], time.monotonic()
    with app.app_context(), tenant_scope(tenant_id):
        stage_id = first_stage(tenant_id, Phase[phase.upper()]).id
        now = datetime.now(UTC)
        for first in range(0, count, batch):
            drafts = []
            for n in range(first, min(count, first + batch)):
                source_id, source_name = sources[n % len(sources)] if sources else (None, None)
                drafts.append(
                    LeadDraft(
                        name=f"Person {n}",
                        email=f"p{n}.{tag}@seed.example.com",
                        phone=f"+1212{n % 10_000_000:07d}",
                        company=f"Company {n % 4999}",
                        budget=str(rng.randrange(1, 500) * 100),
                        source_id=source_id,
                        source_name=source_name,
                        owner_id=owner_id,
                        arrived_at=now - timedelta(seconds=rng.uniform(0, spread_days * 86400)),
                        next_touch_on=now.date() + timedelta(days=n % 7 - 3) if owner_id else None,
                    )
                )
            build(tenant_id, drafts, stage_id, route=owner_id is None, now=now)
            db.session.commit()
            if first == 0:
                # Statistics once the tables have rows: without them the builder's contact
                # lookups are planned as scans of the workspace (see csv_import.py's notes),
                # which would make seeding quadratic. The figures measured never run this.
                db.session.execute(sa.text("ANALYZE contact, lead"))
                db.session.commit()
        db.session.remove()
    return time.monotonic() - started


def analyze(database: str) -> None:
    """Fresh planner statistics after seeding (autovacuum would do it a little later)."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def time_pages(get, paths: list[str], count: int, warmup: int = 5) -> list[float]:
    """Milliseconds per ``get(path)``, one at a time, the paths in turn (after a warm-up)."""
    ms = []
    for n in range(warmup + count):
        started = time.perf_counter()
        answer = get(paths[n % len(paths)])
        if answer.status_code not in (200, 204):
            raise RuntimeError(f"GET {paths[n % len(paths)]}: {answer.status_code}")
        if n >= warmup:
            ms.append(1000 * (time.perf_counter() - started))
    return ms


def sign_in(port: int, email: str):
    """A ``requests`` session signed in to the app on ``port`` through its login form;
    ``session.page(method, path)`` asks the app.

    Production cookies are ``Secure``; on plain loopback HTTP the session sends them all
    the same."""
    import re

    import requests

    session = requests.Session()
    base = f"http://{HOST}:{port}"

    def page(method: str, path: str, **kwargs):
        for _ in range(5):  # redirects followed here, with the cookies each one set
            answer = session.request(
                method, base + path, timeout=60, allow_redirects=False, **kwargs
            )
            for cookie in session.cookies:
                cookie.secure = False
            if not answer.is_redirect:
                return answer
            method, path, kwargs = "GET", answer.headers["Location"].removeprefix(base), {}
        raise RuntimeError(f"too many redirects from {path}")

    form = page("GET", "/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    page("POST", "/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if "/login" in page("GET", "/board").url:  # the url of the last answer
        raise RuntimeError(f"could not sign in as {email}")
    session.page = page
    return session


STARTED: list["Proc"] = []  # stopped by ``workdir`` however the run ends


class Proc:
    """A server or worker in its own process group; its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict, logdir: Path, port: int = 0):
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.log_path = logdir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        STARTED.append(self)

    def start(self, health: str | None = "/healthz", seconds: float = 60) -> "Proc":
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=APP_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if health:
            wait_for(lambda: self._healthy(health), seconds, f"{self.name} to answer")
        return self

    def _healthy(self, path: str) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            conn.request("GET", path)
            return conn.getresponse().status == 200
        return False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, seconds: float = 20) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def log_count(self, needle: str) -> int:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace").count(needle)
        return 0


def gunicorn(name: str, app: str, env: dict, logdir: Path, workers: int = 4) -> Proc:
    """The web server; the bare baseline gets the very same settings."""
    port = free_port()
    env = {**env, "BASE_URL": f"http://{HOST}:{port}"}
    cmd = [PYTHON, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(workers)]
    cmd += ["--worker-class", "sync", "--timeout", "30", "--backlog", "2048", "--no-control-socket"]
    cmd += [app]
    return Proc(name, cmd, env, logdir, port)


def worker(env: dict, logdir: Path, name: str = "worker", *args: str) -> Proc:
    return Proc(name, [PYTHON, "worker.py", *args], env, logdir)


def bare_app(database: str, logdir: Path, workers: int = 4) -> Proc:
    """The baseline: Flask doing one INSERT (``bare_app.py``), under the same gunicorn."""
    env = {**os.environ, "BENCH_BARE_DSN": database, "PYTHONPATH": str(REPO / "benchmarks")}
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(BARE_SCHEMA)
    return gunicorn("bare", "bare_app:app", env, logdir, workers)


BARE_SCHEMA = """
CREATE TABLE IF NOT EXISTS bare_lead (
  id bigserial PRIMARY KEY, token text NOT NULL, idempotency_key text, name text NOT NULL,
  email text, phone text, message text, utm jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now())
"""


@contextlib.contextmanager
def workdir(name: str, ref: str = "HEAD"):
    """A temporary folder for the app at ``ref``, logs and private servers; kept only when
    the run failed."""
    global MEASURED
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    path.chmod(0o755)
    try:
        MEASURED = use_ref(ref, path)
        yield path
    except BaseException:
        log(f"logs kept in {path}")
        raise
    finally:
        for proc in STARTED:
            proc.stop()
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- load


@dataclass
class Request:
    path: str
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    method: str = "POST"
    key: str = ""  # what the sender calls this post (its Idempotency-Key)


@dataclass
class Answer:
    request: Request
    status: int | str = "unsent"
    payload: dict | None = None
    sent: float = 0.0  # time.monotonic()
    answered: float = 0.0
    tries: int = 0
    statuses: list = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


RETRY = (503, "error")


def send(
    port: int,
    requests: list[Request],
    concurrency: int = 16,
    rate: float | None = None,
    seconds: float = 300,
    retries: int = 0,
    timeout: float = 30,
    answers: list[Answer] | None = None,
) -> tuple[list[Answer], float]:
    """Send every request (at ``rate`` a second when given), ``concurrency`` at a time.

    With ``retries``, a 503 or a transport error is sent again (the same request,
    after the ``Retry-After`` it names, at most a second). Returns the answers, in the
    requests' order (in ``answers`` when given, filled in as they come), and the wall
    time from the first send to the last answer.
    """
    answers = [Answer(r) for r in requests] if answers is None else answers
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for index in range(len(requests)):
        todo.put(index)
    start = time.monotonic()
    stop_at = start + seconds

    def sender() -> None:
        conn = None
        while time.monotonic() < stop_at:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                break
            if rate:
                time.sleep(max(0.0, start + index / rate - time.monotonic()))
            answer = answers[index]
            while answer.tries <= retries and time.monotonic() < stop_at:
                conn = conn or http.client.HTTPConnection(HOST, port, timeout=timeout)
                answer.tries += 1
                answer.sent = answer.sent or time.monotonic()
                wait = 0.0
                try:
                    r = answer.request
                    conn.request(r.method, r.path, body=r.body or None, headers=r.headers)
                    response = conn.getresponse()
                    data = response.read()
                    answer.status = response.status
                    wait = float(response.headers.get("Retry-After") or 0)
                    if response.headers.get("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    answer.status, data = "error", b""
                    conn.close()
                    conn = None
                answer.answered = time.monotonic()
                answer.statuses.append(answer.status)
                with contextlib.suppress(ValueError):
                    answer.payload = json.loads(data) if data else None
                if answer.status not in RETRY:
                    break
                time.sleep(min(1.0, max(0.1, wait)))
        if conn:
            conn.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 5)
    last = max((a.answered for a in answers), default=start)
    return answers, max(1e-9, last - start)


def intake_posts(path: str, count: int, repeat_share: float = 0.1, tag: str = "") -> list[Request]:
    """JSON posts with their own Idempotency-Key; the last ``repeat_share`` repeat earlier ones."""
    tag = tag or uuid.uuid4().hex[:8]
    originals = round(count * (1 - repeat_share))
    posts = []
    for n in range(originals):
        body = {
            "name": f"Bench Person {n}",
            "email": f"p{n}.{tag}@bench.example.com",
            "phone": f"+1415{n % 10_000_000:07d}",
            "company": f"Company {n % 997}",
            "message": "Interested in a quote for 40 seats, please call back.",
            "utm_source": "bench",
            "utm_campaign": f"c{n % 7}",
        }
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"{tag}-{n}"}
        posts.append(Request(path, json.dumps(body).encode(), headers, key=f"{tag}-{n}"))
    step = max(1, originals // max(1, count - originals))
    posts += [posts[n * step % originals] for n in range(count - originals)]
    return posts


# --------------------------------------------------------------------------- what was built


def pending_posts(db: Database, tenant_id: int) -> int:
    return db.one(
        "SELECT count(*) FROM inbox_item WHERE tenant_id = %s AND status = 'pending'", tenant_id
    )[0]


def wait_built(db: Database, tenant_id: int, seconds: float) -> float:
    """Wait until the builder has taken every accepted post; the seconds it took."""
    started = time.monotonic()
    wait_for(lambda: pending_posts(db, tenant_id) == 0, seconds, "the lead builder", 0.1)
    return time.monotonic() - started


def check_leads(db: Database, tenant_id: int, answers: list[Answer]) -> dict:
    """Every 2xx receipt became exactly one lead: the lost, the duplicated, the split.

    ``split``: posts of one key answered with different receipts (a repeat that was
    not recognised); ``lost``: a receipt with no lead; ``duplicated``: a receipt built
    more than once, or leads in the workspace beyond the receipts it accepted.
    """
    by_key: dict[str, set] = {}
    for answer in answers:
        if answer.status in (200, 201, 202) and answer.payload:
            by_key.setdefault(answer.request.key, set()).add(answer.payload.get("id"))
    receipts = sorted({r for ids in by_key.values() for r in ids})
    rows = db.all(
        "SELECT receipt, count(*), count(DISTINCT lead_id) FROM inbox_item"
        " WHERE tenant_id = %s AND status = 'accepted' AND lead_id IS NOT NULL"
        " AND receipt = ANY(%s) GROUP BY receipt",
        tenant_id,
        receipts,
    )
    built = {receipt: (rows_, leads) for receipt, rows_, leads in rows}
    leads, accepted = db.one(
        "SELECT (SELECT count(*) FROM lead WHERE tenant_id = %s),"
        " (SELECT count(DISTINCT receipt) FROM inbox_item WHERE tenant_id = %s"
        " AND status = 'accepted')",
        tenant_id,
        tenant_id,
    )
    return {
        "receipts": len(receipts),
        "lost": sum(1 for r in receipts if r not in built),
        "duplicated": sum(n - 1 for n, _ in built.values()) + max(0, leads - accepted),
        "split": sum(1 for ids in by_key.values() if len(ids) > 1),
        "unanswered": sum(1 for a in answers if a.status not in (200, 201, 202)),
        "leads": leads,
    }


# --------------------------------------------------------------------------- CPU


def _proc_times() -> dict[int, tuple[int, float, str]]:
    """Every process: parent, CPU seconds, command line."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / tick, cmdline)
    return found


def _machine_cpu() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:8]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent while it runs: each named process tree, the PostgreSQL backends of
    ``database``, this process (the client) and everything else on the machine."""

    def __init__(self, roots: dict[str, int], database: str = ""):
        self.roots, self.database = roots, database.rsplit("/", 1)[-1]
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.done = threading.Event()

    def _category(self, pid: int, procs: dict) -> str | None:
        if pid == os.getpid():
            return "client"
        if self.database and f" {self.database} " in procs[pid][2]:
            return "postgres"
        seen = set()
        while pid in procs and pid not in seen:
            seen.add(pid)
            for name, root in self.roots.items():
                if pid == root:
                    return name
            pid = procs[pid][0]
        return None

    def _sample(self) -> None:
        procs = _proc_times()
        for pid, (_, cpu, _) in procs.items():
            name = self._category(pid, procs)
            if name:
                self.first.setdefault(pid, cpu)
                self.last[pid] = (name, cpu)

    def __enter__(self) -> "CpuMeter":
        self.machine0, self.wall0 = _machine_cpu(), time.monotonic()
        self._sample()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.done.wait(0.5):
            self._sample()

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self._sample()
        self.seconds = {name: 0.0 for name in [*self.roots, "postgres", "client"]}
        for pid, (name, cpu) in self.last.items():
            self.seconds[name] += cpu - self.first.get(pid, 0.0)
        self.wall = time.monotonic() - self.wall0
        machine = _machine_cpu() - self.machine0
        self.seconds["other"] = max(0.0, machine - sum(self.seconds.values()))
        self.busy = machine / (self.wall * (os.cpu_count() or 1))

    def per(self, count: int) -> str:
        """Milliseconds of CPU per item, by category."""
        return ", ".join(f"{k} {1000 * v / max(1, count):.2f}" for k, v in self.seconds.items())


def machine_busy(seconds: float = 2.0) -> float:
    """Share of both cores busy right now (others' work spoils figures)."""
    before = _machine_cpu()
    time.sleep(seconds)
    return (_machine_cpu() - before) / (seconds * (os.cpu_count() or 1))


# --------------------------------------------------------------------------- report


@dataclass
class Figure:
    benchmark: str
    command: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


def report(figures: list[Figure], notes: list[str] = ()) -> None:
    """The figures as rows of RESULTS.md's table, then the notes."""
    print("\n| benchmark | command | figure | baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        print(
            f"| {f.benchmark} | `{f.command}` | {f.figure} | {f.baseline} | {f.ratio} "
            f"| {f.target} | {met} |"
        )
    for note in [*notes, f"The app measured: {MEASURED}.", SHARED_NOTE]:
        print(f"\n- {note}")
    sys.stdout.flush()


def command() -> str:
    return ".venv/bin/python " + " ".join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])
