"""The moment a verdict pushes a source across its thresholds, the owner is told.

One alert per crossing: a source is disarmed when it alerts and re-armed only
once its last N judged leads are back within the thresholds.
"""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _

from app import clock
from app.auth.services import preferred_locale
from app.extensions import db
from app.mail import external_url
from app.models import (
    Conflict,
    ConflictKind,
    Lead,
    LostReason,
    Notification,
    Source,
    Tenant,
)
from app.models.tenant import WINDOW_DAYS
from app.policy import members_who
from app.queue import enqueue
from app.tenancy import ALL_TENANTS

# A minimum sample, then the share. The junk share counts from a source's 5th verdict:
# a partner paid per lead who sends junk is caught by its 5th judged lead, while a
# healthy source with an occasional junk lead stays under the 40% default. The qualified
# share counts from the 10th: a healthy source often qualifies none of its first five.
JUNK_MIN_JUDGED = 5
QUALIFIED_MIN_JUDGED = 10
# A window in days never reads more than this many verdicts.
DAYS_WINDOW_CAP = 10_000


@dataclass
class Quality:
    judged: int
    junk_share: float
    qualified_share: float


@dataclass
class Standing:
    """How close a source is to its limits, as its owner sees it."""

    quality: Quality
    junk_max: int
    qualified_min: int
    junk_judged: bool  # enough verdicts to judge the junk share
    qualified_judged: bool

    @property
    def junk_breached(self) -> bool:
        return self.junk_judged and self.quality.junk_share * 100 > self.junk_max

    @property
    def qualified_breached(self) -> bool:
        return self.qualified_judged and self.quality.qualified_share * 100 < self.qualified_min

    @property
    def breached(self) -> bool:
        return self.junk_breached or self.qualified_breached

    @property
    def judged(self) -> bool:
        return self.junk_judged

    @property
    def verdicts_to_go(self) -> int:
        """Verdicts still needed before the source is judged at all."""
        return max(0, JUNK_MIN_JUDGED - self.quality.judged)


def thresholds(source: Source, tenant: Tenant) -> tuple[int, int]:
    junk = source.junk_share_max if source.junk_share_max is not None else tenant.junk_share_max
    qualified = (
        source.qualified_share_min
        if source.qualified_share_min is not None
        else tenant.qualified_share_min
    )
    return junk, qualified


def recent_quality(source: Source, tenant: Tenant) -> Quality:
    """Shares over the source's window: its last N judged leads (qualified or lost), or
    every lead judged in its last D days when the workspace counts in days."""
    judged_at = sa.func.coalesce(Lead.qualified_at, Lead.closed_at)
    query = (
        sa.select(Lead.qualified_at.is_not(None), Lead.lost_reason)
        .where(
            Lead.tenant_id == source.tenant_id,
            Lead.source_id == source.id,
            sa.or_(Lead.qualified_at.is_not(None), Lead.lost_reason.is_not(None)),
        )
        .order_by(judged_at.desc(), Lead.id.desc())
        .execution_options(**ALL_TENANTS)
    )
    if tenant.quality_window_mode == WINDOW_DAYS:
        since = clock.now() - timedelta(days=tenant.quality_window_days)
        query = query.where(judged_at >= since).limit(DAYS_WINDOW_CAP)
    else:
        query = query.limit(tenant.quality_window)
    rows = db.session.execute(query).all()
    judged = len(rows)
    if not judged:
        return Quality(0, 0.0, 0.0)
    junk = sum(1 for _, reason in rows if reason == LostReason.JUNK.value)
    qualified = sum(1 for was_qualified, _ in rows if was_qualified)
    return Quality(judged, junk / judged, qualified / judged)


def standing(source: Source, tenant: Tenant) -> Standing:
    """The source's shares over its window next to its limits."""
    quality = recent_quality(source, tenant)
    junk_max, qualified_min = thresholds(source, tenant)
    qualified_needs = QUALIFIED_MIN_JUDGED
    if tenant.quality_window_mode != WINDOW_DAYS:
        qualified_needs = min(qualified_needs, tenant.quality_window)
    return Standing(
        quality,
        junk_max,
        qualified_min,
        junk_judged=quality.judged >= JUNK_MIN_JUDGED,
        qualified_judged=quality.judged >= qualified_needs,
    )


def after_verdict(lead: Lead) -> Conflict | None:
    """Check the lead's source right after a verdict; record an alert when it crosses."""
    if lead.source_id is None:
        return None
    source = db.session.get(Source, lead.source_id)
    tenant = db.session.get(Tenant, lead.tenant_id)
    db.session.flush()
    now = standing(source, tenant)
    if not now.judged:
        return None
    quality, junk_max, qualified_min = now.quality, now.junk_max, now.qualified_min
    if not now.breached:
        source.alert_armed = True
        return None
    if not source.alert_armed:
        return None
    source.alert_armed = False
    conflict = Conflict(
        tenant_id=tenant.id,
        kind=ConflictKind.SOURCE_QUALITY,
        source_id=source.id,
        lead_id=lead.id,
        details={
            "source": source.name,
            "judged": quality.judged,
            "days": tenant.quality_window_days
            if tenant.quality_window_mode == WINDOW_DAYS
            else None,
            "junk_share": round(quality.junk_share * 100),
            "junk_max": junk_max,
            "qualified_share": round(quality.qualified_share * 100),
            "qualified_min": qualified_min,
        },
    )
    db.session.add(conflict)
    db.session.flush()
    link = external_url("radar.conflict", conflict_id=conflict.id)
    for owner in members_who(tenant.id, "alerts.receive"):
        with force_locale(preferred_locale(owner.user)):
            text = _("Lead quality dropped at %(source)s.", source=source.name)
        db.session.add(
            Notification(tenant_id=tenant.id, user_id=owner.user_id, text=text, link=link)
        )
    return conflict


def email_owners_after_commit(conflict: Conflict | None) -> None:
    """The email goes through the worker once the alert is committed."""
    if conflict is not None:
        enqueue("app.tasks.radar.send_quality_alert", conflict.tenant_id, conflict.id)
