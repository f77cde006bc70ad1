"""Telegram in a real browser, in English and in Russian: an account manager links the
bot from the Account page, chooses Telegram only for the digest, gets tomorrow's 08:00
digest and touch reminder in the chat (the digest not by email), taps "Called ✓" and
sees the touch on the client's timeline with the next touch moved by the cadence.

The Bot API is ``tests/telegram_stub.py`` on loopback; updates are posted over HTTP to
the live server's webhook as Telegram would post them, and acted on by the worker's code.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from app import clock
from app.engine import delivery, schedule
from app.extensions import db
from app.models import Lead, Role, TelegramUpdate
from app.telegram import updates
from tests import factories
from tests.telegram_stub import BOT_USERNAME, TelegramStub, callback_update, message_update

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SECRET = "e2e-webhook-secret"
WORDS = {
    "en": {
        "link": "Link Telegram",
        "open": "Open Telegram",
        "linked": "where one tap logs the touch",
        "save": "Save",
        "saved": "Channels saved.",
        "greeting": "Hello, Marina Sokolova!",
        "digest": "Clients to touch today: 1",
        "called": "Called ✓",
        "timeline": "Called",
    },
    "ru": {
        "link": "Привязать Telegram",
        "open": "Открыть Telegram",
        "linked": "одним нажатием",
        "save": "Сохранить",
        "saved": "Каналы сохранены.",
        "greeting": "Здравствуйте, Marina Sokolova!",
        "digest": "Касания клиентов на сегодня: 1",
        "called": "Позвонил ✓",
        "timeline": "Позвонил",
    },
}


@pytest.fixture
def stub(app):
    with TelegramStub() as running:
        saved = {k: app.config.get(k) for k in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")}
        saved["TELEGRAM_API_BASE"] = app.config["TELEGRAM_API_BASE"]
        app.config.update(
            TELEGRAM_BOT_TOKEN=running.token,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            TELEGRAM_API_BASE=running.url,
        )
        yield running
        app.config.update(saved)


def post_update(base_url: str, update: dict) -> None:
    response = requests.post(
        f"{base_url}/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        timeout=10,
    )
    assert response.json() == {"ok": True}


def act_on_updates(app) -> None:
    """What the worker does with the stored updates."""
    with app.app_context():
        for row_id in db.session.scalars(
            sa.select(TelegramUpdate.id).where(TelegramUpdate.processed_at.is_(None))
        ).all():
            updates.process(row_id)
        db.session.remove()


def screenshot(page, name: str, language: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if width >= 1000 else "-phone"
    page.screenshot(path=SCREENSHOTS / f"{name}{suffix}-{language}.png", full_page=True)


@pytest.mark.parametrize("language", ["en", "ru"])
def test_link_telegram_get_the_digest_there_and_log_a_touch_with_one_tap(
    app, live_server, new_page, stub, mailbox, language
):
    words = WORDS[language]
    with app.app_context():
        # Stages are named in English (the factories find them by name); the manager
        # reads the app and the bot in their own language.
        tenant, _owner = factories.workspace_with_owner(name="Sunrise Bakery")
        manager = factories.member(tenant, Role.ACCOUNT_MANAGER)
        manager.name, manager.locale = "Marina Sokolova", language
        tomorrow = clock.today(tenant.timezone) + timedelta(days=1)
        client = factories.lead(tenant, "Client", owner=manager)
        client.next_touch_on = tomorrow
        db.session.commit()
        client_id, email, cadence = client.id, manager.email, tenant.touch_cadence_days
        timezone = tenant.timezone
        db.session.remove()

    page = new_page(locale="ru-RU" if language == "ru" else "en-US")
    page.goto("/login")
    page.locator("#login-form [name=email]").fill(email)
    page.locator("#login-form [name=password]").fill(factories.PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url("**/")

    # Link: the Account page's button gives a one-time deep link to the bot.
    page.goto("/account")
    screenshot(page, "telegram-account-unlinked", language, 1280)
    page.get_by_role("button", name=words["link"]).click()
    deep_link = page.get_by_role("link", name=words["open"]).get_attribute("href")
    token = re.fullmatch(rf"https://t\.me/{BOT_USERNAME}\?start=([\w-]+)", deep_link).group(1)
    post_update(live_server, message_update(4242, f"/start {token}", language))
    act_on_updates(app)
    assert stub.sent_to(4242)[0]["text"].startswith(words["greeting"])

    # Telegram only for the digest.
    page.goto("/account")
    expect(page.locator("#telegram")).to_contain_text(words["linked"])
    page.locator("#telegram-digest").select_option("telegram")
    page.locator("#telegram-channels-form").get_by_role("button", name=words["save"]).click()
    expect(page.locator(".flash-success")).to_contain_text(words["saved"])
    for width in (1280, 390):
        screenshot(page, "telegram-account", language, width)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Tomorrow at 08:00 in the workspace: the digest and the reminder come to Telegram.
    morning = datetime.combine(tomorrow, datetime.min.time(), ZoneInfo(timezone)).replace(hour=8)
    with app.app_context():
        schedule.tick(morning.astimezone(UTC))
        delivery.deliver_due(morning.astimezone(UTC) + timedelta(minutes=1))
        db.session.remove()
    sent = stub.sent_to(4242)
    assert any(words["digest"] in m["text"] for m in sent)
    # By email only the touch reminder (touches: both, the default); no digest.
    assert len(mailbox.to(email)) == 1
    reminder = next(
        m for m in sent if len((m.get("reply_markup") or {}).get("inline_keyboard", [])) == 2
    )

    # One tap: the touch is logged as the manager and the next touch moves on.
    called = next(
        button
        for row in reminder["reply_markup"]["inline_keyboard"]
        for button in row
        if button["text"] == words["called"]
    )
    post_update(live_server, callback_update(4242, reminder, called["callback_data"], language))
    act_on_updates(app)
    with app.app_context():
        lead = db.session.get(Lead, client_id)
        assert lead.next_touch_on == clock.today(timezone) + timedelta(days=cadence)
        db.session.remove()
    page.goto(f"/deals/{client_id}")
    expect(page.locator("body")).to_contain_text(words["timeline"])
    assert words["called"] in stub.called("editMessageText")[-1]["text"]
