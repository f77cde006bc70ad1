"""Billing: each workspace's subscription, the Stripe events received, and billing emails.

Stripe is the record of money; these rows are the workspace's view of it, kept in
step by signed webhook events that may arrive twice and out of order.
"""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.models.base import Base, TenantScoped, UTCDateTime, str_enum


class SubscriptionStatus(enum.StrEnum):
    """Stripe's subscription statuses; ``trialing`` without a Stripe subscription is our trial."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


class NoticeKind(enum.StrEnum):
    TRIAL_ENDING = "trial_ending"
    PAYMENT_FAILED = "payment_failed"
    ACCESS_RESTRICTED = "access_restricted"


class Subscription(TenantScoped, Base):
    """One per workspace: created with the workspace's trial, linked to Stripe on upgrade."""

    __tablename__ = "subscription"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Plain text, not an enum column: Stripe may add statuses, and a new one must not
    # make the webhook fail. Known values are SubscriptionStatus.
    status: Mapped[str] = mapped_column(sa.String(32), default=SubscriptionStatus.TRIALING.value)
    plan: Mapped[str | None] = mapped_column(sa.String(32))
    trial_ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_item_id: Mapped[str | None] = mapped_column(sa.String(255))
    # The quantity Stripe bills for; ``seats_version`` counts our changes to it and
    # names the idempotency key of the next one.
    seats: Mapped[int] = mapped_column(default=0)
    seats_version: Mapped[int] = mapped_column(default=0)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    # When Stripe created the event whose state we hold: an older event never wins.
    stripe_state_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=clock.now, onupdate=clock.now
    )

    @property
    def has_stripe_subscription(self) -> bool:
        """A Stripe subscription that still bills (not ended nor expired before paying)."""
        return self.stripe_subscription_id is not None and self.status not in (
            SubscriptionStatus.CANCELED,
            SubscriptionStatus.INCOMPLETE_EXPIRED,
        )


class StripeEvent(Base):
    """Each webhook event once, stored before it is processed (by the worker).

    Not tenant-owned: Stripe sends events for the whole account; ``tenant_id`` is
    filled in when processing finds the workspace.
    """

    __tablename__ = "stripe_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    stripe_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict] = mapped_column(sa.JSON)
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenant.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(sa.String(64))


class BillingNotice(TenantScoped, Base):
    """A billing email owed to the owners, once per unique key (the record of "sent")."""

    __tablename__ = "billing_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    unique_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind, 32))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
