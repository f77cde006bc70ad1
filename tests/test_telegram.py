"""Telegram: linking, digests and reminders in a chat, one-tap touches, owner alerts.

The app talks to ``tests/telegram_stub.py`` on 127.0.0.1 through ``TELEGRAM_API_BASE``;
tests post the update JSON Telegram would post to the webhook and run the worker's jobs.
"""

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from app import clock
from app.engine import delivery, schedule
from app.extensions import db
from app.models import (
    Channel,
    Conflict,
    ConflictKind,
    Lead,
    MessageKind,
    MessageStatus,
    OutboxMessage,
    Role,
    Source,
    TelegramLink,
    TelegramUpdate,
    Touch,
)
from app.tasks.radar import send_quality_alert
from tests import factories
from tests.telegram_stub import BOT_USERNAME, TelegramStub, callback_update, message_update
from tests.test_access_matrix import (
    EVERYONE,
    LOGIN,
    PAGE,
    POST,
    REDIRECT,
    Row,
    build_world,
    changed_tables,
    database_fingerprint,
    json_answer,
    plan,
)

SECRET = "webhook-secret-42"
ALL = {"all_tenants": True}
DAY = date(2026, 11, 25)  # the day after the pinned clock's


@pytest.fixture
def stub(app, ctx, monkeypatch):
    with TelegramStub() as running:
        monkeypatch.setitem(app.config, "TELEGRAM_BOT_TOKEN", running.token)
        monkeypatch.setitem(app.config, "TELEGRAM_WEBHOOK_SECRET", SECRET)
        monkeypatch.setitem(app.config, "TELEGRAM_API_BASE", running.url)
        yield running


def post_update(client, update: dict, secret: str | None = SECRET):
    """Post as Telegram does (give it a cookie-less client: Telegram keeps no session)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/telegram/webhook", json=update, headers=headers)


def deep_link_token(client) -> str:
    response = client.post("/account/telegram/link")
    assert response.status_code == 200, response.text
    found = re.search(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]+)", response.text)
    assert found, response.text
    return found.group(1)


def link_telegram(app, login, user, chat_id: int, run_jobs, language_code: str = "en"):
    """The whole linking journey: Account page → deep link → /start in the chat."""
    client = app.test_client()
    login(user.email, test_client=client)
    token = deep_link_token(client)
    assert post_update(client, message_update(chat_id, f"/start {token}", language_code)).json == {
        "ok": True
    }
    run_jobs()
    return client


def at_local(tenant, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(
        day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tenant.timezone)
    ).astimezone(UTC)


def rows(**where):
    query = sa.select(OutboxMessage).execution_options(**ALL).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return db.session.scalars(query).all()


def tap(client, stub, chat_id: int, message: dict, label: str):
    """Tap the button labelled ``label`` under a message the bot sent."""
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    button = next(b for b in buttons if b["text"] == label)
    return post_update(client, callback_update(chat_id, message, button["callback_data"]))


@pytest.fixture
def shop(make):
    tenant, owner = make.workspace_with_owner(name="Moscow Bakery")
    tenant.timezone = "Europe/Moscow"
    db.session.commit()
    return tenant, owner


# --- Off, and the webhook's door --------------------------------------------------------


def test_without_a_token_telegram_is_invisible(app, client, login, shop):
    tenant, owner = shop
    login(owner.email)
    assert "Telegram" not in client.get("/account").text
    assert client.post("/account/telegram/link").status_code == 404
    assert post_update(client, message_update(1, "/start x")).status_code == 404


def test_a_forged_or_missing_secret_token_is_refused(app, client, stub):
    update = message_update(77, "hello")
    assert post_update(client, update, secret=None).status_code == 403
    assert post_update(client, update, secret="wrong").status_code == 403
    assert post_update(client, update, secret=SECRET[:-1]).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(TelegramUpdate.id))) == 0
    assert post_update(client, {"no": "update"}).status_code == 400


def test_an_update_is_stored_once_and_answered_once(app, client, stub, run_jobs):
    update = message_update(77, "hello")
    for _ in range(3):  # Telegram re-sends what it thinks was not answered
        assert post_update(client, update).status_code == 200
    assert db.session.scalar(sa.select(sa.func.count(TelegramUpdate.id))) == 1
    run_jobs()
    assert len(stub.sent_to(77)) == 1


def test_unknown_chats_get_a_polite_answer_and_nothing_else(app, client, stub, run_jobs):
    post_update(client, message_update(501, "what is this?", language_code="ru"))
    post_update(client, message_update(502, "/start made-up-token"))
    run_jobs()
    assert "бот" in stub.sent_to(501)[0]["text"]
    assert "expired" in stub.sent_to(502)[0]["text"]
    assert db.session.scalar(sa.select(sa.func.count(TelegramLink.id))) == 0
    assert stub.called("answerCallbackQuery") == []


# --- Linking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "greeting", "linked_text"),
    [
        ("en", "Hello, Anna Petrova!", "where one tap logs the touch"),
        ("ru", "Здравствуйте, Anna Petrova!", "одним нажатием"),
    ],
)
def test_a_member_links_telegram_and_is_greeted_by_name_in_their_language(
    app, make, login, stub, run_jobs, shop, language, greeting, linked_text
):
    tenant, _ = shop
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    manager.name, manager.locale = "Anna Petrova", language
    db.session.commit()
    client = link_telegram(app, login, manager, 9001, run_jobs)
    assert stub.sent_to(9001)[0]["text"].startswith(greeting)
    page = client.get("/account").text
    assert linked_text in page and 'id="telegram-channels-form"' in page
    link = db.session.scalar(sa.select(TelegramLink))
    assert (link.user_id, link.chat_id, link.active) == (manager.id, 9001, True)


def test_a_link_works_once_and_for_fifteen_minutes(app, make, login, stub, run_jobs, shop):
    tenant, owner = shop
    client = app.test_client()
    login(owner.email, test_client=client)
    stale = deep_link_token(client)
    fresh = deep_link_token(client)
    with time_machine.travel(clock.now() + timedelta(minutes=16)):
        post_update(client, message_update(601, f"/start {stale}"))
        run_jobs()
    assert db.session.scalar(sa.select(TelegramLink)) is None
    post_update(client, message_update(602, f"/start {fresh}"))
    post_update(client, message_update(603, f"/start {fresh}"))  # someone replays it
    run_jobs()
    assert db.session.scalar(sa.select(TelegramLink.chat_id)) == 602
    assert "expired" in stub.sent_to(603)[0]["text"]
    assert stale not in str(db.session.execute(sa.text("select * from telegram_link_token")).all())


def test_unlinking_sends_everything_by_email_again(app, make, login, stub, run_jobs, shop):
    tenant, owner = shop
    client = link_telegram(app, login, owner, 700, run_jobs)
    assert client.post("/account/telegram/unlink").status_code == 302
    assert db.session.scalar(sa.select(TelegramLink)) is None
    schedule.tick(at_local(tenant, DAY, 8))
    assert [row.channel for row in rows(kind=MessageKind.DIGEST)] == [Channel.EMAIL]


# --- Digest and reminders -------------------------------------------------------------------


def test_tomorrows_digest_arrives_in_telegram_and_not_by_email_when_chosen(
    app, make, login, stub, run_jobs, shop, mailbox
):
    tenant, owner = shop
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    client = make.lead(tenant, "Client", owner=manager)
    client.next_touch_on = DAY - timedelta(days=2)
    db.session.commit()
    web = link_telegram(app, login, manager, 800, run_jobs)
    link_telegram(app, login, owner, 801, run_jobs)  # the owner keeps both (the default)
    response = web.post(
        "/account/telegram/channels",
        data={"digest": "telegram", "touches": "both", "decisions": "email", "alerts": "telegram"},
    )
    assert response.status_code == 302

    schedule.tick(at_local(tenant, DAY, 7, 59))
    assert stub.sent_to(800)[1:] == []
    schedule.tick(at_local(tenant, DAY, 8, 0))
    schedule.tick(at_local(tenant, DAY, 8, 5))  # a repeated tick adds nothing
    delivery.deliver_due(at_local(tenant, DAY, 8, 1))
    delivery.deliver_due(at_local(tenant, DAY, 8, 2))

    digest = stub.sent_to(800)[1]
    assert "Clients to touch today: 1, of them overdue: 1." in digest["text"]
    assert client.contact.name in digest["text"]
    assert len(stub.sent_to(800)) == 2  # the greeting and one digest
    assert mailbox.to(manager.email) == []  # Telegram only: no email digest
    assert len(mailbox.to(owner.email)) == 1 and len(stub.sent_to(801)) == 2  # both
    assert {(r.user_id, r.channel) for r in rows(kind=MessageKind.DIGEST)} == {
        (manager.id, Channel.TELEGRAM),
        (owner.id, Channel.EMAIL),
        (owner.id, Channel.TELEGRAM),
    }


def _touch_reminder(app, make, login, stub, run_jobs, shop, chat_id=900):
    tenant, _ = shop
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    client = make.lead(tenant, "Client", owner=manager)
    client.next_touch_on = DAY
    db.session.commit()
    web = link_telegram(app, login, manager, chat_id, run_jobs)
    schedule.tick(at_local(tenant, DAY, 8))
    delivery.deliver_due(at_local(tenant, DAY, 8, 1))
    reminder = next(m for m in stub.sent_to(chat_id) if "Time to touch" in m["text"])
    return tenant, manager, client, web, reminder


def test_tapping_called_logs_the_touch_and_moves_the_next_touch_by_the_cadence(
    app, make, login, stub, run_jobs, shop
):
    tenant, manager, client, web, reminder = _touch_reminder(app, make, login, stub, run_jobs, shop)
    assert [b["text"] for row in reminder["reply_markup"]["inline_keyboard"] for b in row] == [
        "Called ✓",
        "Wrote ✓",
        "Tomorrow",
        "Open",
    ]
    with time_machine.travel(at_local(tenant, DAY, 10)):
        tap(app.test_client(), stub, 900, reminder, "Called ✓")
        run_jobs()
    touch = db.session.scalar(sa.select(Touch).execution_options(**ALL))
    assert (touch.actor_id, touch.channel.value, touch.outcome) == (manager.id, "call", "Called")
    lead = db.session.get(Lead, client.id)
    assert lead.next_touch_on == DAY + timedelta(days=tenant.touch_cadence_days)
    assert "Called" in web.get(f"/deals/{client.id}").text  # on the client's timeline
    answered = stub.called("answerCallbackQuery")[-1]
    assert "the touch is logged" in answered["text"]
    edited = stub.called("editMessageText")[-1]
    assert edited["message_id"] == reminder["message_id"]
    assert "Called ✓ — the touch is logged." in edited["text"]
    assert [b["text"] for b in edited["reply_markup"]["inline_keyboard"][0]] == ["Open"]


def test_tomorrow_plans_the_touch_for_tomorrows_morning(app, make, login, stub, run_jobs, shop):
    tenant, manager, client, web, reminder = _touch_reminder(app, make, login, stub, run_jobs, shop)
    with time_machine.travel(at_local(tenant, DAY, 10)):
        tap(app.test_client(), stub, 900, reminder, "Tomorrow")
        run_jobs()
    lead = db.session.get(Lead, client.id)
    assert lead.touch_scheduled_at == at_local(tenant, DAY + timedelta(days=1), 8)
    assert db.session.scalar(sa.select(sa.func.count(Touch.id)).execution_options(**ALL)) == 0


def test_a_text_reply_to_a_reminder_logs_a_touch_with_that_note(
    app, make, login, stub, run_jobs, shop
):
    tenant, manager, client, web, reminder = _touch_reminder(app, make, login, stub, run_jobs, shop)
    note = "Wants three more boxes next week"
    post_update(app.test_client(), message_update(900, note, reply_to=reminder))
    run_jobs()
    touch = db.session.scalar(sa.select(Touch).execution_options(**ALL))
    assert (touch.actor_id, touch.note) == (manager.id, note)
    assert "Touch logged with your note." in stub.sent_to(900)[-1]["text"]


def test_a_closers_tap_on_someone_elses_deal_does_nothing(app, make, login, stub, run_jobs, shop):
    tenant, owner = shop
    closer, other = make.member(tenant, Role.CLOSER), make.member(tenant, Role.CLOSER)
    deal = make.lead(tenant, "Proposal", owner=closer)
    deal.decision_date = DAY
    theirs = make.lead(tenant, "Proposal", owner=other)
    theirs.decision_date = DAY
    db.session.commit()
    link_telegram(app, login, closer, 1001, run_jobs)
    link_telegram(app, login, other, 1002, run_jobs)
    schedule.tick(at_local(tenant, DAY, 8))
    delivery.deliver_due(at_local(tenant, DAY, 8, 1))
    mine = next(m for m in stub.sent_to(1001) if "decides around" in m["text"])
    others = next(m for m in stub.sent_to(1002) if "decides around" in m["text"])

    # A forged tap from the closer's chat naming the other closer's reminder.
    forged = others["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    post_update(app.test_client(), callback_update(1001, mine, forged))
    # The deal was handed to the other closer after the reminder went out.
    db.session.get(Lead, deal.id).owner_id = other.id
    db.session.commit()
    tap(app.test_client(), stub, 1001, mine, "Called ✓")
    run_jobs()

    assert db.session.scalar(sa.select(sa.func.count(Touch.id)).execution_options(**ALL)) == 0
    answers = stub.called("answerCallbackQuery")
    assert len(answers) == 2 and all(a["show_alert"] for a in answers)
    assert "not yours" in answers[0]["text"]
    assert stub.called("editMessageText") == []


def test_a_tap_never_crosses_into_another_workspace(app, make, login, stub, run_jobs, shop):
    tenant, _ = shop
    victim = make.member(tenant, Role.ACCOUNT_MANAGER)
    client = make.lead(tenant, "Client", owner=victim)
    client.next_touch_on = DAY
    other_tenant, intruder = make.workspace_with_owner(name="Intruders")
    db.session.commit()
    link_telegram(app, login, victim, 1101, run_jobs)
    link_telegram(app, login, intruder, 1102, run_jobs)
    schedule.tick(at_local(tenant, DAY, 8))
    delivery.deliver_due(at_local(tenant, DAY, 8, 1))
    reminder = next(m for m in stub.sent_to(1101) if "Time to touch" in m["text"])
    data = reminder["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    post_update(app.test_client(), callback_update(1102, {**reminder, "chat": {"id": 1102}}, data))
    post_update(app.test_client(), message_update(1102, "logged!", reply_to=reminder))
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(Touch.id)).execution_options(**ALL)) == 0


# --- Flood control and a blocked bot --------------------------------------------------------


def test_flood_control_waits_as_long_as_telegram_asks(app, make, login, stub, run_jobs, shop):
    tenant, owner = shop
    link_telegram(app, login, owner, 1200, run_jobs)
    owner_membership = factories.membership_of(tenant, owner)
    owner_membership.digest_opt_out = True  # Telegram only, through the email opt-out
    db.session.commit()
    schedule.tick(at_local(tenant, DAY, 8))
    stub.flood(retry_after=42)
    sent_at = at_local(tenant, DAY, 8, 1)
    assert delivery.deliver_due(sent_at)["retry"] == 1
    row = rows(channel=Channel.TELEGRAM)[0]
    assert (row.status, row.attempts) == (MessageStatus.PENDING, 0)
    assert row.next_attempt_at == sent_at + timedelta(seconds=42)
    assert delivery.deliver_due(sent_at + timedelta(seconds=41))["sent"] == 0
    assert delivery.deliver_due(sent_at + timedelta(seconds=42))["sent"] == 1
    assert len(stub.sent_to(1200)) == 2  # the greeting and the digest, once


def test_a_blocked_bot_switches_telegram_off_and_the_account_page_says_why(
    app, make, login, stub, run_jobs, shop, mailbox
):
    tenant, owner = shop
    web = link_telegram(app, login, owner, 1300, run_jobs)
    web.post("/account/telegram/channels", data={"digest": "telegram"})
    schedule.tick(at_local(tenant, DAY, 8))
    stub.blocked.add(1300)
    assert delivery.deliver_due(at_local(tenant, DAY, 8, 1))["skipped"] == 1
    assert delivery.deliver_due(at_local(tenant, DAY, 8, 2))["sent"] == 1  # by email instead
    assert len(mailbox.to(owner.email)) == 1
    link = db.session.scalar(sa.select(TelegramLink))
    assert (link.active, link.disabled_reason) == (False, "blocked")
    assert "the bot was blocked in Telegram" in web.get("/account").text
    # Tomorrow everything goes by email; nothing more is tried in Telegram.
    schedule.tick(at_local(tenant, DAY + timedelta(days=1), 8))
    assert [r.channel for r in rows(local_date=DAY + timedelta(days=1))] == [Channel.EMAIL]


# --- Owner alerts --------------------------------------------------------------------------


def test_owner_alerts_come_with_pause_source_for_the_owner_only(
    app, make, login, stub, run_jobs, shop
):
    tenant, owner = shop
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    link_telegram(app, login, owner, 1400, run_jobs)
    link_telegram(app, login, generator, 1401, run_jobs)
    source = make.source(tenant, name="Banner partner")
    conflict = Conflict(
        tenant_id=tenant.id,
        kind=ConflictKind.SOURCE_QUALITY,
        source_id=source.id,
        details={"source": source.name, "junk_share": 70, "junk_max": 30},
        created_at=clock.now() + timedelta(seconds=1),
    )
    db.session.add(conflict)
    db.session.commit()
    now = clock.now() + timedelta(minutes=1)
    schedule.tick(now)
    schedule.tick(now + timedelta(minutes=1))
    delivery.deliver_due(now)
    alerts = [m for m in stub.sent_to(1400) if "Banner partner" in m["text"]]
    assert len(alerts) == 1 and "Junk: 70% (limit 30%)" in alerts[0]["text"]
    assert [m for m in stub.sent_to(1401) if "Banner partner" in m["text"]] == []
    tap(app.test_client(), stub, 1400, alerts[0], "Pause source")
    run_jobs()
    assert db.session.get(Source, source.id).active is False
    assert "is paused" in stub.called("editMessageText")[-1]["text"]


def test_an_owner_who_chose_telegram_only_gets_no_alert_email(
    app, make, login, stub, run_jobs, shop, mailbox
):
    tenant, owner = shop
    web = link_telegram(app, login, owner, 1500, run_jobs)
    source = make.source(tenant, name="Banner partner")
    conflict = Conflict(
        tenant_id=tenant.id, kind=ConflictKind.SOURCE_QUALITY, source_id=source.id, details={}
    )
    db.session.add(conflict)
    db.session.commit()
    web.post("/account/telegram/channels", data={"alerts": "telegram"})
    assert send_quality_alert(tenant.id, conflict.id) == 0
    assert mailbox.to(owner.email) == []


def test_set_webhook_registers_the_address_with_the_secret(app, stub):
    result = app.test_cli_runner().invoke(args=["telegram", "set-webhook"])
    assert result.exit_code == 0, result.output
    call = stub.called("setWebhook")[0]
    assert call["url"] == "http://conveyor.test/telegram/webhook"
    assert call["secret_token"] == SECRET


# --- Who may use the routes with the bot on (the access matrix's rows, walked again) --------

ROWS_WITH_THE_BOT_ON = [
    # No secret header: refused for everyone, signed in or not; nothing is stored.
    Row(
        "telegram.webhook",
        POST,
        EVERYONE,
        json_answer(403),
        payload={"update_id": 1, "message": {"text": "hi"}},
        public=json_answer(403),
    ),
    Row("telegram.link", POST, EVERYONE, PAGE),
    Row("telegram.unlink", POST, EVERYONE, REDIRECT),
    Row("telegram.channels", POST, EVERYONE, REDIRECT, form={"digest": "telegram"}),
]


@pytest.mark.parametrize("row", ROWS_WITH_THE_BOT_ON, ids=lambda row: row.endpoint)
def test_with_the_bot_on_each_role_and_stranger_gets_what_the_matrix_says(
    app, make, monkeypatch, stub, row
):
    world = build_world(app, make, monkeypatch)
    refused, allowed = plan(app, world, row)
    assert row.signed_out in (LOGIN, json_answer(403))
    mismatches = []
    before = database_fingerprint()
    for visit in refused:
        problem = visit.expected.problem(visit.send())
        if problem:
            mismatches.append(f"{visit}: expected {visit.expected}, {problem}")
    if changed_tables(before, database_fingerprint()):
        mismatches.append("refused requests changed rows")
    for visit in allowed:
        problem = visit.expected.problem(visit.send())
        if problem:
            mismatches.append(f"{visit}: expected {visit.expected}, {problem}")
    assert not mismatches, "\n".join(mismatches)
    assert db.session.scalar(sa.select(sa.func.count(TelegramUpdate.id))) == 0
