"""Real worker processes: killed mid-sending, restarted, or running side by side.

Each test starts ``worker.py`` in its own process group against the test
database, Redis and a deliberately slow loopback SMTP server.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from app.engine import schedule
from app.extensions import db
from app.models import MessageStatus, OutboxMessage, Role
from app.queue import get_queue
from tests.conftest import Mailbox, _free_port

# A real worker process runs on the machine's clock.
pytestmark = pytest.mark.real_clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY = date(2026, 12, 1)
MEMBERS = 12


class SlowMailbox(Mailbox):
    """Takes a moment per message, so that a worker can be killed mid-batch."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(0.25)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp():
    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, mailbox
    controller.stop()


@pytest.fixture
def due_digests(make):
    """Twelve digests due now, in a workspace whose real morning is far away."""
    from tests.test_engine import _at

    tenant, _ = make.workspace_with_owner()
    for _ in range(MEMBERS - 1):
        make.member(tenant, Role.CLOSER)
    schedule.tick(_at(tenant, DAY, 8, 0))
    tenant.digest_hour = (time.gmtime().tm_hour + 12) % 24
    tenant.timezone = "UTC"
    db.session.commit()
    return tenant


def _start_worker(app, smtp_port, *extra):
    env = {
        **os.environ,
        "CONVEYOR_ENV": "development",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "RQ_QUEUE": app.config["RQ_QUEUE"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "BASE_URL": "http://conveyor.test",
        "ENGINE_STALE_CLAIM_SECONDS": "2",
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", "--no-periodic", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _queue_tick(app):
    with app.app_context():
        get_queue().enqueue("app.tasks.engine.tick")


def _statuses():
    db.session.expire_all()
    return db.session.scalars(
        sa.select(OutboxMessage.status).execution_options(all_tenants=True)
    ).all()


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_sending_and_restarted_delivers_every_message_once(
    app, due_digests, slow_smtp
):
    port, mailbox = slow_smtp
    _queue_tick(app)
    worker = _start_worker(app, port)
    try:
        assert _wait_for(lambda: len(mailbox) >= 4, 30), "the worker never started sending"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work-horse, mid-batch
    finally:
        worker.wait(10)
        worker.stderr.close()
    assert len(mailbox) < MEMBERS and MessageStatus.SENDING in _statuses()
    time.sleep(2.2)  # the abandoned claims go stale
    _queue_tick(app)
    restarted = _start_worker(app, port, "--burst")
    _, errors = restarted.communicate(timeout=90)
    assert restarted.returncode == 0, errors.decode()[-2000:]
    ids = [m["Message-ID"] for m in mailbox]
    assert set(_statuses()) == {MessageStatus.SENT}
    # Every digest arrived; one cut off mid-conversation may arrive again with the
    # same Message-ID (mail systems merge those), none is missing or different.
    assert len(set(ids)) == MEMBERS and len(ids) <= MEMBERS + 1
    assert len({m["To"] for m in mailbox}) == MEMBERS


def test_two_workers_side_by_side_send_nothing_twice(app, due_digests, slow_smtp):
    port, mailbox = slow_smtp
    _queue_tick(app)
    _queue_tick(app)
    workers = [_start_worker(app, port, "--burst") for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate(timeout=90)
        assert worker.returncode == 0, errors.decode()[-2000:]
    assert len(mailbox) == MEMBERS
    assert len({m["Message-ID"] for m in mailbox}) == MEMBERS
    assert set(_statuses()) == {MessageStatus.SENT}
