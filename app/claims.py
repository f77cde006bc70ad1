"""Claiming rows of a work table (the outbox, webhook deliveries) for one worker.

One statement: the due rows are chosen and locked with ``FOR UPDATE SKIP LOCKED`` (another
worker passes over them instead of waiting, and PostgreSQL checks a row again once it
holds its lock), then marked as being sent by this worker at ``now``. Two workers never
take the same row; a row left claimed by a killed worker is due again once its claim is
stale, which the caller's ``due`` condition says.
"""

from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.tenancy import ALL_TENANTS


def claim_rows(model, due, order_by, limit: int, now: datetime, sending) -> list[int]:
    """Mark up to ``limit`` rows of ``model`` matching ``due`` as ``sending``; their ids.

    ``model`` has ``id``, ``status`` and ``claimed_at``. Commits the claim.
    """
    chosen = (
        sa.select(model.id)
        .where(due)
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = db.session.scalars(
        sa.update(model)
        .where(model.id.in_(chosen.scalar_subquery()))
        .values(status=sending, claimed_at=now)
        .returning(model.id)
        .execution_options(synchronize_session=False, **ALL_TENANTS)
    ).all()
    db.session.commit()
    return sorted(claimed)
