"""worker.py runs queued jobs in real forked RQ work-horses."""

import os
import subprocess
import sys

import pytest

# A real worker process runs on the machine's clock.
pytestmark = pytest.mark.real_clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_worker_process_delivers_a_queued_invitation(
    app, client, make, login, mailbox, smtp_server
):
    _, owner = make.workspace_with_owner(name="Worker Test")
    login(owner.email)
    client.post("/team/invitations", data={"email": "joiner@example.com", "role": "closer"})
    env = {
        **os.environ,
        "CONVEYOR_ENV": "development",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "RQ_QUEUE": app.config["RQ_QUEUE"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server[0].port),
        "BASE_URL": "http://conveyor.test",
    }
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [message] = mailbox.to("joiner@example.com")
    assert "Worker Test" in message["Subject"]
    assert "http://conveyor.test/invitations/" in mailbox.text(message)


def _deaf_to_sigterm():
    import signal
    import time

    signal.signal(signal.SIGTERM, lambda *_: None)  # as a scheduler that took the worker's
    time.sleep(600)


def test_a_scheduler_that_ignores_sigterm_does_not_hold_the_worker_forever(monkeypatch):
    """RQ's own stop waited on the scheduler process without end when it missed SIGTERM."""
    import multiprocessing
    import time

    monkeypatch.syspath_prepend(ROOT)
    import worker

    process = multiprocessing.get_context("fork").Process(target=_deaf_to_sigterm)
    process.start()
    time.sleep(0.5)  # its handler is in place
    stopping = worker._Worker.__new__(worker._Worker)
    stopping.scheduler = type("Scheduler", (), {"_process": process})()
    started = time.monotonic()
    stopping.stop_scheduler()
    assert not process.is_alive()
    assert time.monotonic() - started < worker.SCHEDULER_STOP_SECONDS + 5
