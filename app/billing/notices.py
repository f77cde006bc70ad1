"""Billing emails to the owners: recorded once under a unique key, sent by the worker."""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app import clock
from app.billing.services import run_later
from app.billing.stripe_client import billing_enabled
from app.extensions import db
from app.models import (
    BillingNotice,
    NoticeKind,
    Subscription,
    SubscriptionStatus,
)
from app.policy import members_who
from app.tenancy import ALL_TENANTS

TRIAL_WARNING = timedelta(days=3)


def record_notice(tenant_id: int, kind: NoticeKind, key: str, data: dict) -> BillingNotice | None:
    """Owe the owners one email under ``key``; None when it was owed (or sent) before."""
    savepoint = db.session.begin_nested()
    notice = BillingNotice(tenant_id=tenant_id, kind=kind, unique_key=key[:200], data=data)
    db.session.add(notice)
    try:
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        return None
    return notice


def send_later(notices: list[BillingNotice]) -> None:
    """After the commit that recorded them: have the worker send each notice."""
    for notice in notices:
        run_later("send_notice", notice.tenant_id, notice.id)


def claim(notice: BillingNotice) -> bool:
    """Mark the notice as being sent; False when another run has it. Commits."""
    claimed = db.session.execute(
        sa.update(BillingNotice)
        .where(BillingNotice.id == notice.id, BillingNotice.sent_at.is_(None))
        .values(sent_at=clock.now())
    ).rowcount
    db.session.commit()
    return bool(claimed)


def release(notice: BillingNotice) -> None:
    """Sending failed: let the job's retry send it again. Commits."""
    db.session.rollback()
    db.session.execute(
        sa.update(BillingNotice).where(BillingNotice.id == notice.id).values(sent_at=None)
    )
    db.session.commit()


def owners(tenant_id: int) -> list:
    """The workspace's active owners (users), who receive billing emails."""
    return [membership.user for membership in members_who(tenant_id, "alerts.receive")]


def check_trials(now: datetime | None = None) -> int:
    """The daily check: warn owners 3 days before the trial ends, and when it has ended.

    Unique keys name the trial's end date, so running it again (or twice at once)
    sends nothing twice. Returns how many notices it recorded. Commits.
    """
    if not billing_enabled():
        return 0
    now = now or clock.now()
    trials = db.session.scalars(
        sa.select(Subscription)
        .where(
            Subscription.stripe_subscription_id.is_(None),
            Subscription.status == SubscriptionStatus.TRIALING,
            Subscription.trial_ends_at <= now + TRIAL_WARNING,
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    recorded = []
    for subscription in trials:
        ends = subscription.trial_ends_at
        data = {"trial_ends_at": ends.isoformat()}
        if ends > now:
            kind, key = NoticeKind.TRIAL_ENDING, f"trial_ending:{subscription.tenant_id}"
        else:
            kind, key = NoticeKind.ACCESS_RESTRICTED, f"trial_ended:{subscription.tenant_id}"
            data["reason"] = "trial_ended"
        notice = record_notice(subscription.tenant_id, kind, f"{key}:{ends.date()}", data)
        if notice is not None:
            recorded.append(notice)
    db.session.commit()
    send_later(recorded)
    return len(recorded)
