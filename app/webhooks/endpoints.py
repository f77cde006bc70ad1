"""The owner's webhook endpoints: add, change, rotate the secret, redeliver, re-enable."""

from datetime import timedelta

import sqlalchemy as sa
from flask_babel import force_locale

from app import clock
from app.extensions import db
from app.mail import external_url, send_email
from app.models import (
    DeliveryStatus,
    Membership,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.tenancy import ALL_TENANTS
from app.webhooks import addresses, signing
from app.webhooks.events import EVENT_TYPES

ROTATION_OVERLAP = timedelta(hours=24)
LOG_LENGTH = 50


def _checked(url: str, events: list[str]) -> tuple[str, list[str]]:
    url = url.strip()
    addresses.resolve(url)  # refuses private, local and reserved addresses
    return url, [name for name in EVENT_TYPES if name in events]


def create_endpoint(
    tenant: Tenant, membership: Membership, url: str, description: str, events: list[str]
) -> WebhookEndpoint:
    url, events = _checked(url, events)
    endpoint = WebhookEndpoint(
        tenant_id=tenant.id,
        url=url,
        description=(description or "").strip()[:200],
        events=events,
        secret=signing.new_secret(),
        membership_id=membership.id,
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def update_endpoint(endpoint: WebhookEndpoint, url: str, description: str, events: list[str]):
    endpoint.url, endpoint.events = _checked(url, events)
    endpoint.description = (description or "").strip()[:200]
    db.session.commit()


def rotate_secret(endpoint: WebhookEndpoint) -> None:
    """A new secret; the old one keeps signing too for 24 hours."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = clock.now() + ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    db.session.commit()


def previous_secret_in_force(endpoint: WebhookEndpoint) -> bool:
    expires = endpoint.previous_secret_expires_at
    return bool(endpoint.previous_secret and expires and expires > clock.now())


def set_enabled(endpoint: WebhookEndpoint, enabled: bool) -> None:
    endpoint.enabled = enabled
    endpoint.disabled_at = None if enabled else clock.now()
    endpoint.disabled_reason = None if enabled else "owner"
    endpoint.failing_since = None
    db.session.commit()


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    db.session.delete(endpoint)
    db.session.commit()


def redeliver(delivery: WebhookDelivery) -> None:
    """Send again now, with the same webhook-id (a receiver that has it drops it)."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = clock.now()
    delivery.claimed_at = None
    db.session.commit()


def endpoints_of(tenant: Tenant) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(
            sa.select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant.id)
            .order_by(WebhookEndpoint.id)
        )
    )


def delivery_log(endpoint: WebhookEndpoint) -> list[tuple[WebhookDelivery, WebhookAttempt | None]]:
    """The latest deliveries, newest first, each with its last attempt."""
    deliveries = list(
        db.session.scalars(
            sa.select(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == endpoint.tenant_id,
                WebhookDelivery.endpoint_id == endpoint.id,
            )
            .options(sa.orm.joinedload(WebhookDelivery.event))
            .order_by(WebhookDelivery.id.desc())
            .limit(LOG_LENGTH)
        )
    )
    last = {}
    if deliveries:
        for attempt in db.session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.id)
        ):
            last[attempt.delivery_id] = attempt
    return [(delivery, last.get(delivery.id)) for delivery in deliveries]


def tell_owner_disabled(endpoint_id: int) -> None:
    """Email the owner whose endpoint was disabled after failing for days (in the worker)."""
    endpoint = db.session.scalar(
        sa.select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .execution_options(**ALL_TENANTS)
    )
    user = endpoint.membership.user
    tenant = db.session.get(Tenant, endpoint.tenant_id)
    locale = user.locale or tenant.language
    with force_locale(locale):
        link = external_url("integrations.endpoint", endpoint_id=endpoint.id)
    send_email(
        user.email,
        "webhook_disabled",
        locale,
        user=user,
        tenant=tenant,
        endpoint=endpoint,
        link=link,
    )
