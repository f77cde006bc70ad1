"""Stage lookups that every area shares (intake, import, conveyor, clients)."""

import sqlalchemy as sa

from app.extensions import db
from app.models import Phase, Stage
from app.tenancy import ALL_TENANTS


def first_stage(tenant_id: int, phase: Phase) -> Stage:
    """Where work enters a phase: its first stage that is neither won nor lost."""
    return db.session.scalar(
        sa.select(Stage)
        .where(
            Stage.tenant_id == tenant_id,
            Stage.phase == phase,
            Stage.is_won.is_(False),
            Stage.is_lost.is_(False),
        )
        .order_by(Stage.position)
        .limit(1)
        .execution_options(**ALL_TENANTS)
    )
