"""Sending the outbox: claim rows, send by email or Telegram, mark them; retry with backoff.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers
never take the same row. A row left in "sending" by a killed worker is claimed
again once its claim is older than ENGINE_STALE_CLAIM_SECONDS.
"""

import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError

from app import clock
from app.claims import claim_rows
from app.engine import content
from app.extensions import db
from app.mail import send_email
from app.models import (
    Channel,
    Membership,
    MessageStatus,
    Notification,
    OutboxMessage,
    Tenant,
    User,
)
from app.telegram import bot_api
from app.telegram import outbox as telegram_outbox
from app.tenancy import ALL_TENANTS

MAX_ATTEMPTS = 5
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
BATCH = 50
# Pauses between tries to record what became of a message while the database is away
# (a restart is waited out; see _write_waiting_out_the_database).
RECORD_PAUSES = (0.5, 1, 2, 4, 8, 15)


def stale_claim() -> timedelta:
    """Configured by ENGINE_STALE_CLAIM_SECONDS (five minutes by default)."""
    return timedelta(seconds=current_app.config.get("ENGINE_STALE_CLAIM_SECONDS", 300))


def claim(now: datetime, limit: int = BATCH) -> list[int]:
    """Take up to ``limit`` due rows for this worker and commit the claim."""
    pending = sa.and_(
        OutboxMessage.status == MessageStatus.PENDING, OutboxMessage.next_attempt_at <= now
    )
    abandoned = sa.and_(
        OutboxMessage.status == MessageStatus.SENDING,
        OutboxMessage.claimed_at < now - stale_claim(),
    )
    return claim_rows(
        OutboxMessage,
        sa.or_(pending, abandoned),
        (OutboxMessage.next_attempt_at, OutboxMessage.id),
        limit,
        now,
        MessageStatus.SENDING,
    )


def deliver_due(now: datetime | None = None, limit: int = BATCH) -> dict:
    """Claim and send what is due; one commit per message so progress survives a crash."""
    now = now or clock.now()
    counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    for message_id in claim(now, limit):
        counts[_deliver_one(message_id, now)] += 1
    return counts


def _deliver_one(message_id: int, now: datetime) -> str:
    row = db.session.get(OutboxMessage, message_id)
    user = db.session.get(User, row.user_id)
    tenant = db.session.get(Tenant, row.tenant_id)
    membership = db.session.scalar(
        sa.select(Membership)
        .where(Membership.tenant_id == row.tenant_id, Membership.user_id == row.user_id)
        .execution_options(**ALL_TENANTS)
    )
    if membership is None or not membership.active:
        row.status = MessageStatus.SKIPPED
        db.session.commit()
        return "skipped"
    try:
        if row.channel == Channel.TELEGRAM:
            message = telegram_outbox.send(row, tenant, membership, user)
        else:
            message = _send_email(row, tenant, membership, user)
        if message is None:  # nothing left to say (the deal closed, the touch was logged)
            row.status = MessageStatus.SKIPPED
            db.session.commit()
            return "skipped"
    except bot_api.Blocked as error:  # the person blocked the bot: never retried
        db.session.rollback()
        telegram_outbox.switch_off(message_id, now, str(error))
        db.session.commit()
        return "skipped"
    except bot_api.FloodControl as error:  # Telegram says when to come back
        db.session.rollback()
        return _record_failure(message_id, now, str(error), retry_at=now + error.retry_after)
    except Exception as error:  # noqa: BLE001 - every SMTP or render failure is retried
        db.session.rollback()
        return _record_failure(message_id, now, f"{type(error).__name__}: {error}"[:2000])
    _record_sent(message_id, now, message)
    return "sent"


def _send_email(row, tenant, membership, user) -> content.Message | None:
    message = content.build(row, tenant, membership, user)
    if message is not None:
        headers = {**message.headers, "Message-ID": f"<outbox-{row.id}.{row.tenant_id}@conveyor>"}
        send_email(user.email, message.template, message.locale, headers=headers, **message.context)
    return message


def _record_failure(
    message_id: int, now: datetime, last_error: str, retry_at: datetime | None = None
) -> str:
    """Count the failed attempt: try again after a backoff, or give up after the last.

    ``retry_at`` is a time the channel asked for (Telegram's flood control): the row
    waits until then, and the wait is not counted as a failed attempt.
    """
    outcome = "retry"

    def write() -> None:
        nonlocal outcome
        row = db.session.get(OutboxMessage, message_id)
        if row.status != MessageStatus.SENDING:  # a commit that seemed lost was not
            return
        row.last_error = last_error
        if retry_at is not None:
            row.status = MessageStatus.PENDING
            row.next_attempt_at = retry_at
            row.claimed_at = None
            return
        row.attempts += 1
        if row.attempts >= MAX_ATTEMPTS:
            row.status = MessageStatus.FAILED
            outcome = "failed"
        else:
            row.status = MessageStatus.PENDING
            row.next_attempt_at = now + BACKOFF[min(row.attempts - 1, len(BACKOFF) - 1)]
        row.claimed_at = None

    _write_waiting_out_the_database(message_id, "failed", write)
    current_app.logger.warning("outbox %s: %s", message_id, last_error)
    return outcome


def _record_sent(message_id: int, now: datetime, message) -> None:
    """Mark the row sent and add its notification (a Telegram message whose email twin
    also goes out leaves the bell to the email)."""

    def write() -> None:
        row = db.session.get(OutboxMessage, message_id)
        if row.status != MessageStatus.SENDING:  # a commit that seemed lost was not
            return
        row.status = MessageStatus.SENT
        row.sent_at = now
        row.attempts += 1
        row.external_id = getattr(message, "external_id", None)
        if not message.notification:
            return
        db.session.add(
            Notification(
                tenant_id=row.tenant_id,
                user_id=row.user_id,
                outbox_message_id=row.id,
                text=message.notification,
                link=message.link,
                created_at=now,
            )
        )

    _write_waiting_out_the_database(message_id, "was sent", write)


def _write_waiting_out_the_database(message_id: int, what: str, write) -> None:
    """Record what became of a claimed message, retrying while the database is away.

    Given up, the row would stay claimed until the claim goes stale: a sent message
    would then go out again, and the rest of the batch would wait with it.
    """
    for pause in (*RECORD_PAUSES, None):
        try:
            write()
            db.session.commit()
            return
        except OperationalError:
            db.session.rollback()
            if pause is None:
                raise
            current_app.logger.warning(
                "outbox %s %s but could not be recorded; retrying in %s s",
                message_id,
                what,
                pause,
                exc_info=True,
            )
            time.sleep(pause)
