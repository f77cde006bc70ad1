"""The home page's view of the conveyor and the health check."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from app.extensions import db
from app.models import Lead, Membership, Phase, Source, Stage
from app.policy import allows, clients_visible_to, leads_visible_to


@dataclass
class PhaseSummary:
    phase: Phase
    count: int
    value_minor: int


def conveyor_summary(membership: Membership, today: date) -> dict:
    """Counts per phase, limited to what the member's role may see."""
    query = (
        sa.select(
            Stage.phase, sa.func.count(Lead.id), sa.func.coalesce(sa.func.sum(Lead.value_minor), 0)
        )
        .join(Stage, Stage.id == Lead.stage_id)
        .where(leads_visible_to(membership), Stage.is_lost.is_(False))
        .group_by(Stage.phase)
    )
    rows = {
        phase: PhaseSummary(phase, count, value)
        for phase, count, value in db.session.execute(query)
    }
    clients_due = 0
    if allows(membership, "home.clients_due"):
        clients_due = db.session.scalar(
            sa.select(sa.func.count(Lead.id))
            .join(Stage, Stage.id == Lead.stage_id)
            .where(clients_visible_to(membership), Lead.next_touch_on <= today)
        )
    sources = 0
    if allows(membership, "home.sources"):
        sources = db.session.scalar(
            sa.select(sa.func.count(Source.id)).where(Source.tenant_id == membership.tenant_id)
        )
    return {
        "phases": [rows.get(p, PhaseSummary(p, 0, 0)) for p in Phase],
        "clients_due": clients_due,
        "sources": sources,
    }


def database_ok() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        db.session.rollback()
        return False
