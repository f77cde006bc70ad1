"""Sending an outbox row to Telegram; the engine's delivery owns claims and retries.

Telegram's answers become the outbox's decisions: 429 waits ``retry_after``
(``FloodControl`` reaches the delivery loop), 403 means the person blocked the bot, so
their Telegram is switched off and the message goes by email instead.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.extensions import db
from app.models import (
    Channel,
    Membership,
    MessageStatus,
    OutboxMessage,
    TelegramLink,
    Tenant,
    User,
)
from app.telegram import bot_api, messages
from app.telegram.preferences import OUTBOX_EMAIL_KINDS, TOPIC_OF, usable_link, wants_email

BLOCKED = "blocked"


def send(
    row: OutboxMessage, tenant: Tenant, membership: Membership, user: User
) -> messages.Outgoing | None:
    """Send the row's message; None when there is nothing to send (or nowhere to)."""
    link = usable_link(row.user_id)
    if link is None:
        return None
    outgoing = messages.compose(row, tenant, membership, user)
    if outgoing is None:
        return None
    sent = bot_api.send_message(link.chat_id, outgoing.text, outgoing.buttons)
    outgoing.external_id = str(sent["message_id"])
    if wants_email(row.tenant_id, row.user_id, TOPIC_OF[row.kind]):
        outgoing.notification = ""  # the email's own row puts it in the bell
    return outgoing


def switch_off(message_id: int, now: datetime, error: str) -> None:
    """The person blocked the bot: Telegram is off for them until they link again, and
    this message goes by email (under the email row's own key, so never twice)."""
    row = db.session.get(OutboxMessage, message_id)
    row.status = MessageStatus.SKIPPED
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_at = None
    db.session.execute(
        sa.update(TelegramLink)
        .where(TelegramLink.user_id == row.user_id, TelegramLink.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=BLOCKED)
    )
    if row.kind in OUTBOX_EMAIL_KINDS:
        email_key = row.unique_key.removesuffix(f":{Channel.TELEGRAM.value}")
        statement = postgresql.insert(OutboxMessage).on_conflict_do_nothing(
            index_elements=["unique_key"]
        )
        db.session.execute(
            statement,
            {
                "tenant_id": row.tenant_id,
                "user_id": row.user_id,
                "kind": row.kind.value,
                "subject_id": row.subject_id,
                "local_date": row.local_date,
                "unique_key": email_key,
                "channel": Channel.EMAIL.value,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
