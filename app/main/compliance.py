"""Cadence compliance: did every client get touched within their cadence?

A client counts as kept for a week when their latest touch up to the end of that
week is no older than their cadence (their own, or the workspace's). "About to
miss" lists clients whose next touch falls between today and the end of this week.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app import clock
from app.extensions import db
from app.models import Lead, Membership, Stage, Tenant, Touch
from app.policy import clients_visible_to


@dataclass
class Compliance:
    clients: int = 0
    kept_this_week: int = 0
    kept_last_week: int = 0
    about_to_miss: list[Lead] = field(default_factory=list)

    def share(self, kept: int) -> int | None:
        return round(kept * 100 / self.clients) if self.clients else None


def cadence_compliance(tenant: Tenant, membership: Membership, today: date) -> Compliance:
    zone = ZoneInfo(tenant.timezone)
    clients_query = (
        sa.select(Lead.id, Lead.cadence_days)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(clients_visible_to(membership), Lead.churned_at.is_(None))
    )
    clients = dict(db.session.execute(clients_query).all())
    result = Compliance(clients=len(clients))
    if not clients:
        return result
    week_start = today - timedelta(days=today.weekday())
    this_week_end = clock.now()
    last_week_end = datetime.combine(week_start, time(), zone).astimezone(UTC)
    for end, attribute in ((this_week_end, "kept_this_week"), (last_week_end, "kept_last_week")):
        latest = db.session.execute(
            sa.select(Touch.lead_id, sa.func.max(Touch.happened_at))
            .where(
                Touch.tenant_id == tenant.id, Touch.lead_id.in_(clients), Touch.happened_at <= end
            )
            .group_by(Touch.lead_id)
        ).all()
        kept = sum(
            1
            for lead_id, touched in latest
            if end - touched <= timedelta(days=clients[lead_id] or tenant.touch_cadence_days)
        )
        setattr(result, attribute, kept)
    result.about_to_miss = list(
        db.session.scalars(
            sa.select(Lead)
            .where(
                Lead.id.in_(clients),
                Lead.next_touch_on >= today,
                Lead.next_touch_on <= week_start + timedelta(days=6),
            )
            .options(joinedload(Lead.contact), joinedload(Lead.owner))
            .order_by(Lead.next_touch_on)
            .limit(20)
        )
    )
    return result
