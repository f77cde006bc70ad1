"""Billing jobs: Stripe events, seat quantities, the daily trial check, owners' emails.

Each is safe to run twice: events are processed once, seat updates compare with what
Stripe already bills, and emails are claimed under their notice's unique key.
"""

from datetime import datetime, timedelta

from app.auth.services import preferred_locale
from app.billing import events, notices, services
from app.billing.stripe_client import billing_enabled
from app.extensions import db
from app.mail import external_url, send_email
from app.models import BillingNotice
from app.tenancy import tenant_scope

# Processing is retried for about an hour and a half; later the daily check takes over.
STUCK_AFTER = timedelta(hours=2)


def process_event(event_id: int) -> str:
    """Apply one stored Stripe event."""
    return events.process(event_id)


def sync_seats(tenant_id: int) -> bool:
    """Make Stripe bill for the workspace's active members."""
    if not billing_enabled():
        return False
    with tenant_scope(tenant_id) as tenant:
        return services.sync_seats(tenant)


def check_trials() -> dict:
    """Daily: trial warnings and endings, seat quantities that drifted, stuck events."""
    if not billing_enabled():
        return {"notices": 0, "seat_syncs": 0, "events": 0}
    recorded = notices.check_trials()
    drifted = services.drifted_seats()
    for tenant_id in drifted:
        services.run_later("sync_seats", tenant_id)
    stuck = events.stuck(older_than=STUCK_AFTER)
    for event_id in stuck:
        services.run_later("process_event", event_id)
    return {"notices": recorded, "seat_syncs": len(drifted), "events": len(stuck)}


def send_notice(tenant_id: int, notice_id: int) -> bool:
    """Email one billing notice to the workspace's owners, once."""
    with tenant_scope(tenant_id) as tenant:
        notice = db.session.get(BillingNotice, notice_id)
        if notice is None or notice.tenant_id != tenant_id or not notices.claim(notice):
            return False
        try:
            for owner in notices.owners(tenant_id):
                send_email(
                    owner.email,
                    f"billing_{notice.kind.value}",
                    preferred_locale(owner),
                    tenant=tenant,
                    user=owner,
                    data=notice.data,
                    trial_ends_at=_moment(notice.data.get("trial_ends_at")),
                    link=external_url("billing.index"),
                )
        except Exception:
            notices.release(notice)
            raise
        return True


def _moment(value: str | None) -> datetime | None:
    """A stored ISO timestamp back as a datetime (for dates shown in the reader's zone)."""
    return datetime.fromisoformat(value) if value else None
