"""The contact engine: digests and reminders, each sent exactly once and on time."""

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from app import clock
from app.engine import delivery, schedule
from app.extensions import db
from app.models import (
    Conflict,
    ConflictKind,
    MessageKind,
    MessageStatus,
    Notification,
    OutboxMessage,
    Promise,
    Role,
)

ALL = {"all_tenants": True}


def _at(tenant, day: date, hour: int, minute: int = 0) -> datetime:
    """A UTC instant for a local wall-clock time in the workspace."""
    return datetime(
        day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tenant.timezone)
    ).astimezone(UTC)


def _rows(**where):
    query = sa.select(OutboxMessage).execution_options(**ALL)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return db.session.scalars(query.order_by(OutboxMessage.id)).all()


@pytest.fixture
def shop(make):
    tenant, owner = make.workspace_with_owner(name="Moscow Bakery")
    tenant.timezone = "Europe/Moscow"
    db.session.commit()
    closer = make.member(tenant, Role.CLOSER)
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    return tenant, owner, closer, manager, generator


DAY = date(2026, 12, 1)


def test_each_member_gets_one_digest_by_role_at_eight_local(app, shop, make, mailbox):
    tenant, owner, closer, manager, generator = shop
    deal = make.lead(tenant, "Proposal", owner=closer)
    deal.decision_date = DAY + timedelta(days=1)
    client = make.lead(tenant, "Client", owner=manager)
    client.next_touch_on = DAY - timedelta(days=1)
    db.session.add(Promise(tenant_id=tenant.id, lead_id=client.id, text="Free delivery"))
    make.lead(tenant, "New", owner=generator)
    db.session.commit()

    assert schedule.tick(_at(tenant, DAY, 7, 59))["rows"] == 0
    assert schedule.tick(_at(tenant, DAY, 8, 0))["rows"] == 4
    assert schedule.tick(_at(tenant, DAY, 8, 7))["rows"] == 0  # the same day again: nothing new
    assert delivery.deliver_due(_at(tenant, DAY, 8, 1))["sent"] == 4
    assert delivery.deliver_due(_at(tenant, DAY, 8, 2))["sent"] == 0
    by_recipient = {m["To"]: mailbox.text(m) for m in mailbox}
    assert len(mailbox) == 4
    assert (
        "Today's queue: 1 leads." in by_recipient[closer.email]
        and deal.contact.name in by_recipient[closer.email]
    )
    assert "Clients to touch today: 1, of them overdue: 1." in by_recipient[manager.email]
    assert "Promises waiting for your decision: 1." in by_recipient[manager.email]
    assert "Leads not qualified yet: 1." in by_recipient[generator.email]
    assert "Open conflicts:" in by_recipient[owner.email]
    message = mailbox.to(closer.email)[0]
    assert message.get_body(preferencelist=("html",)) is not None
    assert message["List-Unsubscribe"].startswith("<http://conveyor.test/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "http://conveyor.test/today" in mailbox.text(message)


def test_nothing_is_sent_after_the_window(shop):
    tenant, *_ = shop
    assert schedule.tick(_at(tenant, DAY, 8, 15))["rows"] == 0
    assert schedule.tick(_at(tenant, DAY, 12, 0))["workspaces_due"] == 0


@pytest.mark.parametrize(
    "zone,day",
    [
        ("America/New_York", date(2026, 3, 8)),  # clocks jump forward at 02:00
        ("America/New_York", date(2026, 11, 1)),  # and back
        ("Australia/Lord_Howe", date(2026, 4, 5)),  # a half-hour shift
        ("Australia/Lord_Howe", date(2026, 10, 4)),
        ("Asia/Kolkata", date(2026, 6, 1)),  # +05:30
        ("Europe/Moscow", date(2026, 3, 29)),  # no DST, the rest of Europe shifts
    ],
)
def test_exactly_one_digest_per_local_day_across_dst(make, zone, day):
    tenant, owner = make.workspace_with_owner()
    tenant.timezone = zone
    db.session.commit()
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    ) - timedelta(hours=2)
    sent_at = []
    for step in range(0, 30 * 60, 5):  # every five minutes for thirty hours
        now = start + timedelta(minutes=step)
        if schedule.tick(now)["rows"]:
            sent_at.append(now.astimezone(ZoneInfo(zone)))
    digests = [r for r in _rows(kind=MessageKind.DIGEST) if r.tenant_id == tenant.id]
    assert len([r for r in digests if r.local_date == day]) == 1
    first = next(t for t in sent_at if t.date() == day)
    assert (first.hour, first.minute < 15) == (8, True)


def test_decision_window_reminders_follow_the_date_and_stop_when_closed(shop, make, mailbox):
    tenant, owner, closer, *_ = shop
    deal = make.lead(tenant, "Proposal", owner=closer)
    deal.decision_date = DAY + timedelta(days=3)
    db.session.commit()
    schedule.tick(_at(tenant, DAY, 8, 0))
    assert len(_rows(kind=MessageKind.DECISION_WINDOW)) == 1  # three days before
    delivery.deliver_due(_at(tenant, DAY, 8, 1))
    [reminder] = [m for m in mailbox.to(closer.email) if "decides around" in m["Subject"]]
    assert deal.contact.name in reminder["Subject"]
    mailbox.clear()
    deal.decision_date = DAY + timedelta(days=10)  # moved: nothing on the old dates
    db.session.commit()
    later = DAY + timedelta(days=3)
    schedule.tick(_at(tenant, later, 8, 0))
    assert len(_rows(kind=MessageKind.DECISION_WINDOW)) == 1
    schedule.tick(_at(tenant, DAY + timedelta(days=7), 8, 0))
    assert len(_rows(kind=MessageKind.DECISION_WINDOW)) == 2  # three days before the new date
    # Closing the deal cancels the reminder still waiting to go out.
    deal.stage_id = db.session.scalar(
        sa.text("select id from stage where tenant_id=:t and is_lost"), {"t": tenant.id}
    )
    db.session.commit()
    counts = delivery.deliver_due(_at(tenant, DAY + timedelta(days=7), 8, 1))
    assert counts["skipped"] >= 1
    assert not any(
        "decides around" in (m["Subject"] or "")
        for m in mailbox
        if m["To"] == closer.email and "2026-12-17" in mailbox.text(m)
    )


def test_a_client_due_today_gets_a_touch_reminder_once(shop, make, mailbox):
    tenant, owner, closer, manager, _ = shop
    client = make.lead(tenant, "Client", owner=manager)
    client.next_touch_on = DAY
    db.session.commit()
    schedule.tick(_at(tenant, DAY, 8, 3))
    schedule.tick(_at(tenant, DAY, 8, 9))
    delivery.deliver_due(_at(tenant, DAY, 8, 10))
    reminders = [m for m in mailbox.to(manager.email) if "Time to touch" in m["Subject"]]
    assert len(reminders) == 1 and client.contact.name in reminders[0]["Subject"]


def test_get_never_unsubscribes_and_one_click_post_does(app, client, shop, mailbox):
    tenant, owner, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))
    delivery.deliver_due(_at(tenant, DAY, 8, 1))
    link = (
        mailbox.to(owner.email)[0]["List-Unsubscribe"]
        .strip("<>")
        .replace("http://conveyor.test", "")
    )
    assert client.get(link).status_code == 200
    assert (
        schedule.tick(_at(tenant, DAY + timedelta(days=1), 8, 0))["rows"] >= 1
    )  # still subscribed
    answer = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    before = len(_rows(user_id=owner.id))
    schedule.tick(_at(tenant, DAY + timedelta(days=2), 8, 0))
    assert len(_rows(user_id=owner.id)) == before
    assert client.post("/unsubscribe/forged-token").status_code == 404


def test_smtp_failures_retry_with_backoff_then_show_to_the_owner(
    app, client, login, shop, monkeypatch
):
    tenant, owner, closer, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr("app.engine.delivery.send_email", refuse)
    now = _at(tenant, DAY, 8, 1)
    outcomes = []
    for _ in range(delivery.MAX_ATTEMPTS):
        outcomes.append(delivery.deliver_due(now))
        now += timedelta(hours=2)
    assert outcomes[0]["retry"] == 4 and outcomes[-1]["failed"] == 4
    failed = _rows(status=MessageStatus.FAILED)
    assert len(failed) == 4 and "SMTP server down" in failed[0].last_error
    login(owner.email)
    page = client.get("/outbox").text
    assert "SMTP server down" in page and closer.email in page


def test_two_workers_sending_at_once_send_nothing_twice(app, shop, mailbox):
    tenant, *_ = shop
    for day in range(5):
        schedule.tick(_at(tenant, DAY + timedelta(days=day), 8, 0))
    total = len(_rows())
    now = _at(tenant, DAY + timedelta(days=5), 9, 0)

    def work():
        with app.app_context():
            while delivery.deliver_due(now, limit=3)["sent"]:
                pass
            db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(mailbox) == total == 20
    assert len({m["Message-ID"] for m in mailbox}) == total


def test_a_message_abandoned_by_a_killed_worker_is_sent_later(app, shop, mailbox):
    tenant, owner, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))
    now = _at(tenant, DAY, 8, 1)
    claimed = delivery.claim(now, limit=1)  # a worker took it, then died before sending
    assert delivery.deliver_due(now + timedelta(minutes=1))["sent"] == 3
    assert (
        delivery.deliver_due(
            now + timedelta(seconds=app.config["ENGINE_STALE_CLAIM_SECONDS"]) + timedelta(minutes=1)
        )["sent"]
        == 1
    )
    assert db.session.get(OutboxMessage, claimed[0]).status == MessageStatus.SENT
    assert len(mailbox) == 4


def test_redis_flushed_loses_nothing(app, shop, run_jobs, mailbox):
    tenant, *_ = shop
    from app.queue import get_queue, get_redis

    with time_machine.travel(_at(tenant, DAY, 8, 5)), app.app_context():
        get_queue().enqueue("app.tasks.engine.tick")
        get_redis().flushdb()  # the queued tick is gone …
        get_queue().enqueue("app.tasks.engine.tick")  # … the next minute's tick rebuilds it
        run_jobs()
    assert len(mailbox) == 4


def test_escalations_become_conflicts_once(shop, make):
    tenant, owner, closer, manager, generator = shop
    neglected = make.lead(tenant, "Client", owner=manager)
    neglected.next_touch_on = DAY - timedelta(days=3)
    fine = make.lead(tenant, "Client", owner=manager)
    fine.next_touch_on = DAY - timedelta(days=1)
    forgotten = make.lead(tenant, "New", owner=generator)
    forgotten.created_at = _at(tenant, DAY, 8, 0) - timedelta(hours=30)
    db.session.commit()
    schedule.tick(_at(tenant, DAY, 8, 0))
    schedule.tick(_at(tenant, DAY + timedelta(days=1), 8, 0))  # nothing twice
    found = db.session.scalars(sa.select(Conflict).execution_options(**ALL)).all()
    assert sorted((c.kind, c.lead_id) for c in found) == sorted(
        [(ConflictKind.CADENCE_MISSED, neglected.id), (ConflictKind.LEAD_UNTOUCHED, forgotten.id)]
    )
    schedule.tick(_at(tenant, DAY + timedelta(days=2), 8, 0))  # now 3 days past its date
    conflicts = db.session.scalars(sa.select(Conflict).execution_options(**ALL)).all()
    assert sorted((c.kind, c.lead_id) for c in conflicts) == sorted(
        [
            (ConflictKind.CADENCE_MISSED, neglected.id),
            (ConflictKind.LEAD_UNTOUCHED, forgotten.id),
            (ConflictKind.CADENCE_MISSED, fine.id),
        ]
    )


def test_the_bell_mirrors_what_was_emailed(client, login, shop):
    tenant, owner, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))
    delivery.deliver_due(_at(tenant, DAY, 8, 1))
    login(owner.email)
    bell = client.get("/notifications/bell", headers={"HX-Request": "true"}).text
    assert 'id="bell-count">1<' in bell
    page = client.get("/notifications").text
    assert "morning digest" in page
    assert 'id="bell-count"' not in client.get("/notifications/bell").text
    assert (
        db.session.scalar(sa.select(sa.func.count(Notification.id)).execution_options(**ALL)) == 4
    )


def test_members_turn_the_digest_off_and_on_from_their_account(client, login, shop):
    tenant, owner, *_ = shop
    login(owner.email)
    client.post("/account/digest", data={})
    assert schedule.tick(_at(tenant, DAY, 8, 0))["rows"] == 3
    client.post("/account/digest", data={"digest": "on"})
    assert schedule.tick(_at(tenant, DAY + timedelta(days=1), 8, 0))["rows"] == 4


def test_the_owner_moves_the_digest_hour(client, login, shop):
    tenant, owner, *_ = shop
    login(owner.email)
    client.post(
        "/settings",
        data={
            "name": tenant.name,
            "timezone": "Europe/Moscow",
            "language": "en",
            "currency": "USD",
            "touch_cadence_days": "7",
            "queue_size": "20",
            "digest_hour": "6",
        },
    )
    assert schedule.tick(_at(tenant, DAY, 8, 0))["rows"] == 0
    assert schedule.tick(_at(tenant, DAY, 6, 5))["rows"] == 4


def test_dashboard_shows_cadence_compliance_and_who_is_about_to_miss(client, login, make, shop):
    from app.conveyor.services import local_today
    from app.models import Touch

    tenant, owner, closer, manager, _ = shop
    today = local_today(tenant)
    kept = make.lead(tenant, "Client", owner=manager)
    lapsed = make.lead(tenant, "Client", owner=manager)
    soon = make.lead(tenant, "Client", owner=manager)
    soon.next_touch_on = today + timedelta(days=(6 - today.weekday()))
    now = clock.now()
    db.session.add(
        Touch(
            tenant_id=tenant.id,
            lead_id=kept.id,
            channel="call",
            happened_at=now - timedelta(hours=1),
        )
    )
    db.session.add(
        Touch(
            tenant_id=tenant.id,
            lead_id=lapsed.id,
            channel="call",
            happened_at=now - timedelta(days=20),
        )
    )
    db.session.commit()
    login(manager.email)
    page = client.get("/").text
    assert 'id="kept-this-week">33%<' in page
    assert soon.contact.name in page.split('id="about-to-miss"')[1]
    client.post("/logout")
    login(closer.email)
    assert 'id="compliance"' not in client.get("/").text


def test_a_planned_touch_reminds_its_owner_once_when_the_moment_comes(
    client, login, make, shop, mailbox
):
    tenant, owner, closer, *_ = shop
    deal = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    client.post(f"/deals/{deal.id}/schedule", data={"at": "2026-12-01T15:30"})  # Moscow time
    assert "Planned for" in client.get(f"/deals/{deal.id}").text
    assert schedule.tick(_at(tenant, DAY, 15, 29))["rows"] == 0
    assert schedule.tick(_at(tenant, DAY, 15, 30))["rows"] == 1
    assert schedule.tick(_at(tenant, DAY, 15, 31))["rows"] == 0
    delivery.deliver_due(_at(tenant, DAY, 15, 31))
    [reminder] = [m for m in mailbox.to(closer.email) if "you planned" in m["Subject"]]
    assert deal.contact.name in reminder["Subject"]
    client.post(f"/deals/{deal.id}/touches", data={"channel": "call", "outcome": "Done"})
    db.session.refresh(deal)
    assert deal.touch_scheduled_at is None
    bad = client.post(
        f"/deals/{deal.id}/schedule", data={"at": "tomorrow-ish"}, follow_redirects=True
    )
    assert "Give a date and time" in bad.text


def test_a_database_restart_after_sending_does_not_send_the_message_again(
    app, shop, mailbox, monkeypatch
):
    """The SMTP server took the message, then the commit that records it failed (a
    PostgreSQL restart): the worker records it once the database is back, and the
    claim never goes stale to send it a second time."""
    tenant, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))
    monkeypatch.setattr(delivery, "RECORD_PAUSES", (0.01, 0.01))
    failures = []

    def restart_once(session):
        if not failures and any(isinstance(o, Notification) for o in session.new):
            failures.append(1)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("terminating connection"))

    sa.event.listen(db.session, "before_commit", restart_once)
    try:
        now = _at(tenant, DAY, 8, 1)
        assert delivery.deliver_due(now)["sent"] == 4
    finally:
        sa.event.remove(db.session, "before_commit", restart_once)
    assert failures and {row.status for row in _rows()} == {MessageStatus.SENT}
    later = now + timedelta(seconds=app.config["ENGINE_STALE_CLAIM_SECONDS"] + 60)
    assert delivery.deliver_due(later)["sent"] == 0
    assert len(mailbox) == 4 and len({m["Message-ID"] for m in mailbox}) == 4
    assert (
        db.session.scalar(sa.select(sa.func.count(Notification.id)).execution_options(**ALL)) == 4
    )


def test_a_database_restart_mid_batch_delays_one_message_not_the_batch(
    app, shop, mailbox, monkeypatch
):
    """The database went away while a message was rendered, and was still away for the
    first try to record the failure: that message is retried after the backoff, the rest
    of the claimed batch goes out at once instead of waiting for its claims to go stale."""
    tenant, *_ = shop
    schedule.tick(_at(tenant, DAY, 8, 0))
    monkeypatch.setattr(delivery, "RECORD_PAUSES", (0.01, 0.01))
    build = delivery.content.build
    broken = []

    def build_once_broken(row, *args):
        if not broken:
            broken.append(row.id)
            raise sa.exc.OperationalError("SELECT", {}, Exception("the database is shutting down"))
        return build(row, *args)

    def still_away(session):
        if len(broken) == 1:
            broken.append("commit")
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection refused"))

    monkeypatch.setattr(delivery.content, "build", build_once_broken)
    sa.event.listen(db.session, "before_commit", still_away)
    try:
        now = _at(tenant, DAY, 8, 1)
        assert delivery.deliver_due(now) == {"sent": 3, "retry": 1, "failed": 0, "skipped": 0}
    finally:
        sa.event.remove(db.session, "before_commit", still_away)
    [row] = _rows(status=MessageStatus.PENDING)
    assert row.id == broken[0] and row.attempts == 1 and "shutting down" in row.last_error
    assert delivery.deliver_due(now + timedelta(minutes=1))["sent"] == 1
    assert len(mailbox) == 4 and len({m["Message-ID"] for m in mailbox}) == 4
