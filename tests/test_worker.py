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
