"""What senders posted: every raw request, kept before it is judged."""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.models.base import Base, TenantScoped, UTCDateTime, str_enum
from app.models.pipeline import Lead, Source


class InboxStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, not judged yet (only inside the intake transaction)
    PENDING = "pending"  # accepted (answered 202): waiting for the lead builder
    ACCEPTED = "accepted"  # became a new lead
    DUPLICATE = "duplicate"  # the same post seen before: shares its receipt (and lead)
    REJECTED = "rejected"  # kept with a reason; the owner can correct and re-process it
    SPAM = "spam"  # a bot by the honeypot or the fill time; kept, never on the board


class InboxItem(TenantScoped, Base):
    __tablename__ = "inbox_item"
    __table_args__ = (
        sa.Index("ix_inbox_item_tenant_status_received", "tenant_id", "status", "received_at"),
        # What the lead builder claims next: small, as posts wait in it for milliseconds.
        sa.Index("ix_inbox_item_pending", "id", postgresql_where=sa.text("status = 'pending'")),
    )
    tenant_id_index = False  # the index above leads with it

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(
        sa.ForeignKey("source.id", ondelete="CASCADE"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    content_type: Mapped[str] = mapped_column(sa.String(200), default="")
    headers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    body_truncated: Mapped[bool] = mapped_column(default=False)
    status: Mapped[InboxStatus] = mapped_column(str_enum(InboxStatus, 16))
    http_status: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    errors: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Fields as last judged (parsed from the body, or corrected by the owner).
    fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id", ondelete="SET NULL"))
    # What the sender was answered for an accepted post (and its repeats): opaque and
    # random, so it tells nothing about other posts or workspaces.
    receipt: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    # Accepted while its source was paused or the workspace's billing had lapsed: the lead
    # it becomes is flagged, whenever the builder gets to it.
    flagged: Mapped[bool] = mapped_column(default=False)

    source: Mapped[Source] = relationship()
    lead: Mapped[Lead | None] = relationship()


class IntakeKey(TenantScoped, Base):
    """An idempotency key a source's post claimed: a repeat answers with the same receipt.

    On a source without signatures anyone who reads its address can post first, so a
    key is claimed together with the post's contact details (``contact``, a digest of
    its normalised email and E.164 phone): the same key with other details is another
    post. On a signed source ``contact`` is empty: a key is one post, whatever it says.
    """

    __tablename__ = "intake_key"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "source_id", "key", "contact"),)
    tenant_id_index = False  # the unique key leads with it

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("source.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(300))
    contact: Mapped[str] = mapped_column(sa.String(64), default="")
    receipt: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class IntakeMinute(TenantScoped, Base):
    """A source's refused posts in one minute (UTC): the first few are kept whole in the
    inbox, the rest only counted here, so a public address cannot fill the database."""

    __tablename__ = "intake_minute"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "source_id", "minute"),)
    tenant_id_index = False  # the unique key leads with it

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("source.id", ondelete="CASCADE"))
    minute: Mapped[datetime] = mapped_column(UTCDateTime())
    # Every refused post of the minute, kept or not (what decides whether the next is kept).
    refused_posts: Mapped[int] = mapped_column(default=0)
    refused_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Those only counted: no inbox row, nothing of their body stored.
    counted_posts: Mapped[int] = mapped_column(default=0)
    counted_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    counted_by_status: Mapped[dict] = mapped_column(JSONB, default=dict)  # {"415": 296}

    source: Mapped[Source] = relationship()
