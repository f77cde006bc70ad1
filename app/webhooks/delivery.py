"""The worker's side: fan events out to endpoints, send what is due, retry with backoff.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and a compare-and-set, so several
workers share the work and never send one delivery at once; a delivery left "sending"
by a killed worker is taken again once its claim is stale, with the same
``webhook-id``, so the receiver can drop the duplicate. Per endpoint, the events of
one resource (a lead, a source) go out in order: a delivery waits while an earlier one
of the same resource is still pending.
"""

import json
import time
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa
from flask import current_app

from app import clock
from app.api import ids
from app.claims import claim_rows
from app.extensions import db
from app.models import (
    DeliveryStatus,
    EventStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.tenancy import ALL_TENANTS
from app.webhooks import addresses, payloads, signing, transport

# Pauses before each retry (Standard Webhooks' schedule, stretched to three days).
BACKOFF = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000, 86400, 86400)
)
DISABLE_AFTER = timedelta(days=3)  # every attempt failing this long disables the endpoint
STALE_CLAIM = timedelta(minutes=2)  # a claim older than this was a worker that died
BATCH = 100
EXCERPT = 500
ADDRESS_REFUSED = "address_refused"


def message_id(event_id: int) -> str:
    return "msg_" + ids.encode("event", event_id).removeprefix("event_")


# --- Fan-out ---------------------------------------------------------------------------------


def fan_out(limit: int = 500) -> int:
    """Turn pending events into deliveries for each endpoint that wants and may see them."""
    events = db.session.scalars(
        sa.select(WebhookEvent)
        .where(WebhookEvent.status == EventStatus.PENDING)
        .order_by(WebhookEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(**ALL_TENANTS)
    ).all()
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for event in events:
        if event.tenant_id not in endpoints:
            endpoints[event.tenant_id] = list(
                db.session.scalars(
                    sa.select(WebhookEndpoint)
                    .where(
                        WebhookEndpoint.tenant_id == event.tenant_id,
                        WebhookEndpoint.enabled.is_(True),
                    )
                    .execution_options(**ALL_TENANTS)
                )
            )
        event.status = EventStatus.DONE
        subscribed = [e for e in endpoints[event.tenant_id] if event.type in (e.events or ())]
        receivers = [e for e in subscribed if payloads.visible_to(e.membership, event)]
        if not receivers:
            continue
        event.payload = payloads.build(event)
        if event.payload is None:
            continue
        for endpoint in receivers:
            db.session.add(
                WebhookDelivery(
                    tenant_id=event.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    resource=event.resource,
                    next_attempt_at=event.occurred_at,
                )
            )
    db.session.commit()
    return len(events)


# --- Claiming and sending --------------------------------------------------------------------


def claim(now: datetime, limit: int = BATCH) -> list[int]:
    due = sa.or_(
        sa.and_(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        ),
        sa.and_(
            WebhookDelivery.status == DeliveryStatus.SENDING,
            WebhookDelivery.claimed_at < now - stale_claim(),
        ),
    )
    earlier = sa.orm.aliased(WebhookDelivery)
    waits_for_earlier = (
        sa.select(earlier.id)
        .where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.resource == WebhookDelivery.resource,
            earlier.event_id < WebhookDelivery.event_id,
            earlier.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
        )
        .exists()
    )
    enabled = (
        sa.select(WebhookEndpoint.id)
        .where(WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.enabled)
        .exists()
    )
    return claim_rows(
        WebhookDelivery,
        sa.and_(due, enabled, ~waits_for_earlier),
        (WebhookDelivery.event_id, WebhookDelivery.id),
        limit,
        now,
        DeliveryStatus.SENDING,
    )


def send(delivery_id: int, now: datetime) -> bool:
    """One attempt; True when the endpoint answered 2xx."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signing.headers(endpoint, message_id(event.id), body, now)
    attempt = WebhookAttempt(
        tenant_id=delivery.tenant_id, delivery_id=delivery.id, endpoint_id=endpoint.id
    )
    started = time.monotonic()
    try:
        address = addresses.resolve(endpoint.url)
        response = transport.post(endpoint.url, address, body, headers)
        try:
            attempt.response_status = response.status_code
            excerpt = response.raw.read(EXCERPT, decode_content=True) or b""
            attempt.response_excerpt = excerpt.decode("utf-8", "replace")[:EXCERPT]
        finally:
            response.close()
    except addresses.Refused:
        attempt.error = ADDRESS_REFUSED  # the log says why, in the reader's language
    except requests.RequestException as error:
        attempt.error = f"{type(error).__name__}: {error}"[:500]
    attempt.milliseconds = int((time.monotonic() - started) * 1000)
    attempt.attempted_at = now
    ok = attempt.response_status is not None and 200 <= attempt.response_status < 300
    _record(delivery, endpoint, attempt, ok, now)
    return ok


def _record(delivery, endpoint, attempt, ok: bool, now: datetime) -> None:
    db.session.add(attempt)
    delivery.attempts += 1
    delivery.claimed_at = None
    disabled_now = False
    if ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        endpoint.failing_since = None
    else:
        endpoint.failing_since = endpoint.failing_since or now
        if delivery.attempts > len(BACKOFF):
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
        if endpoint.enabled and endpoint.failing_since <= now - DISABLE_AFTER:
            endpoint.enabled = False
            endpoint.disabled_at = now
            endpoint.disabled_reason = "failing"
            disabled_now = True
    db.session.commit()
    if disabled_now:
        from app.webhooks.endpoints import tell_owner_disabled

        tell_owner_disabled(endpoint.id)


def run(now: datetime | None = None, seconds: float = 50) -> dict:
    """Fan out and send until nothing is due (or the time is up)."""
    deadline = time.monotonic() + seconds
    counts = {"events": 0, "delivered": 0, "failed": 0}
    while True:
        counts["events"] += fan_out()
        claimed = claim(now or clock.now())
        if not claimed:
            return counts
        for delivery_id in claimed:
            key = "delivered" if send(delivery_id, now or clock.now()) else "failed"
            counts[key] += 1
        if time.monotonic() > deadline:
            counts["more"] = True
            return counts


def stale_claim() -> timedelta:
    """How long a claim lasts before another worker takes the delivery over."""
    seconds = current_app.config.get("WEBHOOKS_STALE_CLAIM_SECONDS")
    return STALE_CLAIM if seconds is None else timedelta(seconds=seconds)
