"""Incoming leads: the lead generators' worklist until the board takes over."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Lead, Membership, Phase, Stage
from app.policy import leads_visible_to

PAGE_SIZE = 50


def incoming(membership: Membership, before_id: int | None = None) -> tuple[list[Lead], bool]:
    """Newest leads the member sees still in the generation phase, a page at a time
    (keyset on id)."""
    query = (
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(leads_visible_to(membership), Stage.phase == Phase.GENERATION)
        .options(joinedload(Lead.contact), joinedload(Lead.source), joinedload(Lead.owner))
        .order_by(Lead.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before_id:
        query = query.where(Lead.id < before_id)
    leads = list(db.session.scalars(query))
    return leads[:PAGE_SIZE], len(leads) > PAGE_SIZE
