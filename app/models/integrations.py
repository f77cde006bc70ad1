"""The public API's tokens and idempotency keys; outbound webhooks and their deliveries.

A webhook event is written in the transaction of the change it reports (an outbox),
then fanned out by the worker to one delivery per subscribed endpoint; every attempt
of a delivery is kept for the endpoint's delivery log.
"""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.models.base import Base, TenantScoped, UTCDateTime, str_enum


class TokenAccess(enum.StrEnum):
    READ = "read"
    WRITE = "write"


class ApiToken(TenantScoped, Base):
    """A named secret for the API; it acts with the walls of its member's seat."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # The secret is shown once; only its SHA-256 is kept (it has 256 bits of entropy).
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hint: Mapped[str] = mapped_column(sa.String(16))  # its first characters, to tell tokens apart
    access: Mapped[TokenAccess] = mapped_column(str_enum(TokenAccess, 8))
    membership_id: Mapped[int] = mapped_column(
        sa.ForeignKey("membership.id", ondelete="CASCADE"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    membership: Mapped["Membership"] = relationship()  # noqa: F821


class IdempotencyKey(TenantScoped, Base):
    """The answer to a create sent with an ``Idempotency-Key``: a repeat gets it again."""

    __tablename__ = "idempotency_key"
    __table_args__ = (sa.UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("api_token.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))  # method, path and body
    status: Mapped[int] = mapped_column()
    body: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    location: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)


class WebhookEndpoint(TenantScoped, Base):
    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    events: Mapped[list] = mapped_column(sa.JSON, default=list)
    secret: Mapped[str] = mapped_column(sa.String(100))
    # After a rotation the old secret signs too, until it expires (24 hours).
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Whose walls the payloads keep to (an owner's seat).
    membership_id: Mapped[int] = mapped_column(sa.ForeignKey("membership.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(32))
    # Every attempt since this moment failed (empty after a success).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    membership: Mapped["Membership"] = relationship()  # noqa: F821


class EventStatus(enum.StrEnum):
    PENDING = "pending"  # written; not yet fanned out to endpoints
    DONE = "done"


class WebhookEvent(TenantScoped, Base):
    """Something that happened, recorded with the change; the worker builds its payload."""

    __tablename__ = "webhook_event"
    __table_args__ = (sa.Index("ix_webhook_event_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(40))
    # What the event is about: "lead:12", "conflict:3"... deliveries keep its order.
    resource: Mapped[str] = mapped_column(sa.String(64))
    subject_id: Mapped[int] = mapped_column()
    lead_id: Mapped[int | None] = mapped_column()
    # A key that makes a periodic event (an overdue touch) happen once.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    status: Mapped[EventStatus] = mapped_column(
        str_enum(EventStatus, 16), default=EventStatus.PENDING
    )
    payload: Mapped[dict | None] = mapped_column(sa.JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"  # retries ran out (or the endpoint was disabled)


class WebhookDelivery(TenantScoped, Base):
    """One event to one endpoint: retried with backoff until it is answered 2xx."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index("ix_webhook_delivery_status_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_delivery_endpoint_resource", "endpoint_id", "resource", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_event.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, 16), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(TenantScoped, Base):
    """One try of a delivery, for the endpoint's log."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_webhook_attempt_endpoint_at", "endpoint_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    response_status: Mapped[int | None] = mapped_column()
    response_excerpt: Mapped[str | None] = mapped_column(sa.String(500))
    error: Mapped[str | None] = mapped_column(sa.String(500))
    milliseconds: Mapped[int] = mapped_column(default=0)
