"""Throughput and correctness of the public intake endpoint ``POST /in/<token>``.

One run, everything on 127.0.0.1, everything bounded in count and time:

1. a fresh PostgreSQL database, migrations, a workspace and a source made through
   the operator CLI in production mode; Redis db 14 (``--redis-url``) flushed;
2. Conveyor under gunicorn (sync workers by default), waited for on /healthz;
3. N JSON posts at a fixed concurrency from threads with http.client connections;
   a share of them (10 % by default) repeat an Idempotency-Key whose original has
   already been answered, so they are true duplicates;
4. what was stored, counted with SQL: lost leads (answered 201 but missing) and
   duplicated leads (more leads than distinct keys) must both be 0;
5. a baseline in the same run: a bare Flask app (benchmarks/_bare_app.py) under the
   same gunicorn settings doing one INSERT per post, hit with the same posts;
6. servers stopped, databases dropped, the Redis db flushed.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/intake.py [--leads 10000] [--concurrency 16] [--ref HEAD]

``--ref HEAD`` benchmarks the committed app (unpacked with ``git archive``) instead of
the working tree. gunicorn runs ``--workers 4 --threads 1`` (sync workers: they answer
``Connection: close``, so every post opens a new TCP connection, for both apps).
Besides latency and throughput it reports CPU per post by process (gunicorn workers,
all PostgreSQL processes, Redis, this client, other work on the box) and warns when
other work on the machine spoiled a phase. When ``source create --rate-limit`` does
not store the requested limit, it says so and sets the limit with SQL.

Exit status: 0 when nothing was lost or duplicated and there were no 5xx or
transport errors, 1 otherwise, 2 when the run could not be set up or was aborted.
The Conveyor/bare ratio target is reported but does not change the exit status.
"""

import argparse
import http.client
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SECRET_KEY = "benchmark-only-" + uuid.uuid4().hex
OWNER_EMAIL = "owner@bench.example.com"
OWNER_PASSWORD = "bench-owner-Pa55-2026"

BARE_SCHEMA = """
CREATE TABLE bare_lead (
    id bigserial PRIMARY KEY,
    token varchar(64) NOT NULL,
    idempotency_key varchar(250),
    name varchar(200) NOT NULL,
    email varchar(254),
    phone varchar(40),
    message text,
    utm jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now()
)
"""


class SetupError(RuntimeError):
    """The run could not be prepared (a command failed, a server did not start)."""


class HardTimeout(BaseException):
    """Raised in the main thread by SIGALRM when the whole run overstays its bound."""


# --------------------------------------------------------------------------- helpers


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def run(cmd: list[str], deadline: Deadline, env=None, cwd=None, limit: float = 120) -> str:
    """Run a command to completion (bounded); its stdout, or SetupError with stderr."""
    timeout = max(1.0, min(limit, deadline.remaining()))
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise SetupError(f"timed out after {timeout:.0f}s: {' '.join(cmd[:4])} ...") from error
    if done.returncode != 0:
        raise SetupError(f"{' '.join(cmd[:6])} ... exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-share * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    host: str
    port: int
    user: str

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def create(self, database: str, deadline: Deadline) -> None:
        run(["createdb", *self._args(), database], deadline, limit=60)

    def drop(self, database: str) -> None:
        """Best effort, bounded; used in cleanup, so it never raises."""
        try:
            subprocess.run(
                ["dropdb", *self._args(), "--if-exists", "--force", database],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
        except (subprocess.SubprocessError, OSError) as error:
            log(f"WARNING: could not drop database {database}: {error}")

    def checkpoint(self, database: str) -> None:
        """Start each measured phase with no dirty buffers left by the previous one."""
        try:
            with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=10) as conn:
                conn.execute("CHECKPOINT")
        except psycopg.Error as error:
            log(f"note: CHECKPOINT skipped ({error.__class__.__name__})")


# --------------------------------------------------------------------------- CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may hold spaces.
    return text[text.rindex(")") + 2 :].split()


def _all_processes() -> dict[int, tuple[int, int, float, str]]:
    """pid -> (ppid, start tick, CPU seconds, command line) for every process we can read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None:
            continue
        try:
            cmdline = (
                (entry / "cmdline")
                .read_bytes()[:200]
                .replace(b"\0", b" ")
                .decode("utf-8", "replace")
            )
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        found[int(entry.name)] = (int(fields[1]), int(fields[19]), cpu, cmdline)
    return found


def machine_busy_share(seconds: float) -> float:
    """How busy the machine is before we load it (another run on the box spoils ours)."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(1e-9, total1 - total0)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) seconds summed over all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuSampler:
    """CPU spent during the load by category: the gunicorn under test, PostgreSQL (all
    its processes), Redis, this load generator, and everything else ("foreign": other
    work on the box, which spoils a run). Samples /proc every second; a process that
    starts and ends between two samples is missed, so "foreign" is a lower bound."""

    def __init__(self, master_pid: int):
        self.master_pid = master_pid
        self.spent: Counter = Counter()
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _category(self, pid: int, ppid: int, cmdline: str) -> str:
        if pid == os.getpid():
            return "client"
        if self.master_pid in (pid, ppid):
            return "gunicorn"
        if cmdline.startswith("postgres"):
            return "postgres"
        if cmdline.startswith("redis-server"):
            return "redis"
        return "kernel" if not cmdline else "foreign"

    def _sample(self, first: bool) -> None:
        for pid, (ppid, started, cpu, cmdline) in _all_processes().items():
            if pid in self._seen:
                base = self._seen[pid]
            elif first or started < self._start_tick:
                base = cpu  # running before we began: count from now on
            else:
                base = 0.0  # started during the load: count all of it
            self.spent[self._category(pid, ppid, cmdline)] += cpu - base
            self._seen[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample(first=False)

    def start(self) -> None:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        self._start_tick = int(uptime * CLOCK_TICKS)
        self._machine = machine_cpu()
        self._sample(first=True)
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample(first=False)
        busy0, total0 = self._machine
        busy1, total1 = machine_cpu()
        figures = {f"{name}_s": self.spent.get(name, 0.0) for name in CPU_CATEGORIES}
        figures["machine_busy_s"] = busy1 - busy0
        figures["machine_total_s"] = total1 - total0
        return figures


CPU_CATEGORIES = ("gunicorn", "postgres", "redis", "client", "kernel", "foreign")


# --------------------------------------------------------------------------- gunicorn


class Server:
    """A gunicorn in its own session, stopped by its process group id."""

    def __init__(self, name: str, app: str, port: int, cwd: Path, env: dict, args, logdir: Path):
        self.name = name
        self.port = port
        self.log_path = logdir / f"{name}-gunicorn.log"
        worker_class = "sync" if args.threads == 1 else "gthread"
        self.cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            worker_class,
            "--timeout",
            "30",
            "--graceful-timeout",
            "10",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            "--no-control-socket",
            app,
        ]
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, deadline: Deadline) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy(deadline)

    def _wait_healthy(self, deadline: Deadline) -> None:
        last = "no answer"
        for _ in range(300):  # at most ~60 s
            if deadline.expired():
                break
            if self.process.poll() is not None:
                raise SetupError(f"{self.name} gunicorn exited early:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status == 200:
                    return
                last = f"{response.status} {body[:200]!r}"
            except (OSError, http.client.HTTPException) as error:
                last = repr(error)
            time.sleep(0.2)
        raise SetupError(f"{self.name} never answered /healthz 200 ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the master's pid
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                log(f"WARNING: {self.name} gunicorn did not stop on {sig.name}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def log_problems(self) -> dict:
        text = self.log_tail(10_000_000)
        return {
            "tracebacks": text.count("Traceback (most recent call last)"),
            "worker_timeouts": text.count("WORKER TIMEOUT"),
            "intake_unavailable": text.count("intake could not store a post"),
        }


# --------------------------------------------------------------------------- the posts

# fmt: off
FIRST_NAMES = (
    "Anna", "Maria", "Olga", "Elena", "Irina", "Sofia", "Emma", "Olivia", "Ava", "Mia", "Chloe",
    "Grace", "Lucy", "Zoe", "Nina", "Eva", "Ivan", "Dmitry", "Sergey", "Alexei", "Mikhail",
    "James", "John", "Robert", "Michael", "David", "Daniel", "Lucas", "Noah", "Liam", "Ethan",
    "Omar", "Yusuf", "Kenji", "Hiroshi", "Mateo", "Diego", "Pierre", "Hans", "Lars", "Piotr",
    "Tomas",
)
LAST_NAMES = (
    "Ivanova", "Petrov", "Smirnov", "Kuznetsova", "Popov", "Sokolova", "Lebedev", "Kozlova",
    "Novikov", "Morozova", "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
    "Davis", "Rodriguez", "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore",
    "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall",
    "Young", "King", "Wright", "Lopez", "Hill", "Scott", "Green", "Adams", "Baker", "Nelson",
    "Carter",
)
# fmt: on
DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "corp.example.org",
    "studio.example.net",
)
COMPANIES = (
    "Northwind Traders",
    "Blue Fern Dental",
    "Harbor & Hill Law",
    "Maple Street Bakery",
    "Quantum Roofing",
    "Bright Path Tutoring",
    "Ural Logistics",
    "Sever Stroy",
    "Green Valley Landscaping",
    "Pixel Forge Studio",
)
MESSAGES = (
    "Hi, we are looking for a quote for {n} units, delivery before the end of the month.",
    "Could someone call me back tomorrow morning? I'd like to discuss pricing for my team.",
    "Saw your ad and want to know whether you serve our area. We are a team of {n}.",
    "We need an estimate for the renovation of our office (about {n} square meters).",
    "Please send me the brochure and the price list. Is there a discount for nonprofits?",
    "Our current provider is closing; we need to switch within {n} days. What are the steps?",
    "Interested in the annual plan. Do you offer invoicing and a trial period?",
    "Hello! My neighbour recommended you. Can you come by next week for a consultation?",
)
UTM_SOURCES = ("google", "facebook", "instagram", "newsletter", "bing", "partner-site", "yandex")
UTM_MEDIUMS = ("cpc", "social", "email", "referral", "display")
UTM_CAMPAIGNS = ("winter-sale-2026", "brand", "retargeting-q4", "launch-webinar", "local-seo")
UTM_TERMS = ("crm for small business", "sales pipeline tool", "lead tracking", "")
PAGES = ("/pricing", "/contact", "/landing/winter", "/blog/how-to-sell", "/")


def phone_number(rng: random.Random) -> str:
    area = rng.choice((212, 310, 415, 512, 617, 646, 702, 773, 206, 303))
    line = rng.randrange(100, 10000)
    exchange = rng.randrange(200, 1000)
    style = rng.randrange(4)
    if style == 0:
        return f"+1 {area} {exchange} {line:04d}"
    if style == 1:
        return f"({area}) {exchange}-{line:04d}"
    if style == 2:
        return f"{area}.{exchange}.{line:04d}"
    return f"+1{area}{exchange}{line:04d}"


def lead_body(rng: random.Random, index: int, run_tag: str) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    body = {"name": f"{first} {last}"}
    reach = rng.random()
    if reach >= 0.08:  # 92 % give an email (unique per lead)
        body["email"] = f"{first}.{last}.{run_tag}{index}@{rng.choice(DOMAINS)}".lower()
    if reach < 0.08 or rng.random() < 0.75:  # the rest give a phone; most give both
        body["phone"] = phone_number(rng)
    if rng.random() < 0.5:
        body["company"] = rng.choice(COMPANIES)
    text = rng.choice(MESSAGES).format(n=rng.randrange(2, 400))
    body["message"] = " ".join([text] * rng.randrange(1, 4))
    body["utm_source"] = rng.choice(UTM_SOURCES)
    body["utm_medium"] = rng.choice(UTM_MEDIUMS)
    body["utm_campaign"] = rng.choice(UTM_CAMPAIGNS)
    term = rng.choice(UTM_TERMS)
    if term:
        body["utm_term"] = term
    body["utm_content"] = f"variant-{rng.choice('abc')}"
    body["page_url"] = "https://www.example.com" + rng.choice(PAGES)  # lands in `extra`
    return body


@dataclass
class Job:
    index: int  # position in the send order
    key: str
    body: bytes
    repeat_of: int | None = None  # index of the original job with the same key


def plan_posts(total: int, repeat_share: float, concurrency: int, seed: int) -> list[Job]:
    """``total`` posts; ``repeat_share`` of them repeat an earlier post's key and body.

    A repeat is placed at least ``gap`` originals after the post it repeats, and the
    sender still waits for the original's answer before sending it.
    """
    rng = random.Random(seed)
    run_tag = uuid.uuid4().hex[:6]
    repeats = int(total * repeat_share)
    originals = total - repeats
    gap = max(1, min(4 * concurrency, originals // 4))
    # (position among originals, the original repeated) for each repeat
    placements = []
    for _ in range(repeats):
        after = rng.randrange(gap, originals) if originals > gap else originals - 1
        placements.append((after, rng.randrange(0, max(1, after - gap + 1))))
    placements.sort()
    jobs: list[Job] = []
    original_index: dict[int, int] = {}  # original number -> job index
    cursor = 0
    for number in range(originals):
        body = json.dumps(lead_body(rng, number, run_tag), ensure_ascii=False).encode()
        key = f"bench-{run_tag}-{number:07d}"
        original_index[number] = len(jobs)
        jobs.append(Job(len(jobs), key, body))
        while cursor < len(placements) and placements[cursor][0] == number:
            source = jobs[original_index[placements[cursor][1]]]
            jobs.append(Job(len(jobs), source.key, source.body, repeat_of=source.index))
            cursor += 1
    return jobs


# --------------------------------------------------------------------------- load


@dataclass
class Outcome:
    status: int | str = "not sent"
    latency: float = 0.0
    lead_id: int | None = None
    answer: str | None = None  # the "status" field of a JSON answer


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    wall: float
    cpu: dict = field(default_factory=dict)
    aborted: bool = False


def post_all(
    server: Server,
    path: str,
    jobs: list[Job],
    concurrency: int,
    request_timeout: float,
    deadline: Deadline,
) -> LoadResult:
    outcomes = [Outcome() for _ in jobs]
    answered = [threading.Event() for _ in jobs]
    work: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        work.put(job)
    stop = threading.Event()

    def sender() -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            while not stop.is_set():
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                if job.repeat_of is not None:
                    answered[job.repeat_of].wait(timeout=deadline.remaining())
                if stop.is_set():
                    return
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, server.port, timeout=request_timeout)
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": job.key,
                    "User-Agent": "conveyor-benchmark/1 (+benchmarks/intake.py)",
                }
                outcome = outcomes[job.index]
                started = time.perf_counter()
                try:
                    # Keep-alive when the server allows it; http.client reconnects
                    # by itself after a "Connection: close" answer (sync workers).
                    conn.request("POST", path, body=job.body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    outcome.status = response.status
                except (OSError, http.client.HTTPException) as error:
                    outcome.status = f"error:{error.__class__.__name__}"
                    data = b""
                    conn.close()
                    conn = None
                outcome.latency = time.perf_counter() - started
                try:
                    payload = json.loads(data) if data else {}
                except ValueError:
                    payload = {}
                if isinstance(payload, dict):
                    lead_id = payload.get("id")
                    outcome.lead_id = lead_id if isinstance(lead_id, int) else None
                    outcome.answer = payload.get("status")
                answered[job.index].set()
        finally:
            if conn is not None:
                conn.close()

    sampler = CpuSampler(server.process.pid)
    sampler.start()
    started = time.perf_counter()
    threads = [
        threading.Thread(target=sender, name=f"sender-{n}", daemon=True) for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    watchdog = threading.Timer(deadline.remaining(), stop.set)
    watchdog.daemon = True
    watchdog.start()
    for thread in threads:
        thread.join(timeout=deadline.remaining() + request_timeout + 5)
    watchdog.cancel()
    wall = time.perf_counter() - started
    aborted = stop.is_set() or any(thread.is_alive() for thread in threads)
    stop.set()
    return LoadResult(outcomes, wall, sampler.stop(), aborted)


def summarise(load: LoadResult) -> dict:
    statuses = Counter(str(o.status) for o in load.outcomes)
    done = [o for o in load.outcomes if isinstance(o.status, int)]
    latencies = sorted(o.latency for o in done)
    created = [o for o in done if o.status == 201]
    requests = len(done)
    cpu = load.cpu
    # Does latency drift as the tables grow? p50 of the first and last tenth sent.
    tenth = max(1, len(load.outcomes) // 10)
    first = sorted(o.latency for o in load.outcomes[:tenth] if isinstance(o.status, int))
    last = sorted(o.latency for o in load.outcomes[-tenth:] if isinstance(o.status, int))
    return {
        "requests_answered": requests,
        "wall_s": load.wall,
        "req_per_s": requests / load.wall if load.wall else 0.0,
        "accepted_per_s": len(created) / load.wall if load.wall else 0.0,
        "created": len(created),
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1000,
            "p90": percentile(latencies, 0.90) * 1000,
            "p99": percentile(latencies, 0.99) * 1000,
            "max": (latencies[-1] if latencies else float("nan")) * 1000,
            "mean": (sum(latencies) / len(latencies) if latencies else float("nan")) * 1000,
            "p50_first_tenth": percentile(first, 0.50) * 1000,
            "p50_last_tenth": percentile(last, 0.50) * 1000,
        },
        "statuses": dict(sorted(statuses.items())),
        "cpu": {
            **cpu,
            **{
                f"{name}_ms_per_request": 1000 * cpu.get(f"{name}_s", 0) / max(1, requests)
                for name in CPU_CATEGORIES
            },
            "machine_busy_share": cpu.get("machine_busy_s", 0)
            / max(1e-9, cpu.get("machine_total_s", 0)),
            "foreign_share": cpu.get("foreign_s", 0) / max(1e-9, cpu.get("machine_total_s", 0)),
        },
        "aborted": load.aborted,
    }


# --------------------------------------------------------------------------- Conveyor


def conveyor_env(args, database: str, port: int, pg: Postgres) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MAIL_", "RATELIMIT_", "FLASK_")) and k not in ("RQ_QUEUE",)
    }
    env.update(
        CONVEYOR_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=pg.dsn(database),
        REDIS_URL=args.redis_url,
        BASE_URL=f"http://{HOST}:{port}",
        PYTHONUNBUFFERED="1",
        BENCH_APP_DIR=str(args.app_dir),
    )
    return env


def flask_cli(env: dict, deadline: Deadline, *words: str) -> str:
    return run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *words],
        deadline,
        env=env,
        cwd=env["BENCH_APP_DIR"],
    )


def app_snapshot(ref: str, into: Path, deadline: Deadline) -> tuple[Path, str]:
    """The app as committed at ``ref`` (not the working tree), unpacked into a temp dir."""
    import io
    import tarfile

    commit = run(["git", "-C", str(REPO), "rev-parse", "--verify", ref], deadline).strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
        timeout=max(1.0, min(60, deadline.remaining())),
        check=True,
    ).stdout
    target = into / f"conveyor-{commit[:12]}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target, commit


def set_up_conveyor(args, database: str, port: int, pg: Postgres, deadline: Deadline) -> dict:
    env = conveyor_env(args, database, port, pg)
    # The app must come from app_dir, not from an installed copy elsewhere.
    imported = run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        deadline,
        env=env,
        cwd=args.app_dir,
    ).strip()
    if not Path(imported).resolve().is_relative_to(Path(args.app_dir).resolve()):
        raise SetupError(f"`import app` in {args.app_dir} loads {imported}")
    pg.create(database, deadline)
    flask_cli(env, deadline, "db", "upgrade")
    workspace = json.loads(
        flask_cli(
            env,
            deadline,
            "workspace",
            "create",
            "--name",
            "Benchmark Co",
            "--owner-email",
            OWNER_EMAIL,
            "--owner-password",
            OWNER_PASSWORD,
        )
    )
    for number in range(args.lead_generators):
        flask_cli(
            env,
            deadline,
            "user",
            "add",
            "--workspace",
            workspace["slug"],
            "--email",
            f"leads{number}@bench.example.com",
            "--role",
            "lead_generator",
            "--password",
            OWNER_PASSWORD,
        )
    source = json.loads(
        flask_cli(
            env,
            deadline,
            "source",
            "create",
            "--workspace",
            workspace["slug"],
            "--name",
            "Benchmark API",
            "--kind",
            "partner",
            "--rate-limit",
            str(args.rate_limit),
        )
    )
    url = urlsplit(source["intake_url"])
    if (url.hostname, url.port) != (HOST, port):
        raise SetupError(f"intake_url {source['intake_url']} does not use BASE_URL")
    notes = []
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        stored = conn.execute(
            "SELECT rate_limit_per_minute FROM source WHERE id = %s", (source["id"],)
        ).fetchone()[0]
        if stored != args.rate_limit:
            notes.append(
                f"`source create --rate-limit {args.rate_limit}` stored {stored}/minute "
                "(app/cli.py does not pass the option on); set with SQL for this run"
            )
            log("WARNING: " + notes[-1])
            conn.execute(
                "UPDATE source SET rate_limit_per_minute = %s WHERE id = %s",
                (args.rate_limit, source["id"]),
            )
    return {
        "env": env,
        "path": url.path,
        "source_id": source["id"],
        "tenant_id": workspace["id"],
        "notes": notes,
    }


def count_conveyor(pg: Postgres, database: str, source_id: int, jobs, outcomes) -> dict:
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:

        def one(sql: str, *params):
            return conn.execute(sql, params).fetchone()[0]

        lead_ids = {
            row[0] for row in conn.execute("SELECT id FROM lead WHERE source_id = %s", (source_id,))
        }
        inbox = {
            f"{status}/{http_status}": count
            for status, http_status, count in conn.execute(
                "SELECT status, http_status, count(*) FROM inbox_item WHERE source_id = %s"
                " GROUP BY status, http_status ORDER BY status, http_status",
                (source_id,),
            )
        }
        keys = one("SELECT count(*) FROM intake_key WHERE source_id = %s", source_id)
        keys_without_lead = one(
            "SELECT count(*) FROM intake_key WHERE source_id = %s AND lead_id IS NULL", source_id
        )
        leads_without_key = one(
            "SELECT count(*) FROM lead l WHERE l.source_id = %s AND NOT EXISTS"
            " (SELECT 1 FROM intake_key k WHERE k.lead_id = l.id)",
            source_id,
        )
        contacts = one(
            "SELECT count(DISTINCT contact_id) FROM lead WHERE source_id = %s", source_id
        )
        inbox_pointing_nowhere = one(
            "SELECT count(*) FROM inbox_item i WHERE i.source_id = %s"
            " AND i.status IN ('accepted', 'duplicate')"
            " AND NOT EXISTS (SELECT 1 FROM lead l WHERE l.id = i.lead_id)",
            source_id,
        )
    created_ids = [o.lead_id for o in outcomes if o.status == 201]
    ids_by_key: dict[str, set] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome.status, int) and 200 <= outcome.status < 300:
            ids_by_key.setdefault(job.key, set()).add(outcome.lead_id)
    keys_sent = len(
        {job.key for job, o in zip(jobs, outcomes, strict=True) if o.status != "not sent"}
    )
    repeat_mismatch = sum(
        1
        for job, outcome in zip(jobs, outcomes, strict=True)
        if job.repeat_of is not None
        and outcome.status == 200
        and outcomes[job.repeat_of].status == 201
        and outcome.lead_id != outcomes[job.repeat_of].lead_id
    )
    return {
        "leads": len(lead_ids),
        "inbox_rows": sum(inbox.values()),
        "inbox_by_status": inbox,
        "intake_keys": keys,
        "intake_keys_without_lead": keys_without_lead,
        "leads_without_key": leads_without_key,
        "contacts_of_these_leads": contacts,
        "inbox_rows_pointing_at_missing_lead": inbox_pointing_nowhere,
        "distinct_keys_sent": keys_sent,
        "lost": sum(1 for lead_id in created_ids if lead_id not in lead_ids),
        "created_answers_without_id": sum(1 for lead_id in created_ids if lead_id is None),
        "duplicated": max(0, len(lead_ids) - keys_sent),
        "keys_answered_with_several_leads": sum(1 for ids in ids_by_key.values() if len(ids) > 1),
        "repeats_answered_with_another_lead": repeat_mismatch,
    }


# --------------------------------------------------------------------------- bare baseline


def set_up_bare(args, database: str, pg: Postgres, deadline: Deadline) -> dict:
    pg.create(database, deadline)
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        conn.execute(BARE_SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(BENCH_BARE_DSN=pg.dsn(database), PYTHONUNBUFFERED="1")
    return {"env": env, "path": "/in/bare-" + uuid.uuid4().hex[:12]}


def count_bare(pg: Postgres, database: str, outcomes) -> dict:
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM bare_lead")}
    created_ids = [o.lead_id for o in outcomes if o.status == 201]
    return {"rows": len(ids), "lost": sum(1 for lead_id in created_ids if lead_id not in ids)}


# --------------------------------------------------------------------------- report


def print_phase(title: str, summary: dict) -> None:
    lat = summary["latency_ms"]
    cpu = summary["cpu"]
    print(f"\n== {title}")
    print(
        f"  answered {summary['requests_answered']} in {summary['wall_s']:.2f} s: "
        f"{summary['req_per_s']:.1f} req/s, {summary['accepted_per_s']:.1f} accepted (201)/s"
    )
    print(
        f"  latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}"
        f"  max {lat['max']:.1f}  mean {lat['mean']:.1f}  (p50 first/last tenth sent: "
        f"{lat['p50_first_tenth']:.1f}/{lat['p50_last_tenth']:.1f})"
    )
    print(f"  statuses: {json.dumps(summary['statuses'])}")
    print(
        "  CPU ms per request: "
        + ", ".join(f"{name} {cpu[f'{name}_ms_per_request']:.2f}" for name in CPU_CATEGORIES)
        + f"; machine busy {100 * cpu['machine_busy_share']:.0f} %"
    )
    if cpu["foreign_share"] > 0.03:
        print(
            f"  WARNING: other work on the machine used {100 * cpu['foreign_share']:.0f} % "
            "of the CPUs during this phase; its figures are spoiled, run again on a quiet box"
        )
    if summary["aborted"]:
        print("  ABORTED by the time bound: figures cover only what was answered")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000, help="posts per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="sender threads")
    parser.add_argument("--repeat-share", type=float, default=0.10, help="share of repeats")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="1 = sync worker, >1 = gthread")
    parser.add_argument("--lead-generators", type=int, default=0, help="members to route to")
    parser.add_argument("--rate-limit", type=int, default=1_000_000, help="source posts/minute")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="FLUSHED")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--timeout", type=float, default=600, help="bound for the whole run (s)")
    parser.add_argument("--request-timeout", type=float, default=30, help="per request (s)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--target-ratio", type=float, default=0.60)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--ref",
        help="benchmark the app as committed at this git ref (e.g. HEAD) instead of the "
        "working tree; unpacked into a temp dir with `git archive`",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not 1 <= args.leads <= 1_000_000 or not 1 <= args.concurrency <= 512:
        parser.error("--leads must be 1..1000000 and --concurrency 1..512")
    if not 0 <= args.repeat_share < 1 or args.workers < 1 or args.threads < 1:
        parser.error("--repeat-share must be in [0, 1); --workers and --threads >= 1")

    deadline = Deadline(args.timeout)

    def hard_stop(signum, frame):
        raise HardTimeout(f"the run exceeded {args.timeout:.0f} s (+60 s grace)")

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout) + 60)

    pg = Postgres(args.pg_host, args.pg_port, args.pg_user)
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conveyor_db, bare_db = f"conveyor_bench_{tag}", f"conveyor_bench_bare_{tag}"
    created_dbs: list[str] = []
    servers: list[Server] = []
    redis_client = redis.Redis.from_url(args.redis_url, socket_timeout=10)
    logdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "benchmarks/intake.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "settings": {
            k: getattr(args, k)
            for k in ("leads", "concurrency", "repeat_share", "workers", "threads")
        }
        | {"worker_class": "sync" if args.threads == 1 else "gthread"},
    }
    exit_code = 0
    try:
        redis_client.flushdb()
        args.app_dir = REPO
        if args.ref:
            args.app_dir, commit = app_snapshot(args.ref, logdir, deadline)
            report["app"] = f"git archive {args.ref} = {commit}"
        else:
            report["app"] = f"working tree {REPO}"
        log(f"app under test: {report['app']}")
        idle_busy = machine_busy_share(3)
        report["machine_busy_before_start"] = idle_busy
        log(f"machine busy before the run: {100 * idle_busy:.0f} % of {os.cpu_count()} CPUs")
        if idle_busy > 0.10:
            log("WARNING: something else is using the CPUs; figures will be low and noisy")
        jobs = plan_posts(args.leads, args.repeat_share, args.concurrency, args.seed)
        repeats = sum(1 for job in jobs if job.repeat_of is not None)
        log(f"{len(jobs)} posts planned ({repeats} repeats); logs in {logdir}")

        # ---- Conveyor
        port = free_port()
        created_dbs.append(conveyor_db)
        setup = set_up_conveyor(args, conveyor_db, port, pg, deadline)
        server = Server("conveyor", "wsgi:app", port, args.app_dir, setup["env"], args, logdir)
        servers.append(server)
        server.start(deadline)
        pg.checkpoint(conveyor_db)
        log(f"Conveyor up on :{port}; posting")
        load = post_all(
            server,
            setup["path"],
            jobs,
            args.concurrency,
            args.request_timeout,
            deadline,
        )
        server.stop()
        conveyor = summarise(load)
        conveyor["stored"] = count_conveyor(
            pg, conveyor_db, setup["source_id"], jobs, load.outcomes
        )
        conveyor["server_log"] = server.log_problems()
        conveyor["notes"] = setup["notes"]
        report["conveyor"] = conveyor
        print_phase("Conveyor POST /in/<token>", conveyor)
        stored = conveyor["stored"]
        print(
            f"  stored: {stored['leads']} leads, {stored['inbox_rows']} inbox rows "
            f"{json.dumps(stored['inbox_by_status'])}, {stored['intake_keys']} intake keys; "
            f"{stored['distinct_keys_sent']} distinct keys sent"
        )
        print(
            f"  lost: {stored['lost']} (must be 0)   duplicated: {stored['duplicated']} "
            f"(must be 0)   repeats answered with another lead: "
            f"{stored['repeats_answered_with_another_lead']}   leads without key: "
            f"{stored['leads_without_key']}"
        )
        unexpected = {k: v for k, v in conveyor["statuses"].items() if k not in ("200", "201")}
        print(f"  answers other than 201/200: {json.dumps(unexpected) if unexpected else 'none'}")
        print(f"  server log: {json.dumps(conveyor['server_log'])}")
        for note in setup["notes"]:
            print(f"  NOTE: {note}")

        # ---- bare baseline
        if not args.skip_baseline and not deadline.expired():
            port = free_port()
            created_dbs.append(bare_db)
            bare_setup = set_up_bare(args, bare_db, pg, deadline)
            bare_server = Server(
                "bare", "_bare_app:app", port, BENCH_DIR, bare_setup["env"], args, logdir
            )
            servers.append(bare_server)
            bare_server.start(deadline)
            pg.checkpoint(bare_db)
            log(f"bare app up on :{port}; posting")
            bare_load = post_all(
                bare_server,
                bare_setup["path"],
                jobs,
                args.concurrency,
                args.request_timeout,
                deadline,
            )
            bare_server.stop()
            bare = summarise(bare_load)
            bare["stored"] = count_bare(pg, bare_db, bare_load.outcomes)
            bare["server_log"] = bare_server.log_problems()
            report["bare"] = bare
            print_phase("bare Flask + one INSERT (baseline)", bare)
            print(f"  stored: {bare['stored']['rows']} rows, lost {bare['stored']['lost']}")
            ratio = conveyor["req_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
            met = ratio >= args.target_ratio
            report["ratio"] = {"value": ratio, "target": args.target_ratio, "met": met}
            print(
                f"\n== Conveyor/bare throughput: {ratio:.2f} (target >= {args.target_ratio:.2f}: "
                f"{'MET' if met else 'NOT MET'})"
            )
            # Less sensitive to other load on the box than req/s: what one post costs.
            cost = {
                name: phase["cpu"]["gunicorn_ms_per_request"]
                + phase["cpu"]["postgres_ms_per_request"]
                for name, phase in (("conveyor", conveyor), ("bare", bare))
            }
            report["ratio"]["cpu_cost_ms"] = cost
            report["ratio"]["cpu_cost_ratio"] = cost["bare"] / max(1e-9, cost["conveyor"])
            print(
                f"   CPU per post (gunicorn + PostgreSQL): Conveyor {cost['conveyor']:.2f} ms, "
                f"bare {cost['bare']:.2f} ms; bare/Conveyor {report['ratio']['cpu_cost_ratio']:.2f}"
            )

        bad = (
            stored["lost"]
            or stored["duplicated"]
            or stored["keys_answered_with_several_leads"]
            or stored["repeats_answered_with_another_lead"]
            or any(
                not k.isdigit() or int(k) >= 500 for k in conveyor["statuses"] if k != "not sent"
            )
        )
        exit_code = 2 if conveyor["aborted"] else 1 if bad else 0
    except (SetupError, HardTimeout, psycopg.Error, redis.RedisError) as error:
        log(f"ABORTED: {error.__class__.__name__}: {error}")
        exit_code = 2
    finally:
        signal.alarm(0)
        for server in servers:
            server.stop()
        for database in created_dbs:
            pg.drop(database)
        try:
            redis_client.flushdb()
        except redis.RedisError as error:
            log(f"WARNING: could not flush {args.redis_url}: {error}")
        if args.ref and getattr(args, "app_dir", REPO) != REPO:
            shutil.rmtree(args.app_dir, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log(f"cleaned up; gunicorn logs kept in {logdir}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
