"""The closer's morning queue: up to N deals, the ±3-day decision window first."""

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Lead, Membership, Phase, Stage, Tenant
from app.policy import leads_visible_to

WINDOW_DAYS = 3


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
