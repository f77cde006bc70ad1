"""The closer's morning queue: up to N deals, the ±3-day decision window first; and the
touches a member planned for today at their time, overdue ones first."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Lead, Membership, Phase, Stage, Tenant
from app.policy import leads_visible_to

WINDOW_DAYS = 3
PLANNED_SHOWN = 50


def queue(tenant: Tenant, membership: Membership, today: date) -> list[Lead]:
    """The member's open conversion deals: in the decision window, then by date, then age."""
    in_window = sa.and_(
        Lead.decision_date >= today - timedelta(days=WINDOW_DAYS),
        Lead.decision_date <= today + timedelta(days=WINDOW_DAYS),
    )
    return list(
        db.session.scalars(
            sa.select(Lead)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                leads_visible_to(membership),
                Lead.owner_id == membership.user_id,
                Stage.phase == Phase.CONVERSION,
                Stage.is_won.is_(False),
                Stage.is_lost.is_(False),
            )
            .options(joinedload(Lead.contact), joinedload(Lead.source))
            .order_by(
                sa.case((in_window, 0), else_=1),
                Lead.decision_date.is_(None),
                Lead.decision_date,
                Lead.created_at,
                Lead.id,
            )
            .limit(tenant.queue_size)
        ).unique()
    )


def in_window(lead: Lead, today: date) -> bool:
    return bool(lead.decision_date) and abs((lead.decision_date - today).days) <= WINDOW_DAYS


@dataclass
class PlannedTouch:
    lead: Lead
    at: datetime
    overdue: bool


def planned_touches(tenant: Tenant, membership: Membership, now: datetime) -> list[PlannedTouch]:
    """The member's planned touches due by the end of the workspace's today, earliest
    first: a plan not yet logged (logging clears it) is overdue once its time passed."""
    zone = ZoneInfo(tenant.timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    leads = db.session.scalars(
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            leads_visible_to(membership),
            Lead.owner_id == membership.user_id,
            Stage.is_lost.is_(False),
            Lead.touch_scheduled_at < datetime.combine(tomorrow, time(), zone),
        )
        .options(joinedload(Lead.contact))
        .order_by(Lead.touch_scheduled_at, Lead.id)
        .limit(PLANNED_SHOWN)
    ).unique()
    return [
        PlannedTouch(lead, lead.touch_scheduled_at, lead.touch_scheduled_at < now) for lead in leads
    ]
