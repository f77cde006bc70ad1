"""Faults under load: intake and the contact engine through a SIGKILLed gunicorn worker, a
Redis restart and a PostgreSQL restart.

One bounded run, everything on 127.0.0.1 and everything private to the run (the machine's
shared PostgreSQL on :5432 and Redis on :6379 are never touched):

1. a private PostgreSQL cluster (``initdb`` into a temp dir owned by ``postgres``, run with
   ``runuser -u postgres``, a free TCP port, its unix socket in that dir), a private
   ``redis-server`` on a free port (``--save "" --appendonly no``) and an aiosmtpd server
   in this process that keeps every message it receives (taking ``--smtp-delay``, 20 ms,
   to accept each, as a real relay does);
2. migrations (``flask --app wsgi db upgrade``) and seeding through the operator CLI in
   production mode: workspace "Chaos Co" (owner and 2 lead generators) with the source
   under load and a source for the leads that carry planned touches; workspace
   "Morning Co" (owner, closer, account manager) for the morning digest;
3. Conveyor under gunicorn (4 sync workers) and ``python worker.py`` (one RQ worker with
   its minute ticker), both with mail over SMTP to the aiosmtpd server;
4. reminders that come due during the load: planned touches (``lead.touch_scheduled_at``)
   spread over the load for the worker's regular minute ticks and, when the clock allows,
   a timezone for Morning Co whose morning window opens at the first minute tick of the
   load (3 digests, clients due today, deals deciding today);
5. N JSON posts to ``POST /in/<token>`` from a few sender threads, each post with its own
   ``Idempotency-Key``; after 20 %, 45 % and 70 % of the answers: SIGKILL one gunicorn
   worker, restart Redis, restart PostgreSQL (fast shutdown, down for ``--outage`` s,
   started again). Connection errors are recorded as "transport error". At 40 % and at
   55 % (``--extra-ticks``) 200 and 400 more planned touches come due and an extra
   ``app.tasks.engine.tick`` job is queued (the job worker.py queues every minute, as a
   second worker's ticker would), so that the worker is busy with a tick when Redis
   restarts and sending reminders when PostgreSQL restarts, whatever the minute;
6. every post answered 5xx or with a transport error is sent again with the same key and
   body until it gets a 2xx (bounded attempts with backoff);
7. checks, with SQL on the private database and the SMTP server's messages: every 2xx lead
   id exists and is the lead stored for its key, one lead per key (none duplicated, none
   lost), every key ends with a 2xx; every reminder that came due was emailed exactly once
   (none missing, none twice, none unexpected), the worker and gunicorn still run;
8. everything stopped and removed (also on Ctrl-C, SIGTERM and errors); logs are kept
   only when a check fails or with ``--keep-logs``.

Run from the repository root with the project's virtualenv, as root (``initdb`` runs as
the ``postgres`` user):

    .venv/bin/python benchmarks/chaos.py [--posts 3000] [--concurrency 8] [--json FILE]

``--ref HEAD`` runs the committed app (unpacked with ``git archive``) and ``--app-dir DIR``
an app unpacked elsewhere, instead of the working tree. The worker gets
``ENGINE_STALE_CLAIM_SECONDS`` (``--stale-claim``, 30 s here, 300 s by default in the app)
so that a message left claimed by a failed send is taken over within the run's bound.

Exit status: 0 when every check passed, 1 when one failed, 2 when the run could not be
set up or was aborted (time bound, Ctrl-C).
"""

import argparse
import asyncio
import email.parser
import http.client
import json
import math
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import redis
from rq import Queue

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from intake import (  # noqa: E402
    Deadline,
    HardTimeout,
    Server,
    SetupError,
    app_snapshot,
    free_port,
    lead_body,
    log,
    machine_busy_share,
    percentile,
    run,
)

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET_KEY = "chaos-only-" + uuid.uuid4().hex
PASSWORD = "chaos-run-Pa55-" + uuid.uuid4().hex[:10]
TRANSPORT = "transport error"
OUTBOX_ID = re.compile(r"<outbox-(\d+)\.(\d+)@conveyor>")
PHASES = (
    "before faults",
    "after gunicorn worker SIGKILL",
    "after Redis restart",
    "after PostgreSQL restart",
)
# Zones whose local minute is the UTC minute, +30 or +45 (no DST): together they put a
# morning window [hh:00, hh:15) on three quarters of every hour.
MORNING_ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu")


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: stop and clean up."""


# --------------------------------------------------------------------------- processes


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # [state, ppid, ...]


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def signal_pids(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def pg_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise SetupError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return found[-1].parent


class PrivatePostgres:
    """A throw-away cluster of this run's own: its data, socket and log in ``root``."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.data = root / "data"
        self.port = port
        self.log_path = root / "postgres.log"
        self.bin = pg_bin()
        self.version = self.bin.parent.name

    def _pg(self, program: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def init(self) -> None:
        shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        done = self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise SetupError(f"initdb failed: {done.stderr[-2000:]}")
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{HOST}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 60\n"
                "log_min_messages = warning\n"
            )

    def start(self) -> float:
        started = time.monotonic()
        done = self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "start"
        )
        if done.returncode != 0:
            raise SetupError(f"pg_ctl start failed: {done.stderr[-1000:]}\n{self.log_tail()}")
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> float:
        started = time.monotonic()
        done = self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if done.returncode != 0:
            raise SetupError(f"pg_ctl stop -m {mode} failed: {done.stderr[-1000:]}")
        return time.monotonic() - started

    def running(self) -> bool:
        return (
            self.data.exists()
            and self._pg("pg_ctl", "-D", str(self.data), "status").returncode == 0
        )

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def destroy(self, keep_log_in: Path | None) -> None:
        """Best effort, never raises: stop the cluster and remove its directory."""
        for mode in ("fast", "immediate"):
            try:
                if not self.running():
                    break
                self.stop(mode)
            except (SetupError, subprocess.SubprocessError, OSError) as error:
                log(f"WARNING: private PostgreSQL did not stop ({mode}): {error}")
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError, IndexError):
                signal_pids([int(pid_file.read_text().split()[0])], signal.SIGKILL)
        if keep_log_in is not None and self.log_path.exists():
            shutil.copy(self.log_path, keep_log_in / "postgres.log")
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


class PrivateRedis:
    """A redis-server of this run's own, without persistence: a restart empties it."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.log_path = root / "redis.log"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 20) -> float:
        started = time.monotonic()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise SetupError(f"redis-server exited {self.process.returncode}")
            if self.ping():
                return time.monotonic() - started
            time.sleep(0.02)
        raise SetupError(f"redis-server on :{self.port} did not answer PING")

    def stop(self) -> float:
        started = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: with --save "" it exits without saving
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return time.monotonic() - started


# --------------------------------------------------------------------------- SMTP


@dataclass
class Mail:
    received: float  # wall clock
    message_id: str
    to: str
    subject: str


class MailSink:
    """An SMTP server (aiosmtpd, in a thread of this process) that keeps every message."""

    def __init__(self, port: int, delay: float = 0.0):
        self.port = port
        self.delay = delay  # seconds to accept each message, as a real relay takes
        self._mails: list[Mail] = []
        self._lock = threading.Lock()
        self._controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = email.parser.BytesHeaderParser().parsebytes(envelope.content)
        mail = Mail(
            received=time.time(),
            message_id=str(headers.get("Message-ID", "")),
            to=str(headers.get("To", "")).strip().lower(),
            subject=str(headers.get("Subject", "")),
        )
        with self._lock:
            self._mails.append(mail)
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=HOST, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            try:
                self._controller.stop()
            except (RuntimeError, AssertionError, OSError) as error:
                log(f"WARNING: SMTP server did not stop cleanly: {error}")
            self._controller = None

    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)


# --------------------------------------------------------------------------- the app


class Gunicorn(Server):
    """intake.py's gunicorn (own session, waited for on /healthz) that lists its workers."""

    def worker_pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return children(self.process.pid)


class RqWorker:
    """``python worker.py`` (RQ worker, its scheduler and the minute ticker)."""

    def __init__(self, cwd: Path, env: dict, log_path: Path):
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, redis_url: str, deadline: Deadline) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            for _ in range(300):  # ~30 s: the worker registers itself in Redis
                if deadline.expired() or self.process.poll() is not None:
                    break
                if client.scard("rq:workers"):
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise SetupError(f"worker.py did not start:\n{self.log_text()[-3000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        pids = descendants(self.process.pid)  # the horse runs in a process group of its own
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        signal_pids([self.process.pid, *pids], signal.SIGKILL)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log("WARNING: worker.py did not exit after SIGKILL")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def app_env(pg: PrivatePostgres, redis_server: PrivateRedis, port: int, smtp_port: int, args):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MAIL_", "RATELIMIT_", "FLASK_", "STRIPE_", "ENGINE_"))
        and k not in ("RQ_QUEUE", "DATABASE_URL", "REDIS_URL", "BASE_URL", "SECRET_KEY")
    }
    env.update(
        CONVEYOR_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=pg.dsn("conveyor"),
        REDIS_URL=redis_server.url(0),
        BASE_URL=f"http://{HOST}:{port}",
        MAIL_SERVER=HOST,
        MAIL_PORT=str(smtp_port),
        MAIL_DEFAULT_SENDER="Conveyor <noreply@chaos.example.com>",
        ENGINE_STALE_CLAIM_SECONDS=str(args.stale_claim),
        PYTHONUNBUFFERED="1",
    )
    return env


def flask_cli(env: dict, app_dir: Path, deadline: Deadline, *words: str) -> dict:
    out = run([sys.executable, "-m", "flask", "--app", "wsgi", *words], deadline, env, app_dir)
    return json.loads(out) if out.strip().startswith("{") else {}


def set_up_workspaces(env: dict, app_dir: Path, deadline: Deadline, port: int) -> dict:
    """Two workspaces, their members and sources, through the operator CLI."""

    def cli(*words):
        return flask_cli(env, app_dir, deadline, *words)

    def source(slug: str, name: str) -> dict:
        made = cli(
            "source",
            "create",
            "--workspace",
            slug,
            "--name",
            name,
            "--kind",
            "partner",
            "--rate-limit",
            "1000000",
        )
        url = urlsplit(made["intake_url"])
        if (url.hostname, url.port) != (HOST, port):
            raise SetupError(f"intake_url {made['intake_url']} does not use BASE_URL")
        return {"id": made["id"], "path": url.path}

    def workspace(name: str, owner: str, members: list[tuple[str, str]]) -> dict:
        made = cli(
            "workspace",
            "create",
            "--name",
            name,
            "--owner-email",
            owner,
            "--owner-password",
            PASSWORD,
        )
        for email_address, role in members:
            cli(
                "user",
                "add",
                "--workspace",
                made["slug"],
                "--email",
                email_address,
                "--role",
                role,
                "--password",
                PASSWORD,
            )
        return made

    def chaos_co():
        made = workspace(
            "Chaos Co",
            "owner@chaos.example.com",
            [(f"generator{n}@chaos.example.com", "lead_generator") for n in range(2)],
        )
        made["load_source"] = source(made["slug"], "Chaos API")
        made["touch_source"] = source(made["slug"], "Planned touches")
        return made

    def morning_co():
        made = workspace(
            "Morning Co",
            "owner@morning.example.com",
            [
                ("closer@morning.example.com", "closer"),
                ("accounts@morning.example.com", "account_manager"),
            ],
        )
        made["source"] = source(made["slug"], "Morning form")
        return made

    with ThreadPoolExecutor(2) as pool:
        chaos, morning = pool.submit(chaos_co), pool.submit(morning_co)
        return {"chaos": chaos.result(), "morning": morning.result()}


# --------------------------------------------------------------------------- posting


@dataclass
class Attempt:
    phase: str
    status: int | str
    started: float  # seconds since the load began
    seconds: float
    lead_id: int | None = None
    answer: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == TRANSPORT or (isinstance(self.status, int) and self.status >= 500)

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass
class Post:
    index: int
    key: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)


class Poster:
    """One sender's connection (sync gunicorn workers close it after every answer)."""

    def __init__(self, port: int, path: str, timeout: float, clock: Callable[[], float]):
        self.port, self.path, self.timeout, self.clock = port, path, timeout, clock
        self.conn: http.client.HTTPConnection | None = None

    def send(self, post: Post, phase_of: Callable[[], str]) -> Attempt:
        """One post; the answer is filed under the phase in force when it arrived."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": post.key,
            "User-Agent": "conveyor-chaos/1 (+benchmarks/chaos.py)",
        }
        started = self.clock()
        error = None
        try:
            self.conn.request("POST", self.path, body=post.body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            status: int | str = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, data, error = TRANSPORT, b"", exc.__class__.__name__
            self.close()
        attempt = Attempt(phase_of(), status, started, self.clock() - started, error=error)
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            payload = {}
        if isinstance(payload, dict):
            lead_id = payload.get("id")
            attempt.lead_id = lead_id if isinstance(lead_id, int) else None
            attempt.answer = payload.get("status")
        post.attempts.append(attempt)
        return attempt

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def send_all(
    posts: list[Post],
    concurrency: int,
    make_poster: Callable[[], Poster],
    phase_of: Callable[[], str],
    deadline: Deadline,
    on_answer: Callable[[Attempt], None] | None = None,
    pause_after_error: float = 0.0,
) -> bool:
    """Each post once, from ``concurrency`` threads; False when the time bound cut it short."""
    work: queue.Queue[Post] = queue.Queue()
    for post in posts:
        work.put(post)
    stop = threading.Event()

    def sender() -> None:
        poster = make_poster()
        try:
            while not stop.is_set():
                try:
                    post = work.get_nowait()
                except queue.Empty:
                    return
                attempt = poster.send(post, phase_of)
                if on_answer is not None:
                    on_answer(attempt)
                if not attempt.ok and pause_after_error:
                    stop.wait(pause_after_error)  # as a client would back off
        finally:
            poster.close()

    return _run_threads(sender, concurrency, stop, deadline)


def retry_until_stored(
    posts: list[Post],
    concurrency: int,
    make_poster: Callable[[], Poster],
    deadline: Deadline,
    max_attempts: int,
) -> bool:
    """Send each post again with the same key and body until it gets a 2xx (bounded)."""
    work: queue.Queue[Post] = queue.Queue()
    for post in posts:
        work.put(post)
    stop = threading.Event()

    def sender() -> None:
        poster = make_poster()
        try:
            while not stop.is_set():
                try:
                    post = work.get_nowait()
                except queue.Empty:
                    return
                for number in range(max_attempts):
                    if number and stop.wait(min(4.0, 0.25 * 2**number)):
                        return
                    attempt = poster.send(post, lambda: "retry")
                    if attempt.ok or not attempt.retryable:
                        break
        finally:
            poster.close()

    return _run_threads(sender, concurrency, stop, deadline)


def _run_threads(target, count: int, stop: threading.Event, deadline: Deadline) -> bool:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    watchdog = threading.Timer(deadline.remaining(), stop.set)
    watchdog.daemon = True
    watchdog.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline.remaining() + 60)
    watchdog.cancel()
    cut_short = stop.is_set() or any(thread.is_alive() for thread in threads)
    stop.set()
    return not cut_short


def make_posts(count: int, tag: str, rng: random.Random) -> list[Post]:
    posts = []
    for number in range(count):
        body = json.dumps(lead_body(rng, number, tag), ensure_ascii=False).encode()
        posts.append(Post(number, f"chaos-{tag}-{number:06d}", body))
    return posts


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    name: str
    share: float
    phase: str  # the name of the phase it opens ("" for none)
    action: Callable[[], dict]
    at_answers: int = 0
    started: float | None = None
    ended: float | None = None
    details: dict = field(default_factory=dict)
    error: str | None = None
    background: bool = False  # run in a thread of its own: the next fault does not wait


class FaultInjector:
    """Runs each fault once the load has had its share of answers; names the phases."""

    def __init__(self, faults: list[Fault], total: int, clock: Callable[[], float]):
        self.faults = sorted(faults, key=lambda fault: fault.share)
        self.total, self.clock = total, clock
        self.answered = 0
        self.phase = PHASES[0]
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)
        self._background: list[threading.Thread] = []

    def on_answer(self, attempt: Attempt) -> None:
        with self._cond:
            self.answered += 1
            self._cond.notify_all()

    def current_phase(self) -> str:
        return self.phase

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """After the load: let a fault in progress end, inject none that is left."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=120)
        for thread in self._background:
            thread.join(timeout=60)

    def _run(self) -> None:
        for number, fault in enumerate(self.faults, start=1):
            threshold = math.ceil(fault.share * self.total)
            with self._cond:
                while self.answered < threshold and not self._stop:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                fault.at_answers = self.answered
            fault.started = self.clock()
            if fault.phase:  # an extra tick is no fault: it opens no phase
                self.phase = fault.phase
            log(f"event {number}: {fault.name} (after {fault.at_answers} answers)")
            if fault.background:
                thread = threading.Thread(target=self._act, args=(number, fault), daemon=True)
                self._background.append(thread)
                thread.start()
            else:
                self._act(number, fault)

    def _act(self, number: int, fault: Fault) -> None:
        try:
            fault.details = fault.action() or {}
        except Exception as error:  # noqa: BLE001 - recorded and reported as a failure
            fault.error = f"{error.__class__.__name__}: {error}"
            log(f"event {number} failed: {fault.error}")
        fault.ended = self.clock()


def kill_a_gunicorn_worker(server: Gunicorn, workers: int, rng: random.Random) -> dict:
    before = server.worker_pids()
    if not before:
        raise RuntimeError("gunicorn has no workers to kill")
    victim = rng.choice(before)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 30:
        now = server.worker_pids()
        if victim not in now and len(now) >= workers:
            return {
                "killed_pid": victim,
                "workers_before": len(before),
                "new_pids": sorted(set(now) - set(before)),
                "respawned_after_s": round(time.monotonic() - killed, 3),
            }
        time.sleep(0.02)
    return {"killed_pid": victim, "workers_before": len(before), "respawned_after_s": None}


def restart_redis(server: PrivateRedis, outage: float) -> dict:
    began = time.monotonic()
    stop_s = server.stop()
    time.sleep(outage)
    start_s = server.start()
    return {
        "stop_s": round(stop_s, 3),
        "start_s": round(start_s, 3),
        "down_s": round(time.monotonic() - began, 3),
    }


def restart_postgres(pg: PrivatePostgres, outage: float) -> dict:
    began = time.monotonic()
    stop_s = pg.stop("fast")
    time.sleep(outage)
    start_s = pg.start()
    return {
        "stop_s": round(stop_s, 3),
        "start_s": round(start_s, 3),
        "down_s": round(time.monotonic() - began, 3),
    }


# --------------------------------------------------------------------------- reminders


def riding_out(action: Callable, seconds: float = 30):
    """The harness's own writes wait out the outages it causes (bounded)."""
    give_up = time.monotonic() + seconds
    while True:
        try:
            return action()
        except (psycopg.OperationalError, redis.exceptions.ConnectionError):
            if time.monotonic() > give_up:
                raise
            time.sleep(0.25)


def next_minute(moment: float) -> float:
    return math.floor(moment / 60) * 60 + 60


def spread(start: float, end: float, count: int) -> list[float]:
    if count <= 0:
        return []
    step = (end - start) / count
    return [start + step * (number + 0.5) for number in range(count)]


def utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def morning_zone(tick: float) -> tuple[str, int, datetime] | None:
    """A zone whose morning window [hh:00, hh:15) holds the tick (earliest in it)."""
    best = None
    for zone in MORNING_ZONES:
        local = utc(tick).astimezone(ZoneInfo(zone))
        if local.minute < 14 and (best is None or local.minute < best[2].minute):
            best = (zone, local.hour, local)
    return best


@dataclass
class Expected:
    kind: str
    subject: int  # the lead; 0 for a digest
    recipient: str
    due: float  # wall clock
    group: str


def touch_owners(dsn: str, lead_ids: list[int]) -> dict[int, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            lead_id: email_address.lower()
            for lead_id, email_address in conn.execute(
                'SELECT l.id, u.email FROM lead l JOIN "user" u ON u.id = l.owner_id'
                " WHERE l.id = ANY(%s)",
                (lead_ids,),
            )
        }


def plan_touches(
    dsn: str, owners: dict[int, str], lead_ids: list[int], moments: list[float], group: str
) -> list[Expected]:
    """Plan a touch on each lead for its moment, as the deal page's form does."""
    rows = [(utc(moment), lead_id) for lead_id, moment in zip(lead_ids, moments, strict=True)]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("UPDATE lead SET touch_scheduled_at = %s WHERE id = %s", rows)
    return [
        Expected("touch_scheduled", lead_id, owners[lead_id], moment, group)
        for lead_id, moment in zip(lead_ids, moments, strict=True)
    ]


def prepare_morning(dsn: str, tenant: int, seeded: dict, morning: dict) -> list[Expected]:
    """Morning Co's window opens at the tick: digests, clients due today, deals deciding."""
    expected: list[Expected] = []
    today = morning["local_date"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant SET timezone = %s, digest_hour = %s WHERE id = %s",
            (morning["zone"], morning["hour"], tenant),
        )
        members = conn.execute(
            'SELECT u.id, u.email, m.role FROM membership m JOIN "user" u ON u.id = m.user_id'
            " WHERE m.tenant_id = %s AND m.active AND NOT m.digest_opt_out",
            (tenant,),
        ).fetchall()
        by_role = {role: (user_id, email) for user_id, email, role in members}
        account = conn.execute(
            "SELECT id FROM stage WHERE tenant_id = %s AND phase = 'account'"
            " ORDER BY position LIMIT 1",
            (tenant,),
        ).fetchone()[0]
        proposal = conn.execute(
            "SELECT id FROM stage WHERE tenant_id = %s AND phase = 'conversion'"
            " AND NOT is_won AND NOT is_lost ORDER BY position DESC LIMIT 1",
            (tenant,),
        ).fetchone()[0]
        am_id, am_email = by_role["account_manager"]
        closer_id, closer_email = by_role["closer"]
        for lead_id in seeded["clients"]:
            conn.execute(
                "UPDATE lead SET stage_id = %s, owner_id = %s, next_touch_on = %s WHERE id = %s",
                (account, am_id, today, lead_id),
            )
            expected.append(Expected("touch_due", lead_id, am_email, morning["tick"], "morning"))
        for number, lead_id in enumerate(seeded["deals"]):
            decides = today + timedelta(days=3 * (number % 2))
            conn.execute(
                "UPDATE lead SET stage_id = %s, owner_id = %s, decision_date = %s WHERE id = %s",
                (proposal, closer_id, decides, lead_id),
            )
            expected.append(
                Expected("decision_window", lead_id, closer_email, morning["tick"], "morning")
            )
        for _user_id, email_address in by_role.values():
            expected.append(Expected("digest", 0, email_address, morning["tick"], "morning"))
    return expected


def reminder_state(dsn: str, tenants: list[int], expected: list[Expected], sink: MailSink):
    """What the SMTP server got for each expected reminder, and the outbox rows behind it."""
    wanted = {(e.kind, e.subject, e.recipient): e for e in expected}
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT o.id, o.kind, coalesce(o.subject_id, 0), lower(u.email), o.status,"
            ' o.attempts, o.last_error FROM outbox_message o JOIN "user" u ON u.id = o.user_id'
            " WHERE o.tenant_id = ANY(%s)",
            (tenants,),
        ).fetchall()
    outbox = {row[0]: row for row in rows}
    rows_for: dict[tuple, list] = defaultdict(list)
    for row in rows:
        rows_for[(row[1], row[2], row[3])].append(row)
    delivered: dict[tuple, list[Mail]] = defaultdict(list)
    unexpected, other_mail = [], []
    for mail in sink.mails():
        match = OUTBOX_ID.search(mail.message_id)
        row = outbox.get(int(match[1])) if match else None
        if row is None:
            other_mail.append(mail)
            continue
        key = (row[1], row[2], mail.to)
        if key in wanted:
            delivered[key].append(mail)
        else:
            unexpected.append({"kind": row[1], "subject": row[2], "to": mail.to})
    return wanted, delivered, rows_for, unexpected, other_mail


def settled(wanted, delivered, rows_for) -> bool:
    """Every reminder emailed and none of their outbox rows still pending or claimed."""
    for key in wanted:
        if not delivered.get(key):
            return False
        if any(row[4] in ("pending", "sending") for row in rows_for.get(key, [])):
            return False
    return True


def summarise_reminders(wanted, delivered, rows_for, unexpected, other_mail, load_window):
    """Per kind: due, delivered, missing, duplicated, and the outbox rows' final states."""
    by_kind: dict[str, Counter] = defaultdict(Counter)
    received = {
        group: sorted(
            mail.received - load_window[0]
            for key, item in wanted.items()
            if item.group == group
            for mail in delivered.get(key, [])
        )
        for group in {item.group for item in wanted.values()}
    }
    sent_between = {g: [t[0], t[-1]] for g, t in sorted(received.items()) if t}
    latencies, during_load = [], 0
    for key, item in wanted.items():
        mails = delivered.get(key, [])
        counts = by_kind[item.kind]
        counts["due"] += 1
        if not mails:
            counts["missing"] += 1
        else:
            counts["delivered"] += 1
            counts["duplicated"] += len(mails) - 1
            # a copy with the Message-ID of the first (a re-send of the same outbox row)
            counts["duplicated with the same Message-ID"] += len(mails) - len(
                {mail.message_id for mail in mails}
            )
            first = min(mail.received for mail in mails)
            latencies.append(first - item.due)
            if load_window[0] <= first <= load_window[1]:
                during_load += 1
        for row in rows_for.get(key, []):
            counts[f"outbox {row[4]}"] += 1
            if row[5] > 1:
                counts["outbox rows sent after a failed attempt"] += 1
        if len(rows_for.get(key, [])) > 1:
            counts["several outbox rows"] += 1
    latencies.sort()
    errors = Counter(
        (row[6] or "").split(":")[0]
        for rows in rows_for.values()
        for row in rows
        if row[6] and wanted.get((row[1], row[2], row[3]))
    )
    total = Counter()
    for counts in by_kind.values():
        total.update(counts)
    return {
        "by_kind": {kind: dict(counts) for kind, counts in sorted(by_kind.items())},
        "due": total["due"],
        "delivered_once": sum(1 for key in wanted if len(delivered.get(key, [])) == 1),
        "missing": total["missing"],
        "duplicated": total["duplicated"],
        "duplicated_same_message_id": total["duplicated with the same Message-ID"],
        "unexpected": len(unexpected),
        "unexpected_examples": unexpected[:5],
        "other_mail": len(other_mail),
        "delivered_during_load": during_load,
        "sent_between_s": sent_between,
        "delay_after_due_s": {
            "p50": percentile(latencies, 0.5),
            "max": latencies[-1] if latencies else float("nan"),
        },
        "last_errors_seen": dict(errors),
    }


# --------------------------------------------------------------------------- checks


def check_leads(dsn: str, source_id: int, posts: list[Post]) -> dict:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        leads = {
            row[0] for row in conn.execute("SELECT id FROM lead WHERE source_id = %s", (source_id,))
        }
        keys: dict[str, list[int | None]] = defaultdict(list)
        for key, lead_id in conn.execute(
            "SELECT key, lead_id FROM intake_key WHERE source_id = %s", (source_id,)
        ):
            keys[key].append(lead_id)
        leads_without_key = conn.execute(
            "SELECT count(*) FROM lead l WHERE l.source_id = %s AND NOT EXISTS"
            " (SELECT 1 FROM intake_key k WHERE k.lead_id = l.id)",
            (source_id,),
        ).fetchone()[0]
        inbox = {
            f"{status}/{http_status}": count
            for status, http_status, count in conn.execute(
                "SELECT status, http_status, count(*) FROM inbox_item WHERE source_id = %s"
                " GROUP BY 1, 2 ORDER BY 1, 2",
                (source_id,),
            )
        }
    lost = mismatched = unresolved = keys_missing = 0
    stored_despite_error: Counter = Counter()
    for post in posts:
        stored = keys.get(f"idem:{post.key}", [])
        if not stored or stored[0] is None:
            keys_missing += 1
        answered = [a for a in post.attempts if a.ok]
        if not answered:
            unresolved += 1
        for attempt in answered:
            if attempt.lead_id not in leads:
                lost += 1
            elif stored and attempt.lead_id != stored[0]:
                mismatched += 1
        first = post.attempts[0] if post.attempts else None
        if first is not None and not first.ok and answered and answered[0].status == 200:
            kind = TRANSPORT if first.status == TRANSPORT else str(first.status)
            stored_despite_error[kind] += 1
    distinct_keys = len({post.key for post in posts})
    return {
        "leads": len(leads),
        "distinct_keys_posted": distinct_keys,
        "intake_keys": sum(len(v) for v in keys.values()),
        "keys_with_several_rows": sum(1 for v in keys.values() if len(v) > 1),
        "keys_missing": keys_missing,
        "leads_without_key": leads_without_key,
        "lost": lost,
        "duplicated": max(0, len(leads) - distinct_keys) + leads_without_key,
        "answered_with_another_lead": mismatched,
        "unresolved_after_retries": unresolved,
        "errors_whose_post_was_stored": dict(stored_despite_error),
        "inbox_by_status": inbox,
    }


def phase_table(posts: list[Post]) -> dict:
    table: dict[str, Counter] = {phase: Counter() for phase in (*PHASES, "retry")}
    for post in posts:
        for attempt in post.attempts:
            table.setdefault(attempt.phase, Counter())[str(attempt.status)] += 1
    return {phase: dict(sorted(c.items())) for phase, c in table.items()}


def error_kinds(posts: list[Post]) -> dict:
    return dict(
        Counter(
            f"{a.phase}: {a.error}" for post in posts for a in post.attempts if a.error is not None
        )
    )


def fault_effects(fault: Fault, posts: list[Post]) -> dict:
    """Errors answered in the fault's phase and how soon 2xx came back after it ended."""
    attempts = [a for post in posts for a in post.attempts if a.phase != "retry"]
    phase = [a for a in attempts if a.phase == fault.phase]
    errors = [a for a in phase if not a.ok]
    after = sorted(a.ended for a in attempts if a.ok and a.started >= (fault.ended or 0))
    slowest = max((a.seconds for a in phase), default=float("nan"))
    return {
        "errors": len(errors),
        "first_error_s": min((a.ended - fault.started for a in errors), default=None),
        "last_error_s": max((a.ended - fault.started for a in errors), default=None),
        "first_2xx_after_fault_s": (after[0] - fault.ended) if after else None,
        "slowest_answer_s": slowest,
    }


def job_window(log_text: str, job_id: str, day_start: float) -> dict:
    """When the worker started and ended a job, from its log's HH:MM:SS stamps."""
    found: dict = {}
    for line in log_text.splitlines():
        if job_id not in line or not re.match(r"\d\d:\d\d:\d\d ", line):
            continue
        hours, minutes, seconds = (int(x) for x in line[:8].split(":"))
        moment = day_start + hours * 3600 + minutes * 60 + seconds
        if "app.tasks.engine.tick()" in line and "started" not in found:
            found["started"] = moment
        elif "Job OK" in line:
            found["ended"], found["outcome"] = moment, "ok"
        elif "exception raised while executing" in line:
            found["ended"], found["outcome"] = moment, "raised an exception"
    return found


def log_counts(text: str, needles: dict[str, str]) -> dict:
    """How many log records (lines) match each pattern; tracebacks are not counted."""
    lines = text.splitlines()
    return {
        name: sum(1 for line in lines if re.search(pattern, line))
        for name, pattern in needles.items()
    }


GUNICORN_LOG = {
    "503: intake could not store a post": r"ERROR in views: intake could not store a post",
    "Redis down: rate limit skipped": r"WARNING in views: intake rate limit unavailable",
    "unhandled exceptions (500)": r"ERROR in app: Exception on ",
    "workers killed by a signal": r"Worker \(pid:\d+\) was sent SIG",
    "worker timeouts": r"WORKER TIMEOUT",
}
WORKER_LOG = {
    "jobs raised an exception": r"exception raised while executing",
    "Redis unreachable (worker waits and retries)": r"could not connect to Redis",
    "idle waits cut by a 5 s socket timeout": r"Timeout reading from socket",
    "RQ scheduler process died": r"Scheduler \[PID \d+\] raised an exception",
    "RQ worker quit on an unhandled exception": r"found an unhandled exception, quitting",
    "a new RQ worker started by worker.py": r"the RQ worker quit; a new one starts",
    "tick not queued (Redis down)": r"could not queue the engine tick",
    "sent, recording retried (database away)": r"outbox \d+ was sent but could not be recorded",
    "failed, recording retried (database away)": r"outbox \d+ failed but could not be recorded",
    "send failed, row set to retry": r"WARNING in delivery: outbox \d+: ",
}


# --------------------------------------------------------------------------- report


def fmt_s(value) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.2f} s"
    )


def print_report(report: dict) -> None:
    load = report["load"]
    print("\n== Chaos: faults under load")
    print(
        f"  {report['settings']['posts']} posts at concurrency {report['settings']['concurrency']}"
        f" (gunicorn {report['settings']['workers']} sync workers); load {load['wall_s']:.1f} s,"
        f" retries {report['retry']['wall_s']:.1f} s, whole run {report['run_s']:.0f} s"
    )
    print(
        f"  app: {report['app']}; machine busy before the run"
        f" {100 * report['machine_busy_before_start']:.0f} % of {report['cpus']} CPUs;"
        f" {report['load']['posts_per_s']:.1f} answers/s under load"
    )
    print("  faults:")
    for fault in report["faults"]:
        effects = fault["effects"]
        if not effects:
            print(f"    {fault['name']} at {100 * fault['share']:.0f} %: NOT INJECTED (load ended)")
            continue
        print(
            f"    {fault['name']} at {100 * fault['share']:.0f} % ({fault['at_answers']} answered,"
            f" +{fault['started']:.1f} s): {json.dumps(fault['details'])}"
            + (f" ERROR {fault['error']}" if fault["error"] else "")
        )
        print(
            f"      error answers in this phase {effects['errors']}; first 2xx after it ended"
            f" {fmt_s(effects['first_2xx_after_fault_s'])}; slowest answer"
            f" {fmt_s(effects['slowest_answer_s'])}"
        )
    print("  answers by phase (status: count):")
    for phase, counts in report["answers_by_phase"].items():
        print(f"    {phase:<32} {json.dumps(counts)}")
    if report["transport_errors"]:
        print(f"  transport errors: {json.dumps(report['transport_errors'])}")
    retry = report["retry"]
    print(
        f"  retried {retry['posts_retried']} posts; attempts needed"
        f" {json.dumps(retry['attempts'])}; retry answers {json.dumps(retry['answers'])}"
    )
    stored = report["stored"]
    print(
        f"  stored: {stored['leads']} leads for {stored['distinct_keys_posted']} keys;"
        f" {stored['intake_keys']} intake keys; inbox {json.dumps(stored['inbox_by_status'])}"
    )
    print(
        f"  lost {stored['lost']}   duplicated {stored['duplicated']}   keys missing"
        f" {stored['keys_missing']}   answered with another lead"
        f" {stored['answered_with_another_lead']}   unresolved after retries"
        f" {stored['unresolved_after_retries']}"
    )
    print(
        "  errors whose post had been stored (the retry got 200 duplicate): "
        + json.dumps(stored["errors_whose_post_was_stored"])
    )
    reminders = report["reminders"]
    ticks = report["ticks"]
    for number, tick in enumerate(ticks["extra"], start=1):
        job = [float("nan") if v is None else v for v in tick["job_s"]]
        span = tick["emailed_between_s"] or [float("nan")] * 2
        print(
            f"  extra engine tick {number} ({tick['planned_touches']} touches) queued at"
            f" {tick['at_answers']} answers (+{tick['at_s'] or float('nan'):.1f} s); its job ran"
            f" +{job[0]:.0f} s to +{job[1]:.0f} s and {tick['job_outcome']}; faults while it ran:"
            f" {', '.join(tick['faults_while_its_job_ran']) or 'none'}; its reminders emailed"
            f" between +{span[0]:.1f} s and +{span[1]:.1f} s"
        )
    print(
        f"  minute ticks during the load at {ticks['minute_ticks_during_load_s']} s;"
        f" morning digest: {ticks['morning']}"
    )
    print(
        f"  reminders: due {reminders['due']}, delivered once {reminders['delivered_once']},"
        f" missing {reminders['missing']}, duplicated {reminders['duplicated']}"
        f" ({reminders['duplicated_same_message_id']} with the same Message-ID), unexpected"
        f" {reminders['unexpected']}; {reminders['delivered_during_load']} sent during the load;"
        f" delay after due p50 {fmt_s(reminders['delay_after_due_s']['p50'])},"
        f" max {fmt_s(reminders['delay_after_due_s']['max'])}"
    )
    for kind, counts in reminders["by_kind"].items():
        print(f"    {kind:<16} {json.dumps(counts)}")
    for group, (first, last) in reminders["sent_between_s"].items():
        print(f"    {group}: emailed between +{first:.1f} s and +{last:.1f} s")
    if reminders["last_errors_seen"]:
        print(
            f"    send errors recorded on outbox rows: {json.dumps(reminders['last_errors_seen'])}"
        )
    print(f"  processes: {json.dumps(report['processes'])}")
    print(f"  gunicorn log: {json.dumps(report['logs']['gunicorn'])}")
    print(f"  worker log: {json.dumps(report['logs']['worker'])}")
    print("  checks:")
    for name, ok in report["checks"].items():
        print(f"    {'ok  ' if ok else 'FAIL'} {name}")
    print(f"\n== {'PASSED' if report['passed'] else 'FAILED'}")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000, help="posts under load")
    parser.add_argument("--concurrency", type=int, default=8, help="sender threads")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument(
        "--faults-at",
        default="0.20,0.45,0.70",
        help="shares of answers after which to kill a worker, restart Redis, restart PostgreSQL",
    )
    parser.add_argument("--outage", type=float, default=2.0, help="seconds Redis/PG stay down")
    parser.add_argument(
        "--extra-ticks",
        default="0.40:200,0.55:400",
        help="SHARE:TOUCHES,...: at each share of answers, that many planned touches come due"
        " and an extra engine tick is queued (default: one just before Redis restarts, one"
        " between the Redis and the PostgreSQL restarts)",
    )
    parser.add_argument(
        "--minute-tick-touches",
        type=int,
        default=60,
        help="planned touches due during the load, for the regular minute ticks",
    )
    parser.add_argument("--morning-clients", type=int, default=12)
    parser.add_argument("--morning-deals", type=int, default=8)
    parser.add_argument("--stale-claim", type=int, default=30, help="ENGINE_STALE_CLAIM_SECONDS")
    parser.add_argument(
        "--smtp-delay", type=float, default=0.02, help="seconds the SMTP server takes per message"
    )
    parser.add_argument("--retry-attempts", type=int, default=8)
    parser.add_argument("--pause-after-error", type=float, default=0.2)
    parser.add_argument("--request-timeout", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=280, help="bound for the whole run (s)")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--ref", help="run the app as committed at this git ref (e.g. HEAD)")
    parser.add_argument("--app-dir", type=Path, help="run the app unpacked in this directory")
    parser.add_argument("--keep-logs", action="store_true", help="keep logs even when passing")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    args.threads = 1  # intake.Server reads it: sync workers
    try:
        extra_ticks = [
            (float(share), int(touches))
            for share, touches in (item.split(":") for item in args.extra_ticks.split(",") if item)
        ]
    except ValueError:
        parser.error("--extra-ticks takes SHARE:TOUCHES,... e.g. 0.40:200,0.55:400")
    if not all(0 < share < 1 and touches > 0 for share, touches in extra_ticks):
        parser.error("--extra-ticks: shares in (0, 1), at least one touch each")
    shares = [float(x) for x in args.faults_at.split(",")]
    if len(shares) != 3 or not all(0 < s < 1 for s in shares) or shares != sorted(shares):
        parser.error("--faults-at takes three increasing shares in (0, 1)")
    if not 100 <= args.posts <= 200_000 or not 1 <= args.concurrency <= 64:
        parser.error("--posts must be 100..200000 and --concurrency 1..64")
    if os.geteuid() != 0:
        parser.error("run as root: the private PostgreSQL is started with runuser -u postgres")

    run_started = time.monotonic()
    deadline = Deadline(args.timeout)

    def hard_stop(signum, frame):
        raise HardTimeout(f"the run exceeded {args.timeout:.0f} s (+20 s grace)")

    def interrupted(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGALRM, hard_stop)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)  # even when started with SIGINT ignored
    signal.alarm(int(args.timeout) + 20)

    rng = random.Random(args.seed)
    logdir = Path(tempfile.mkdtemp(prefix="conveyor-chaos-"))
    pg_root = Path(tempfile.mkdtemp(prefix="conveyor-chaos-pg-"))
    redis_root = logdir / "redis"
    redis_root.mkdir()
    pg = PrivatePostgres(pg_root, free_port())
    redis_server = PrivateRedis(redis_root, free_port())
    sink = MailSink(free_port(), args.smtp_delay)
    port = free_port()
    gunicorn: Gunicorn | None = None
    worker: RqWorker | None = None
    injector: FaultInjector | None = None
    app_dir = REPO
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "benchmarks/chaos.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "settings": {
            k: getattr(args, k)
            for k in (
                "posts",
                "concurrency",
                "workers",
                "faults_at",
                "outage",
                "extra_ticks",
                "stale_claim",
                "smtp_delay",
                "minute_tick_touches",
                "retry_attempts",
                "pause_after_error",
            )
        },
    }
    exit_code = 2
    passed = False
    try:
        if args.ref:
            app_dir, commit = app_snapshot(args.ref, logdir, deadline)
            report["app"] = f"git archive {args.ref} = {commit}"
        elif args.app_dir:
            app_dir = args.app_dir.resolve()
            report["app"] = f"directory {app_dir}"
        else:
            report["app"] = f"working tree {REPO}"
        log(f"app under test: {report['app']}; logs in {logdir}")
        report["machine_busy_before_start"] = machine_busy_share(2)
        log(f"machine busy before the run: {100 * report['machine_busy_before_start']:.0f} %")

        # ---- private services
        pg.init()
        pg.start()
        redis_server.start()
        sink.start()
        report["services"] = {
            "postgres": f"PostgreSQL {pg.version} on :{pg.port} (data in {pg_root})",
            "redis": f"redis-server on :{redis_server.port}",
            "smtp": f"aiosmtpd on :{sink.port}",
        }
        log("private services: " + "; ".join(report["services"].values()))
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE conveyor")
        dsn = pg.dsn("conveyor")

        env = app_env(pg, redis_server, port, sink.port, args)
        imported = run(
            [sys.executable, "-c", "import app; print(app.__file__)"], deadline, env, app_dir
        ).strip()
        if not Path(imported).resolve().is_relative_to(app_dir.resolve()):
            raise SetupError(f"`import app` in {app_dir} loads {imported}")
        run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            deadline,
            env,
            app_dir,
        )
        setup = set_up_workspaces(env, app_dir, deadline, port)
        tenants = [setup["chaos"]["id"], setup["morning"]["id"]]
        away = (datetime.now(UTC).hour + 12) % 24  # no morning window during the run
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE tenant SET digest_hour = %s WHERE id = ANY(%s)", (away, tenants))

        gunicorn = Gunicorn("conveyor", "wsgi:app", port, app_dir, env, args, logdir)
        gunicorn.start(deadline)
        worker = RqWorker(app_dir, env, logdir / "worker.log")
        worker.start(redis_server.url(0), deadline)
        log(f"gunicorn on :{port} ({len(gunicorn.worker_pids())} workers), worker.py running")

        # ---- leads that will carry the reminders (posted before any fault)
        t0 = time.monotonic()

        def clock() -> float:
            return time.monotonic() - t0

        def poster_for(path: str) -> Callable[[], Poster]:
            return lambda: Poster(port, path, args.request_timeout, clock)

        touch_count = sum(touches for _, touches in extra_ticks) + args.minute_tick_touches
        touch_posts = make_posts(touch_count, "t" + uuid.uuid4().hex[:5], rng)
        morning_posts = make_posts(
            args.morning_clients + args.morning_deals, "m" + uuid.uuid4().hex[:5], rng
        )
        began = time.monotonic()
        send_all(
            touch_posts,
            args.concurrency,
            poster_for(setup["chaos"]["touch_source"]["path"]),
            lambda: "seed",
            deadline,
        )
        rate = touch_count / max(1e-6, time.monotonic() - began)
        send_all(
            morning_posts,
            args.concurrency,
            poster_for(setup["morning"]["source"]["path"]),
            lambda: "seed",
            deadline,
        )
        seeded_ids = [[p.attempts[-1].lead_id for p in ps] for ps in (touch_posts, morning_posts)]
        if any(p.attempts[-1].status != 201 for p in touch_posts + morning_posts):
            raise SetupError("seeding posts were not all answered 201")
        seeded = {
            "touch_leads": seeded_ids[0],
            "clients": seeded_ids[1][: args.morning_clients],
            "deals": seeded_ids[1][args.morning_clients :],
        }
        log(f"seeded {touch_count + len(morning_posts)} leads through intake at {rate:.0f} posts/s")

        # ---- reminders for the regular minute ticks, written before the load
        estimate = args.posts / rate
        start_at = time.time() + 2
        if start_at % 60 < 5:  # let the minute's own tick run before anything is armed
            start_at += 5 - start_at % 60
        first_tick = next_minute(start_at)
        owners = touch_owners(dsn, seeded["touch_leads"])
        for_ticks = seeded["touch_leads"][: args.minute_tick_touches]
        for_extra_ticks, taken = [], args.minute_tick_touches
        for _, touches in extra_ticks:
            for_extra_ticks.append(seeded["touch_leads"][taken : taken + touches])
            taken += touches
        while time.time() < start_at - 1.5:
            time.sleep(0.05)
        expected = plan_touches(
            dsn,
            owners,
            for_ticks,
            spread(start_at + 1, start_at + min(60.0, max(10.0, 0.9 * estimate)), len(for_ticks)),
            "due during the load (minute ticks)",
        )
        zone = morning_zone(first_tick)
        morning = None
        if zone and args.morning_clients + args.morning_deals:
            morning = {
                "zone": zone[0],
                "hour": zone[1],
                "local_date": zone[2].date(),
                "local_time": zone[2].strftime("%H:%M"),
                "tick": first_tick,
            }
            expected += prepare_morning(dsn, setup["morning"]["id"], seeded, morning)
        while time.time() < start_at:
            time.sleep(0.01)

        # ---- the load, with faults, and extra engine ticks around the restarts
        def engine_tick(number: int, leads: list[int]) -> dict:
            """Touches due within a second, then the tick job worker.py queues each minute
            (as a second worker's ticker would): the worker sends while faults happen."""
            armed_at = time.time()
            moments = spread(armed_at + 0.2, armed_at + 1.2, len(leads))
            planned = riding_out(
                lambda: plan_touches(dsn, owners, leads, moments, f"due at extra tick {number}")
            )
            expected.extend(planned)
            time.sleep(max(0.0, armed_at + 1.3 - time.time()))

            def enqueue():
                client = redis.Redis.from_url(redis_server.url(0), socket_timeout=5)
                try:
                    return Queue("conveyor", connection=client).enqueue(
                        "app.tasks.engine.tick",
                        job_id=f"engine-tick-chaos-{number}-{uuid.uuid4().hex[:8]}",
                        result_ttl=3600,
                        failure_ttl=86400,
                    )
                finally:
                    client.close()

            return {"planned_touches": len(leads), "job_id": riding_out(enqueue).id}

        posts = make_posts(args.posts, uuid.uuid4().hex[:6], rng)
        faults = [
            Fault(
                "SIGKILL a gunicorn worker",
                shares[0],
                PHASES[1],
                lambda: kill_a_gunicorn_worker(gunicorn, args.workers, rng),
            ),
            Fault(
                "restart Redis",
                shares[1],
                PHASES[2],
                lambda: restart_redis(redis_server, args.outage),
            ),
            Fault(
                "restart PostgreSQL",
                shares[2],
                PHASES[3],
                lambda: restart_postgres(pg, args.outage),
            ),
        ]
        ticks_queued = [
            Fault(
                f"extra engine tick {number}",
                share,
                "",
                lambda number=number, leads=leads: engine_tick(number, leads),
                background=True,
            )
            for number, ((share, _), leads) in enumerate(
                zip(extra_ticks, for_extra_ticks, strict=True), start=1
            )
        ]
        t0 = time.monotonic()
        load_wall_start = time.time()
        injector = FaultInjector([*faults, *ticks_queued], args.posts, clock)
        injector.start()
        log(f"posting {args.posts} leads at concurrency {args.concurrency}")
        completed = send_all(
            posts,
            args.concurrency,
            poster_for(setup["chaos"]["load_source"]["path"]),
            injector.current_phase,
            deadline,
            on_answer=injector.on_answer,
            pause_after_error=args.pause_after_error,
        )
        load_wall = clock()
        load_wall_end = time.time()
        injector.finish()
        log(
            f"load done in {load_wall:.1f} s; answers"
            f" {dict(Counter(str(p.attempts[-1].status) for p in posts if p.attempts))}"
        )

        # ---- retries with the same keys
        failed = [p for p in posts if p.attempts and not p.attempts[-1].ok]
        retryable = [p for p in failed if p.attempts[-1].retryable]
        began = clock()
        retried_all = retry_until_stored(
            retryable,
            args.concurrency,
            poster_for(setup["chaos"]["load_source"]["path"]),
            deadline,
            args.retry_attempts,
        )
        retry_wall = clock() - began
        log(f"retried {len(retryable)} posts in {retry_wall:.1f} s")

        # ---- the leads, counted with SQL
        stored = check_leads(dsn, setup["chaos"]["load_source"]["id"], posts)

        # ---- the reminders: wait (bounded) until each is emailed and its row settled
        last_due = max((e.due for e in expected), default=first_tick)
        wait_until = min(
            next_minute(last_due) + args.stale_claim + 75,
            time.time() + max(0.0, deadline.remaining() - 15),
        )
        log(f"waiting for {len(expected)} reminders (at most until {utc(wait_until):%H:%M:%S})")
        state = None
        while True:
            try:
                state = reminder_state(dsn, tenants, expected, sink)
            except psycopg.Error as error:
                log(f"note: reminder check could not read the database: {error}")
            if (state and settled(*state[:3])) or time.time() >= wait_until:
                break
            time.sleep(1.0)
        time.sleep(1.5)  # a message on the wire when the rows settled
        state = reminder_state(dsn, tenants, expected, sink)
        reminders = summarise_reminders(*state, (load_wall_start, load_wall_end))
        reminders["waited_until_settled"] = settled(*state[:3])

        # ---- processes and logs
        gunicorn_workers = gunicorn.worker_pids()
        worker_log = worker.log_text()
        processes = {
            "gunicorn_master_alive": gunicorn.process.poll() is None,
            "gunicorn_workers_at_end": len(gunicorn_workers),
            "rq_worker_alive": worker.alive(),
        }
        logs = {
            "gunicorn": log_counts(gunicorn.log_tail(10_000_000), GUNICORN_LOG),
            "worker": log_counts(worker_log, WORKER_LOG),
        }

        local = time.localtime(load_wall_start)  # the worker logs local HH:MM:SS
        day_start = load_wall_start - (local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec)
        tick_report = []
        for number, tick_event in enumerate(ticks_queued, start=1):
            job_id = tick_event.details.get("job_id")
            job = job_window(worker_log, job_id, day_start) if job_id else {}
            span = [job[k] - load_wall_start if k in job else None for k in ("started", "ended")]
            tick_report.append(
                {
                    "share": tick_event.share,
                    "at_answers": tick_event.at_answers,
                    "at_s": tick_event.started,
                    "error": tick_event.error,
                    "planned_touches": tick_event.details.get("planned_touches"),
                    "job_s": span,
                    "job_outcome": job.get("outcome", "not seen in the log (lost with Redis)"),
                    "faults_while_its_job_ran": [
                        f.name
                        for f in faults
                        if f.started is not None
                        and span[0] is not None
                        # the log's stamps are whole seconds
                        and span[0] - 1 <= f.started <= (span[1] or load_wall) + 1
                    ],
                    "emailed_between_s": reminders["sent_between_s"].get(
                        f"due at extra tick {number}"
                    ),
                }
            )
        minute_ticks = [
            round(moment - load_wall_start, 1)
            for moment in range(int(next_minute(load_wall_start)), int(load_wall_end) + 1, 60)
        ]
        statuses_all = Counter(str(a.status) for p in posts for a in p.attempts)
        other_4xx = sum(n for s, n in statuses_all.items() if s.isdigit() and 400 <= int(s) < 500)
        non_503 = sum(
            n for s, n in statuses_all.items() if s.isdigit() and int(s) >= 500 and s != "503"
        )
        checks = {
            "load and retries finished within the time bound": completed and retried_all,
            "all 3 faults injected without error": all(
                f.started is not None and f.error is None for f in faults
            ),
            "extra engine ticks queued": all(
                t.started is not None and t.error is None for t in ticks_queued
            ),
            "every post ended with a 2xx (retries included)": stored["unresolved_after_retries"]
            == 0,
            "lost = 0 (every 2xx lead id exists)": stored["lost"] == 0,
            "duplicated = 0 (one lead per key, none without a key)": stored["duplicated"] == 0
            and stored["keys_with_several_rows"] == 0,
            "every key stored, and answered with its own lead": stored["keys_missing"] == 0
            and stored["answered_with_another_lead"] == 0,
            "leads == distinct keys accepted": stored["leads"] == stored["distinct_keys_posted"],
            "no 5xx other than 503 (README contract)": non_503 == 0,
            "no 4xx answers": other_4xx == 0,
            "reminders: none missing": reminders["missing"] == 0,
            "reminders: none duplicated": reminders["duplicated"] == 0,
            "reminders: none unexpected": reminders["unexpected"] == 0,
            "RQ worker still running": processes["rq_worker_alive"],
            "gunicorn back to full strength": processes["gunicorn_master_alive"]
            and processes["gunicorn_workers_at_end"] == args.workers,
        }
        passed = all(checks.values())
        retry_attempts = Counter(
            sum(1 for a in p.attempts if a.phase == "retry") for p in retryable
        )
        report.update(
            {
                "load": {
                    "wall_s": load_wall,
                    "posts_per_s": args.posts / load_wall if load_wall else 0.0,
                    "estimated_s": estimate,
                    "seed_rate_posts_per_s": rate,
                    "latency_ms_p50": percentile(
                        sorted(a.seconds * 1000 for p in posts for a in p.attempts[:1]), 0.5
                    ),
                    "latency_ms_p99": percentile(
                        sorted(a.seconds * 1000 for p in posts for a in p.attempts[:1]), 0.99
                    ),
                },
                "faults": [
                    {
                        "name": f.name,
                        "share": f.share,
                        "at_answers": f.at_answers,
                        "started": f.started if f.started is not None else float("nan"),
                        "ended": f.ended,
                        "details": f.details,
                        "error": f.error,
                        "effects": fault_effects(f, posts) if f.started is not None else {},
                    }
                    for f in faults
                ],
                "answers_by_phase": phase_table(posts),
                "transport_errors": error_kinds(posts),
                "retry": {
                    "wall_s": retry_wall,
                    "posts_retried": len(retryable),
                    "not_retryable_failures": len(failed) - len(retryable),
                    "attempts": {str(k): v for k, v in sorted(retry_attempts.items())},
                    "answers": dict(
                        Counter(
                            str(a.status) for p in posts for a in p.attempts if a.phase == "retry"
                        )
                    ),
                },
                "stored": stored,
                "ticks": {
                    "extra": tick_report,
                    "minute_ticks_during_load_s": minute_ticks,
                    "morning": (
                        f"{morning['zone']}, window open from the {utc(first_tick):%H:%M} UTC"
                        f" tick ({morning['local_time']} local)"
                        if morning
                        else "not exercised (no timezone has its morning window at this minute)"
                    ),
                },
                "reminders": reminders,
                "processes": processes,
                "logs": logs,
                "checks": checks,
                "passed": passed,
                "run_s": time.monotonic() - run_started,
            }
        )
        print_report(report)
        exit_code = 0 if passed else 1
    except (SetupError, HardTimeout, Interrupted, KeyboardInterrupt, psycopg.Error) as error:
        log(f"ABORTED: {error.__class__.__name__}: {error}")
        report["aborted"] = f"{error.__class__.__name__}: {error}"
        exit_code = 2
    finally:
        signal.alarm(0)
        if injector is not None:
            injector.finish()  # a fault in progress ends before the services are stopped
        keep = args.keep_logs or exit_code != 0
        if gunicorn is not None:
            gunicorn.stop()
        if worker is not None:
            worker.stop()
        sink.stop()
        redis_server.stop()
        pg.destroy(logdir if keep else None)
        if args.ref and app_dir != REPO:
            shutil.rmtree(app_dir, ignore_errors=True)
        if keep:
            log(f"logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)
        report["run_s"] = time.monotonic() - run_started
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log("cleaned up: private PostgreSQL, Redis, SMTP, gunicorn and worker stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
