"""The contact engine's record of what was due and what was sent.

The database, not Redis, is the record: one outbox row per (recipient, kind,
subject, local date, channel) under a unique key, so a tick run twice writes nothing twice.
"""

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.models.base import Base, TenantScoped, UTCDateTime, str_enum


class MessageKind(enum.StrEnum):
    DIGEST = "digest"
    TOUCH_DUE = "touch_due"
    DECISION_WINDOW = "decision_window"
    TOUCH_SCHEDULED = "touch_scheduled"
    OWNER_ALERT = "owner_alert"  # a new conflict for the owner (Telegram only: see app.telegram)


class Channel(enum.StrEnum):
    """Where an outbox row goes: each message is one row per channel."""

    EMAIL = "email"
    TELEGRAM = "telegram"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # the recipient opted out or left before it went out


class OutboxMessage(TenantScoped, Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.Index("ix_outbox_message_status_due", "status", "next_attempt_at"),
        sa.Index("ix_outbox_message_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unique_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, 24))
    channel: Mapped[Channel] = mapped_column(
        str_enum(Channel, 16), default=Channel.EMAIL, server_default=Channel.EMAIL.value
    )
    subject_id: Mapped[int | None] = mapped_column()  # the lead, for reminders
    local_date: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[MessageStatus] = mapped_column(
        str_enum(MessageStatus, 16), default=MessageStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # The channel's own id of what was sent (Telegram's message_id): replies point at it.
    external_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    user: Mapped["User"] = relationship()  # noqa: F821


class Notification(TenantScoped, Base):
    """The in-app mirror of an email: the bell counts the unread ones."""

    __tablename__ = "notification"
    __table_args__ = (sa.Index("ix_notification_user_read", "tenant_id", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    outbox_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbox_message.id", ondelete="CASCADE"), unique=True
    )
    text: Mapped[str] = mapped_column(sa.String(500))
    link: Mapped[str | None] = mapped_column(sa.String(500))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
