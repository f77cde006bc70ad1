"""The funnel: how many leads reach each stage, go on from it, and how long they stay.

Whatever moves a lead (the board, qualification, a win, a loss, a hand-off, the
owner sending it back), the flush that changes ``Lead.stage_id`` records the stay
that just ended as a ``StageVisit``: one place, so no path can forget it.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app import clock
from app.extensions import db
from app.models import Lead, Stage, StageVisit, Tenant, User
from app.radar.stats import count_if


@event.listens_for(Session, "before_flush")
def _record_finished_stays(session: Session, _context, _instances) -> None:
    for lead in [obj for obj in session.dirty if isinstance(obj, Lead)]:
        state = sa.inspect(lead)
        moved = state.attrs.stage_id.history
        if not moved.deleted or moved.deleted[0] in (None, lead.stage_id):
            continue
        left_at = clock.now()
        entered_at = lead.stage_entered_at or lead.created_at
        owners = state.attrs.owner_id.history
        owner_id = owners.deleted[0] if owners.deleted else lead.owner_id
        with session.no_autoflush:
            old, new = session.get(Stage, moved.deleted[0]), session.get(Stage, lead.stage_id)
        session.add(
            StageVisit(
                tenant_id=lead.tenant_id,
                lead_id=lead.id,
                stage_id=old.id,
                next_stage_id=new.id,
                owner_id=owner_id,
                forward=not new.is_lost and new.position > old.position,
                lead_created_at=lead.created_at,
                entered_at=entered_at,
                left_at=left_at,
                seconds=max(0, int((left_at - entered_at).total_seconds())),
            )
        )
        lead.stage_entered_at = left_at


@dataclass
class StageRow:
    stage: Stage
    entered: int = 0  # stays of the period's leads in this stage, finished or not
    went_on: int = 0  # ... that ended in a later stage
    median_days: float | None = None  # of the finished stays

    @property
    def conversion(self) -> float | None:
        return self.went_on / self.entered if self.entered else None


@dataclass
class PersonRow:
    name: str
    leads: int = 0  # leads of the period they hold now
    qualified: int = 0
    won: int = 0
    stays: int = 0  # finished stays of those leads in a stage while they held it
    went_on: int = 0
    median_days: float | None = None

    @property
    def conversion(self) -> float | None:
        return self.went_on / self.stays if self.stays else None


def _finished_stays(key_column, tenant: Tenant, start: datetime, end: datetime) -> dict:
    """key -> (finished stays, stays that went on, median days) for leads of [start, end).

    One statement: PostgreSQL works out the median (percentile_cont).
    """
    in_period = (
        StageVisit.tenant_id == tenant.id,
        StageVisit.lead_created_at >= start,
        StageVisit.lead_created_at < end,
    )
    went_on = count_if(StageVisit.forward)
    median = sa.func.percentile_cont(0.5).within_group(StageVisit.seconds)
    rows = db.session.execute(
        sa.select(key_column, sa.func.count(StageVisit.id), went_on, median)
        .where(*in_period)
        .group_by(key_column)
    )
    return {key: (count, forward or 0, float(mid) / 86400) for key, count, forward, mid in rows}


def by_stage(tenant: Tenant, start: datetime, end: datetime) -> list[StageRow]:
    """Every stage but the lost one, in pipeline order, for leads that arrived in [start, end)."""
    stages = db.session.scalars(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.is_lost.is_(False))
        .order_by(Stage.position)
    ).all()
    rows = {stage.id: StageRow(stage) for stage in stages}
    for stage_id, (count, went_on, median) in _finished_stays(
        StageVisit.stage_id, tenant, start, end
    ).items():
        if stage_id in rows:
            row = rows[stage_id]
            row.entered, row.went_on, row.median_days = count, went_on, median
    # Stays not finished yet: the leads still in each stage.
    current = db.session.execute(
        sa.select(Lead.stage_id, sa.func.count(Lead.id))
        .where(Lead.tenant_id == tenant.id, Lead.created_at >= start, Lead.created_at < end)
        .group_by(Lead.stage_id)
    )
    for stage_id, count in current:
        if stage_id in rows:
            rows[stage_id].entered += count
    return list(rows.values())


def by_person(tenant: Tenant, start: datetime, end: datetime) -> list[PersonRow]:
    """Per person, for leads that arrived in [start, end): the leads they hold now with
    their verdicts, and the stays that ended while they held the lead."""

    people: dict[int, PersonRow] = {}
    held = db.session.execute(
        sa.select(
            Lead.owner_id,
            sa.func.count(Lead.id),
            count_if(Lead.qualified_at.is_not(None)),
            count_if(Lead.won_at.is_not(None)),
        )
        .where(
            Lead.tenant_id == tenant.id,
            Lead.created_at >= start,
            Lead.created_at < end,
            Lead.owner_id.is_not(None),
        )
        .group_by(Lead.owner_id)
    )
    for owner_id, leads, qualified, won in held:
        people[owner_id] = PersonRow("", leads, qualified or 0, won or 0)
    for owner_id, (count, went_on, median) in _finished_stays(
        StageVisit.owner_id, tenant, start, end
    ).items():
        if owner_id is None:
            continue
        row = people.setdefault(owner_id, PersonRow(""))
        row.stays, row.went_on, row.median_days = count, went_on, median
    if not people:
        return []
    names = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(list(people))))
    for user_id, name in names:
        people[user_id].name = name
    return sorted(people.values(), key=lambda row: row.name.lower())
