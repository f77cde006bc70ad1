"""Telegram: a person's linked chat, the one-time links that make it, the updates the bot
received, and each member's choice of channel per kind of message."""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.models.base import Base, TenantScoped, TimestampMixin, UTCDateTime, str_enum


class Topic(enum.StrEnum):
    """The kinds of message a member routes to email, Telegram or both."""

    DIGEST = "digest"
    TOUCHES = "touches"  # touches due today and touches planned for a moment
    DECISIONS = "decisions"  # the ±3 days around a deal's decision date
    ALERTS = "alerts"  # the owner's: a source's quality dropped, a new conflict


class TelegramLink(TimestampMixin, Base):
    """The Telegram chat a person's reminders go to (one per person, for every workspace).

    ``disabled_at`` is set when Telegram refuses to deliver (the person blocked the bot):
    the channel is off, and the Account page says why, until they link again.
    """

    __tablename__ = "telegram_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    chat_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    telegram_name: Mapped[str | None] = mapped_column(sa.String(200))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(32))

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class TelegramLinkToken(TimestampMixin, Base):
    """A deep link's one-time token, stored hashed: valid for minutes, used once."""

    __tablename__ = "telegram_link_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TelegramUpdate(Base):
    """An update as the webhook received it: stored before it is judged, once per id."""

    __tablename__ = "telegram_update"

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class DeliveryPreference(TenantScoped, Base):
    """A member's channels for one topic in one workspace: email, telegram or both.

    No row: email, or both once Telegram is linked (see app.telegram.preferences).
    """

    __tablename__ = "delivery_preference"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "user_id", "topic"),)
    tenant_id_index = False  # the unique constraint leads with it

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    topic: Mapped[Topic] = mapped_column(str_enum(Topic, 16))
    channels: Mapped[str] = mapped_column(sa.String(16))  # "email", "telegram" or "both"
