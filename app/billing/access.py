"""What a workspace may do in each billing state, and the guard that enforces it.

Trialing and active: everything. Past due: everything, with a banner to the owner.
Incomplete (the first payment is still being confirmed): everything, as in the trial.
Unpaid, canceled, expired before paying, paused, or a trial that ended unpaid: read
only — people sign in, look, export and pay; every other change is refused, while
lead intake keeps storing leads (flagged). With billing off, everything, always.
"""

import enum
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import flash, g, has_request_context, make_response, redirect, request, url_for
from flask_babel import gettext as _

from app import clock
from app.billing.stripe_client import billing_enabled
from app.extensions import db
from app.htmx import is_htmx_request, local_path_or
from app.models import Subscription, SubscriptionStatus
from app.policy import can
from app.tenancy import ALL_TENANTS


class Access(enum.StrEnum):
    FULL = "full"
    PAST_DUE = "past_due"
    PENDING = "pending"
    READ_ONLY = "read_only"


READ_ONLY_STATUSES = frozenset(
    {
        SubscriptionStatus.UNPAID,
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.INCOMPLETE_EXPIRED,
        SubscriptionStatus.PAUSED,
    }
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing in and out, one's own account, paying, switching away, and what outsiders
# post (leads, one-click unsubscribes) work in a read-only workspace too.
# The API refuses writes itself, by the workspace of the token (app/api/auth.py).
OPEN_BLUEPRINTS = frozenset({"auth", "billing", "api"})
OPEN_ENDPOINTS = frozenset(
    {
        "intake.receive",
        "intake.hosted_form",
        "workspace.switch",
        "engine.unsubscribe_now",
        "static",
    }
)


def trial_ended(subscription: Subscription, now: datetime | None = None) -> bool:
    """Our own trial (no Stripe subscription yet) is over."""
    return (
        subscription.stripe_subscription_id is None
        and subscription.status == SubscriptionStatus.TRIALING
        and subscription.trial_ends_at <= (now or clock.now())
    )


def access_for(subscription: Subscription | None, now: datetime | None = None) -> Access:
    """The access a subscription state gives (billing being on)."""
    if subscription is None:
        return Access.FULL
    if subscription.status in READ_ONLY_STATUSES or trial_ended(subscription, now):
        return Access.READ_ONLY
    if subscription.status == SubscriptionStatus.PAST_DUE:
        return Access.PAST_DUE
    if subscription.status == SubscriptionStatus.INCOMPLETE:
        return Access.PENDING
    return Access.FULL


def subscription_of(tenant_id: int) -> Subscription | None:
    """The workspace's subscription row (created with the workspace)."""
    return db.session.scalar(
        sa.select(Subscription)
        .where(Subscription.tenant_id == tenant_id)
        .execution_options(**ALL_TENANTS)
    )


def workspace_access(tenant_id: int) -> Access:
    """The workspace's access now; full whenever billing is off."""
    if not billing_enabled():
        return Access.FULL
    if has_request_context() and g.get("tenant_id") == tenant_id:
        # Asked by the guard, the banner and intake within one request: one query.
        if g.get("billing_access") is None:
            g.billing_access = access_for(subscription_of(tenant_id))
        return g.billing_access
    return access_for(subscription_of(tenant_id))


def is_read_only(tenant_id: int) -> bool:
    return workspace_access(tenant_id) == Access.READ_ONLY


def billing_banner() -> str | None:
    """Which billing banner the current member sees: "read_only", "past_due" or None."""
    tenant_id = g.get("tenant_id")
    if tenant_id is None or not billing_enabled():
        return None
    access = workspace_access(tenant_id)
    if access == Access.READ_ONLY:
        return "read_only"
    if access == Access.PAST_DUE and can("billing.manage"):
        return "past_due"
    return None


def refuse_writes_when_read_only():
    """Before each request: in a read-only workspace, refuse every change but the open ones."""
    if (
        request.method in SAFE_METHODS
        or request.endpoint is None  # no such page: let routing answer 404/405
        or request.blueprint in OPEN_BLUEPRINTS
        or request.endpoint in OPEN_ENDPOINTS
    ):
        return None
    tenant_id = g.get("tenant_id")
    if tenant_id is None or not is_read_only(tenant_id):
        return None
    message = _(
        "This workspace is read-only until its subscription is paid. You can still see and "
        "export your data; the owner can pay on the Billing page."
    )
    flash(message, "error")
    if is_htmx_request():
        # Reload the page: a half-applied change (a dragged card) snaps back, and the
        # message shows where the person is.
        response = make_response(message, 402)
        response.headers["HX-Refresh"] = "true"
        return response
    return redirect(_page_they_came_from(), 303)


def _page_they_came_from() -> str:
    """The referring page on this site, else home."""
    referrer = urlsplit(request.referrer or "")
    same_site = referrer.netloc == request.host
    target = referrer.path + (f"?{referrer.query}" if referrer.query else "") if same_site else ""
    return local_path_or(url_for("main.dashboard"), target)
