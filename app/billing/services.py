"""Billing for a workspace: the trial, upgrading through Checkout, the portal, seats.

Prices are per seat; seats are the workspace's active members. Every call to Stripe
carries an idempotency key derived from the workspace, the purpose and a stable
counter or time bucket (see ``stripe_client.idempotency_key``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from rq import Retry

from app import clock
from app.billing.access import Access, access_for, subscription_of, trial_ended
from app.billing.stripe_client import billing_enabled, get_client, idempotency_key, time_bucket
from app.extensions import db
from app.mail import external_url
from app.models import Membership, Subscription, SubscriptionStatus, Tenant, User
from app.queue import enqueue
from app.tenancy import ALL_TENANTS

TRIAL_DAYS = 14
# Plan code -> the config key holding its per-seat Stripe price.
PLANS = {"starter": "STRIPE_PRICE_STARTER", "team": "STRIPE_PRICE_TEAM"}
PLAN_NAMES = {"starter": _l("Starter"), "team": _l("Team")}
STATUS_NAMES = {
    SubscriptionStatus.TRIALING: _l("Trial"),
    SubscriptionStatus.ACTIVE: _l("Active"),
    SubscriptionStatus.PAST_DUE: _l("Payment overdue"),
    SubscriptionStatus.UNPAID: _l("Unpaid"),
    SubscriptionStatus.CANCELED: _l("Canceled"),
    SubscriptionStatus.INCOMPLETE: _l("Awaiting the first payment"),
    SubscriptionStatus.INCOMPLETE_EXPIRED: _l("The first payment never arrived"),
    SubscriptionStatus.PAUSED: _l("Paused"),
}
# Stripe refuses a trial end closer than 48 hours; below that the trial is not carried over.
MIN_CARRIED_TRIAL = timedelta(hours=48)
CHECKOUT_WINDOW_SECONDS = 600
PORTAL_WINDOW_SECONDS = 300
CHECKOUT_LOCALES = {"en", "ru"}
ENDED_STATUSES = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)
# Stripe or the mail server may be away for a while: billing jobs try again with backoff.
JOB_RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])


class BillingError(ValueError):
    """A billing action that cannot be done now; the message is for the person."""


@dataclass
class BillingSummary:
    """What the billing page shows."""

    subscription: Subscription | None
    access: Access
    seats_in_use: int
    trial_days_left: int | None
    next_invoice_at: datetime | None
    trial_over: bool

    @property
    def can_subscribe(self) -> bool:
        return self.subscription is None or not self.subscription.has_stripe_subscription

    @property
    def can_manage(self) -> bool:
        return self.subscription is not None and self.subscription.stripe_customer_id is not None


def start_trial(tenant: Tenant) -> Subscription:
    """Give a new workspace its 14-day trial without a card (not committed)."""
    subscription = subscription_of(tenant.id)
    if subscription is None:
        subscription = Subscription(
            tenant_id=tenant.id, trial_ends_at=clock.now() + timedelta(days=TRIAL_DAYS)
        )
        db.session.add(subscription)
        db.session.flush()
    return subscription


def seats_in_use(tenant_id: int) -> int:
    """Active members: the seats a workspace pays for."""
    return db.session.scalar(
        sa.select(sa.func.count(Membership.id))
        .where(Membership.tenant_id == tenant_id, Membership.active.is_(True))
        .execution_options(**ALL_TENANTS)
    )


def summary(tenant: Tenant) -> BillingSummary:
    subscription = subscription_of(tenant.id)
    now = clock.now()
    days_left = None
    if subscription is not None and subscription.status == SubscriptionStatus.TRIALING:
        remaining = subscription.trial_ends_at - now
        days_left = max(0, remaining.days + (1 if remaining.seconds else 0))
    live = subscription is not None and subscription.has_stripe_subscription
    next_invoice = (
        subscription.current_period_end if live and not subscription.cancel_at_period_end else None
    )
    return BillingSummary(
        subscription=subscription,
        access=access_for(subscription, now),
        seats_in_use=seats_in_use(tenant.id),
        trial_days_left=days_left,
        next_invoice_at=next_invoice,
        trial_over=subscription is not None and trial_ended(subscription, now),
    )


def plan_for_price(price_id: str | None) -> str | None:
    """The plan code whose configured price is ``price_id`` (None for another price)."""
    for plan, config_key in PLANS.items():
        if price_id and current_app.config.get(config_key) == price_id:
            return plan
    return None


def _locked_subscription(tenant: Tenant) -> Subscription:
    """The workspace's row, locked while a Stripe customer may be created (PostgreSQL)."""
    subscription = db.session.scalar(
        sa.select(Subscription)
        .where(Subscription.tenant_id == tenant.id)
        .with_for_update()
        .execution_options(**ALL_TENANTS)
    )
    return subscription or start_trial(tenant)


def _ensure_customer(tenant: Tenant, actor: User) -> Subscription:
    """The workspace's one Stripe customer, created on first need and remembered. Commits."""
    subscription = _locked_subscription(tenant)
    if subscription.stripe_customer_id is None:
        customer = get_client().v1.customers.create(
            params={
                "name": tenant.name,
                "email": actor.email,
                "metadata": {"tenant_id": str(tenant.id), "workspace": tenant.slug},
            },
            # Stable for the workspace: two first clicks at once get the same customer.
            options={"idempotency_key": idempotency_key(tenant.id, "customer")},
        )
        subscription.stripe_customer_id = customer.id
    db.session.commit()
    return subscription


def start_checkout(tenant: Tenant, actor: User, plan: str, locale: str) -> str:
    """A Stripe Checkout page that subscribes the workspace to ``plan`` for its seats."""
    if not billing_enabled():
        raise BillingError(_l("Billing is off on this server."))
    if plan not in PLANS:
        raise BillingError(_l("Choose a plan."))
    current = subscription_of(tenant.id)
    if current is not None and current.has_stripe_subscription:
        raise BillingError(
            _l("This workspace already has a subscription. Manage it from the billing portal.")
        )
    subscription = _ensure_customer(tenant, actor)
    seats = max(1, seats_in_use(tenant.id))
    metadata = {"tenant_id": str(tenant.id)}
    subscription_data: dict = {"metadata": metadata}
    if subscription.trial_ends_at - clock.now() >= MIN_CARRIED_TRIAL:
        # Paying early does not shorten the trial: the first charge comes when it ends.
        subscription_data["trial_end"] = int(subscription.trial_ends_at.timestamp())
    params = {
        "mode": "subscription",
        "customer": subscription.stripe_customer_id,
        "client_reference_id": str(tenant.id),
        "line_items": [{"price": current_app.config[PLANS[plan]], "quantity": seats}],
        "metadata": metadata,
        "subscription_data": subscription_data,
        "success_url": external_url("billing.index", checkout="done"),
        "cancel_url": external_url("billing.index"),
        "locale": locale if locale in CHECKOUT_LOCALES else "auto",
    }
    session = get_client().v1.checkout.sessions.create(
        params=params,
        options={
            "idempotency_key": idempotency_key(
                tenant.id, "checkout", time_bucket(CHECKOUT_WINDOW_SECONDS), params=params
            )
        },
    )
    return session.url


def open_portal(tenant: Tenant, actor: User, locale: str) -> str:
    """The Stripe customer portal, where the owner changes the card, plan or cancels."""
    if not billing_enabled():
        raise BillingError(_l("Billing is off on this server."))
    subscription = subscription_of(tenant.id)
    if subscription is None or subscription.stripe_customer_id is None:
        raise BillingError(_l("Subscribe first; then you can manage billing here."))
    params = {
        "customer": subscription.stripe_customer_id,
        "return_url": external_url("billing.index"),
        "locale": locale if locale in CHECKOUT_LOCALES else "auto",
    }
    session = get_client().v1.billing_portal.sessions.create(
        params=params,
        options={
            "idempotency_key": idempotency_key(
                tenant.id, "portal", f"u{actor.id}", time_bucket(PORTAL_WINDOW_SECONDS)
            )
        },
    )
    return session.url


def run_later(job: str, *args) -> None:
    """Queue the billing job ``job`` (a name in ``app.tasks.billing``), with retries."""
    enqueue(f"app.tasks.billing.{job}", *args, retry=JOB_RETRY)


def seats_changed(tenant_id: int) -> None:
    """Call after committing a change to who is active: the worker updates Stripe."""
    if billing_enabled():
        run_later("sync_seats", tenant_id)


def sync_seats(tenant: Tenant) -> bool:
    """Bill for the seats in use now; True when Stripe's quantity changed. Commits."""
    subscription = db.session.scalar(
        sa.select(Subscription)
        .where(Subscription.tenant_id == tenant.id)
        .with_for_update()
        .execution_options(**ALL_TENANTS)
    )
    if (
        subscription is None
        or not subscription.has_stripe_subscription
        or subscription.stripe_item_id is None
    ):
        db.session.rollback()
        return False
    seats = max(1, seats_in_use(tenant.id))
    if seats == subscription.seats:
        db.session.rollback()
        return False
    get_client().v1.subscription_items.update(
        subscription.stripe_item_id,
        params={"quantity": seats, "proration_behavior": "create_prorations"},
        # The counter moves only after success: a retried job sends the same key.
        options={
            "idempotency_key": idempotency_key(
                tenant.id, "seats", f"v{subscription.seats_version}", f"q{seats}"
            )
        },
    )
    subscription.seats = seats
    subscription.seats_version += 1
    db.session.commit()
    return True


def drifted_seats() -> list[int]:
    """Workspaces whose billed quantity differs from their active members: a safety net
    for seats changed outside the team services (the CLI, a handover)."""
    active = (
        sa.select(Membership.tenant_id, sa.func.count(Membership.id).label("seats"))
        .where(Membership.active.is_(True))
        .group_by(Membership.tenant_id)
        .subquery()
    )
    return list(
        db.session.scalars(
            sa.select(Subscription.tenant_id)
            .join(active, active.c.tenant_id == Subscription.tenant_id)
            .where(
                Subscription.stripe_item_id.is_not(None),
                Subscription.status.not_in(ENDED_STATUSES),
                Subscription.seats != active.c.seats,
            )
            .execution_options(**ALL_TENANTS)
        )
    )
