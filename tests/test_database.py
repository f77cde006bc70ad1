"""PostgreSQL is the only database; the embedded one behaves like a server you can trust."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from app import create_app, embedded
from app.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# A run of the quick start: starts the server, writes, then waits to be killed.
KILLED_RUN = """
import sys, time
import psycopg
from app import embedded
server = embedded.start(sys.argv[1])
with psycopg.connect(embedded.ensure_database(server, "demo"), autocommit=True) as conn:
    conn.execute("CREATE TABLE lead (name text)")
    conn.execute("INSERT INTO lead VALUES ('Жанна')")
print(server.get_pid(), flush=True)
time.sleep(600)
"""


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The live postmaster serving ``data_dir`` (its backends do not name the folder)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if process.info["name"] == "postgres" and str(data_dir) in (process.info["cmdline"] or []):
            found.append(process)
    return found


def _killed_run(data_dir: Path) -> int:
    """Start a run that writes a lead, SIGKILL it, and return its postmaster's pid."""
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        postmaster = int(run.stdout.readline())
    finally:
        run.kill()
        run.wait()
        run.stdout.close()
    return postmaster


def _leads(server) -> list[str]:
    with psycopg.connect(embedded.url(server, "demo")) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM lead")]


def test_a_production_server_without_database_url_refuses_to_start(monkeypatch):
    monkeypatch.setenv("CONVEYOR_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL must be set"):
        create_app()


def test_a_database_url_that_is_not_postgresql_is_refused(monkeypatch):
    monkeypatch.setenv("CONVEYOR_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", "mysql://u@db/conveyor")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        create_app()


def test_the_embedded_server_has_the_search_extensions_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "pg"
    server = embedded.start(data_dir)
    try:
        with psycopg.connect(embedded.ensure_database(server, "demo"), autocommit=True) as conn:
            for extension in ("pg_trgm", "unaccent", "citext"):
                conn.execute(f"CREATE EXTENSION {extension}")
            found = conn.execute(
                "SELECT unaccent('Zoë') = 'Zoe', similarity('Conveyor', 'Convey') > 0.5,"
                " lower('ЖАННА') = 'жанна', 'жанна'::citext = 'Жанна'"
            ).fetchone()
        assert found == (True, True, True, True)
    finally:
        embedded.stop(server)
    assert _postgres_processes(data_dir) == []


def test_a_server_left_running_by_a_killed_run_is_joined_and_then_stopped(tmp_path):
    data_dir = tmp_path / "pg"
    postmaster = _killed_run(data_dir)
    assert [p.pid for p in _postgres_processes(data_dir)] == [postmaster]

    server = embedded.start(data_dir)
    try:
        assert server.get_pid() == postmaster
        assert _leads(server) == ["Жанна"]
    finally:
        embedded.stop(server)
    assert _postgres_processes(data_dir) == []


def test_a_server_killed_outright_starts_again_with_its_data(tmp_path):
    data_dir = tmp_path / "pg"
    postmaster = _killed_run(data_dir)
    psutil.Process(postmaster).send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)  # the signal is delivered: the postmaster is gone or a zombie
    assert (data_dir / "postmaster.pid").exists()

    server = embedded.start(data_dir)
    try:
        assert server.get_pid() != postmaster
        assert _leads(server) == ["Жанна"]
    finally:
        embedded.stop(server)
    assert _postgres_processes(data_dir) == []
