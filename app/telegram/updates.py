"""What the bot received: stored at once by the webhook, acted on by the worker.

Each update is stored once per ``update_id`` (Telegram re-sends what was not answered
in time) and taken by one worker with a compare-and-set, so a tap is acted on once even
when the webhook's job and the periodic sweep reach it together.
"""

from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql

from app import clock
from app.auth.services import preferred_locale
from app.extensions import db
from app.models import TelegramUpdate
from app.telegram import bot_api, linking, taps
from app.telegram.linking import sender_locale

SWEEP_BATCH = 100


def receive(payload: dict) -> int | None:
    """Store an update; its row id when it is new, None when it was seen before."""
    now = clock.now()
    statement = (
        postgresql.insert(TelegramUpdate)
        .values(update_id=payload["update_id"], payload=payload, received_at=now)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(TelegramUpdate.id)
    )
    row = db.session.execute(statement).first()
    db.session.commit()
    return row.id if row else None


def process(update_row_id: int, now: datetime | None = None) -> bool:
    """Act on one stored update, unless another worker already took it."""
    now = now or clock.now()
    taken = db.session.execute(
        sa.update(TelegramUpdate)
        .where(TelegramUpdate.id == update_row_id, TelegramUpdate.processed_at.is_(None))
        .values(processed_at=now)
        .returning(TelegramUpdate.payload)
    ).first()
    db.session.commit()
    if taken is None:
        return False
    payload = taken.payload
    if "callback_query" in payload:
        taps.on_callback(payload["callback_query"], now)
    elif "message" in payload:
        on_message(payload["message"], now)
    return True


def pending_ids() -> list[int]:
    return list(
        db.session.scalars(
            sa.select(TelegramUpdate.id)
            .where(TelegramUpdate.processed_at.is_(None))
            .order_by(TelegramUpdate.id)
            .limit(SWEEP_BATCH)
        )
    )


LINKED = _l("Hello, %(name)s! Your Conveyor reminders will come here.")
HOW_TO_TAP = _l(
    "Tap the buttons under a reminder, or reply to it with a note: the touch is logged."
)
LINK_EXPIRED = _l(
    "This link has expired or was already used. "
    "Open your Account page in Conveyor and link Telegram again."
)
STRANGER = _l(
    "Hello! This bot sends Conveyor reminders to its members. "
    "To receive them, link Telegram on your Account page in Conveyor."
)
NOTE_LOGGED = _l("Touch logged with your note.")
HOW_TO_LOG = _l("To log a touch, tap a reminder's button or reply to the reminder with a note.")


def on_message(message: dict, now: datetime) -> None:
    chat = message.get("chat") or {}
    if chat.get("type") != "private":
        return  # the bot speaks with people, not groups
    chat_id, sender = chat["id"], message.get("from") or {}
    text = (message.get("text") or "").strip()
    command, _space, argument = text.partition(" ")
    if command == "/start" and argument.strip():
        _link(chat_id, sender, argument.strip(), now)
        return
    user = linking.linked_user(chat_id)
    if user is None:
        with force_locale(sender_locale(sender)):
            say(chat_id, str(STRANGER))
        return
    reply_to = message.get("reply_to_message") or {}
    with force_locale(preferred_locale(user)):
        if (
            text
            and reply_to.get("message_id")
            and taps.on_reply(user, reply_to["message_id"], text)
        ):
            say(chat_id, str(NOTE_LOGGED))
        else:
            say(chat_id, str(HOW_TO_LOG))


def _link(chat_id: int, sender: dict, token: str, now: datetime) -> None:
    name = " ".join(filter(None, (sender.get("first_name"), sender.get("last_name"))))
    user = linking.link_chat(token, chat_id, name or sender.get("username"), now)
    if user is None:
        with force_locale(sender_locale(sender)):
            say(chat_id, str(LINK_EXPIRED))
        return
    with force_locale(preferred_locale(user)):
        say(chat_id, f"{LINKED % {'name': user.name}}\n{HOW_TO_TAP}")


def say(chat_id: int, text: str) -> None:
    """Answer in the chat; a failed answer is logged, never retried (the act is done)."""
    try:
        bot_api.send_message(chat_id, text)
    except bot_api.BotApiError as error:
        current_app.logger.warning("telegram: could not answer chat %s: %s", chat_id, error)
