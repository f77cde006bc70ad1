"""The moment a verdict pushes a source across its thresholds, the owner is told.

One alert per crossing: a source is disarmed when it alerts and re-armed only
once its last N judged leads are back within the thresholds.
"""

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _

from app.auth.services import preferred_locale
from app.extensions import db
from app.mail import external_url
from app.models import Conflict, ConflictKind, Lead, LostReason, Notification, Role, Source, Tenant
from app.queue import enqueue
from app.tenancy import ALL_TENANTS, active_members


@dataclass
class Quality:
    judged: int
    junk_share: float
    qualified_share: float


def thresholds(source: Source, tenant: Tenant) -> tuple[int, int]:
    junk = source.junk_share_max if source.junk_share_max is not None else tenant.junk_share_max
    qualified = (
        source.qualified_share_min
        if source.qualified_share_min is not None
        else tenant.qualified_share_min
    )
    return junk, qualified


def recent_quality(source: Source, window: int) -> Quality:
    """Shares over the source's last ``window`` judged leads (qualified or lost)."""
    judged_at = sa.func.coalesce(Lead.qualified_at, Lead.closed_at)
    rows = db.session.execute(
        sa.select(Lead.qualified_at.is_not(None), Lead.lost_reason)
        .where(
            Lead.tenant_id == source.tenant_id,
            Lead.source_id == source.id,
            sa.or_(Lead.qualified_at.is_not(None), Lead.lost_reason.is_not(None)),
        )
        .order_by(judged_at.desc(), Lead.id.desc())
        .limit(window)
        .execution_options(**ALL_TENANTS)
    ).all()
    judged = len(rows)
    if not judged:
        return Quality(0, 0.0, 0.0)
    junk = sum(1 for _, reason in rows if reason == LostReason.JUNK.value)
    qualified = sum(1 for was_qualified, _ in rows if was_qualified)
    return Quality(judged, junk / judged, qualified / judged)


def after_verdict(lead: Lead) -> Conflict | None:
    """Check the lead's source right after a verdict; record an alert when it crosses."""
    if lead.source_id is None:
        return None
    source = db.session.get(Source, lead.source_id)
    tenant = db.session.get(Tenant, lead.tenant_id)
    db.session.flush()
    quality = recent_quality(source, tenant.quality_window)
    if quality.judged < tenant.quality_window:
        return None
    junk_max, qualified_min = thresholds(source, tenant)
    breached = quality.junk_share * 100 > junk_max or quality.qualified_share * 100 < qualified_min
    if not breached:
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
            "junk_share": round(quality.junk_share * 100),
            "junk_max": junk_max,
            "qualified_share": round(quality.qualified_share * 100),
            "qualified_min": qualified_min,
        },
    )
    db.session.add(conflict)
    db.session.flush()
    link = external_url("radar.conflict", conflict_id=conflict.id)
    for owner in active_members(tenant.id, Role.OWNER):
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
