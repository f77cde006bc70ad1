"""Stripe webhook events: verified on the raw body, stored once, processed once by the worker.

Stripe delivers at least once and in no particular order. The event id is unique in
``stripe_event``, so a repeat is answered without side effects; a subscription event
older than the state we hold is skipped, and on a tie (the same second) the current
subscription is fetched from Stripe instead of trusting either payload.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import stripe
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app import clock
from app.billing import notices
from app.billing.access import Access, access_for
from app.billing.services import ENDED_STATUSES, plan_for_price, run_later, seats_in_use
from app.billing.stripe_client import get_client
from app.extensions import db
from app.models import NoticeKind, StripeEvent, Subscription
from app.tenancy import ALL_TENANTS

TOLERANCE_SECONDS = 300
SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
}


class BadEvent(ValueError):
    """The post is not a genuine, fresh, readable Stripe event."""


@dataclass
class Received:
    event: StripeEvent
    new: bool


@dataclass
class Followups:
    """Work to hand to the worker once the processing transaction has committed."""

    owed_notices: list = field(default_factory=list)
    seat_sync_for: int | None = None

    def enqueue_all(self) -> None:
        notices.send_later(self.owed_notices)
        if self.seat_sync_for is not None:
            run_later("sync_seats", self.seat_sync_for)


def verify(payload: bytes, signature: str | None) -> dict:
    """The event in ``payload`` once its signature and timestamp check out."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
        data = json.loads(payload)
    except stripe.SignatureVerificationError as error:
        raise BadEvent("missing, bad or stale signature") from error
    except (ValueError, TypeError, AttributeError) as error:
        raise BadEvent("the body is not a Stripe event") from error
    if not _looks_like_an_event(data):
        raise BadEvent("the body is not a Stripe event")
    return data


def _looks_like_an_event(data) -> bool:
    """An id, a type, a creation time and an object: what processing relies on."""
    if not isinstance(data, dict):
        return False
    inner = data.get("data")
    return (
        isinstance(data.get("id"), str)
        and isinstance(data.get("type"), str)
        and isinstance(data.get("created"), int)
        and isinstance(inner, dict)
        and isinstance(inner.get("object"), dict)
    )


def receive(payload: bytes, signature: str | None) -> Received:
    """Verify and store an event, then queue its processing. Commits."""
    data = verify(payload, signature)
    existing = _stored(data["id"])
    if existing is None:
        row = StripeEvent(
            stripe_id=data["id"][:255],
            type=data["type"][:100],
            stripe_created_at=datetime.fromtimestamp(data["created"], UTC),
            payload=data,
        )
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            # The same event delivered twice at once: the other request stored it.
            db.session.rollback()
            existing = _stored(data["id"])
        else:
            run_later("process_event", row.id)
            return Received(row, new=True)
    if existing.processed_at is None:
        # Stored but not processed (the worker failed): this delivery retries it.
        run_later("process_event", existing.id)
    return Received(existing, new=False)


def stuck(older_than: timedelta) -> list[int]:
    """Events stored but still unprocessed after ``older_than`` (every retry failed)."""
    return list(
        db.session.scalars(
            sa.select(StripeEvent.id).where(
                StripeEvent.processed_at.is_(None),
                StripeEvent.received_at < clock.now() - older_than,
            )
        )
    )


def _stored(stripe_id: str) -> StripeEvent | None:
    return db.session.scalar(sa.select(StripeEvent).where(StripeEvent.stripe_id == stripe_id))


def process(event_id: int) -> str:
    """Apply one stored event (once: later runs find it processed). Commits."""
    row = db.session.scalar(
        sa.select(StripeEvent).where(StripeEvent.id == event_id).with_for_update()
    )
    if row is None or row.processed_at is not None:
        db.session.rollback()
        return "skipped"
    followups = Followups()
    handler = HANDLERS.get(row.type)
    row.outcome = handler(row, followups) if handler else "ignored"
    row.processed_at = clock.now()
    db.session.commit()
    followups.enqueue_all()
    return row.outcome


def _find_subscription(obj: dict, customer: str | None) -> Subscription | None:
    """The workspace an object is about: by subscription, then customer, then metadata."""
    conditions = []
    if obj.get("object") == "subscription":
        conditions.append(Subscription.stripe_subscription_id == obj.get("id"))
    if customer:
        conditions.append(Subscription.stripe_customer_id == customer)
    tenant_id = (obj.get("metadata") or {}).get("tenant_id") or obj.get("client_reference_id")
    if str(tenant_id or "").isdigit():
        conditions.append(Subscription.tenant_id == int(tenant_id))
    for condition in conditions:
        found = db.session.scalar(
            sa.select(Subscription).where(condition).execution_options(**ALL_TENANTS)
        )
        if found is not None:
            return found
    return None


def _fetch_subscription(subscription_id: str) -> dict:
    """The subscription as Stripe has it now."""
    return get_client().v1.subscriptions.retrieve(subscription_id).to_dict()


def _subscription_changed(row: StripeEvent, followups: Followups) -> str:
    obj = row.payload["data"]["object"]
    subscription = _find_subscription(obj, obj.get("customer"))
    if subscription is None:
        return "unknown_workspace"
    row.tenant_id = subscription.tenant_id
    if subscription.stripe_subscription_id not in (None, obj["id"]):
        # News about another subscription: an ended old one never replaces the current
        # one; a live new one replaces an ended one (subscribed again after canceling).
        if obj.get("status") in ENDED_STATUSES or subscription.has_stripe_subscription:
            return "other_subscription"
    elif subscription.stripe_state_at is not None:
        if row.stripe_created_at < subscription.stripe_state_at:
            return "stale"
        if row.stripe_created_at == subscription.stripe_state_at:
            # Same second: the payloads cannot be ordered, Stripe's current state can.
            obj = _fetch_subscription(obj["id"])
    _apply(subscription, obj, row.stripe_created_at, followups)
    return "applied"


def _checkout_completed(row: StripeEvent, followups: Followups) -> str:
    session = row.payload["data"]["object"]
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return "ignored"
    subscription = _find_subscription(session, session.get("customer"))
    if subscription is None:
        return "unknown_workspace"
    row.tenant_id = subscription.tenant_id
    if subscription.has_stripe_subscription and (
        subscription.stripe_subscription_id != session["subscription"]
    ):
        return "other_subscription"
    subscription.stripe_customer_id = subscription.stripe_customer_id or session.get("customer")
    # The person has just paid: fetch the subscription rather than wait for its events.
    _apply(
        subscription, _fetch_subscription(session["subscription"]), row.stripe_created_at, followups
    )
    return "applied"


def _payment_failed(row: StripeEvent, followups: Followups) -> str:
    invoice = row.payload["data"]["object"]
    subscription = _find_subscription(invoice, invoice.get("customer"))
    if subscription is None:
        return "unknown_workspace"
    row.tenant_id = subscription.tenant_id
    key = f"payment_failed:{invoice.get('id')}:{invoice.get('attempt_count', 0)}"
    data = {
        "amount_due": invoice.get("amount_due") or 0,
        "currency": (invoice.get("currency") or "usd").upper(),
        "next_attempt": invoice.get("next_payment_attempt"),
    }
    notice = notices.record_notice(subscription.tenant_id, NoticeKind.PAYMENT_FAILED, key, data)
    if notice is not None:
        followups.owed_notices.append(notice)
    return "notified"


def _apply(subscription: Subscription, obj: dict, created: datetime, followups: Followups):
    """Take Stripe's subscription object as the workspace's state."""
    before = access_for(subscription)
    item = ((obj.get("items") or {}).get("data") or [None])[0] or {}
    subscription.stripe_subscription_id = obj["id"]
    subscription.stripe_customer_id = subscription.stripe_customer_id or obj.get("customer")
    subscription.status = str(obj.get("status") or subscription.status)[:32]
    subscription.stripe_item_id = item.get("id") or subscription.stripe_item_id
    subscription.seats = item.get("quantity") or subscription.seats
    subscription.plan = plan_for_price((item.get("price") or {}).get("id"))
    # Newer API versions keep the period on the item; older ones on the subscription.
    period_end = item.get("current_period_end") or obj.get("current_period_end")
    subscription.current_period_end = (
        datetime.fromtimestamp(period_end, UTC) if period_end else None
    )
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    subscription.stripe_state_at = max(created, subscription.stripe_state_at or created)
    if access_for(subscription) == Access.READ_ONLY and before != Access.READ_ONLY:
        stamp = int(subscription.stripe_state_at.timestamp())
        notice = notices.record_notice(
            subscription.tenant_id,
            NoticeKind.ACCESS_RESTRICTED,
            f"restricted:{subscription.tenant_id}:{obj['id']}:{stamp}",
            {"reason": subscription.status},
        )
        if notice is not None:
            followups.owed_notices.append(notice)
    if (
        subscription.has_stripe_subscription
        and subscription.stripe_item_id
        and subscription.seats != seats_in_use(subscription.tenant_id)
    ):
        followups.seat_sync_for = subscription.tenant_id


HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "invoice.payment_failed": _payment_failed,
    **{kind: _subscription_changed for kind in SUBSCRIPTION_EVENTS},
}
