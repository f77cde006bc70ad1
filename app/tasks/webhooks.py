"""Webhook jobs: deliver (woken after commits, and every minute), and the overdue sweep."""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from app import clock
from app.extensions import db
from app.models import (
    IdempotencyKey,
    Lead,
    Phase,
    Stage,
    Tenant,
    WebhookEndpoint,
    WebhookEvent,
)
from app.tenancy import ALL_TENANTS
from app.webhooks import delivery, events, wake


def deliver() -> dict:
    """Fan out what was recorded and send what is due; safe to run at once, twice."""
    wake.starting()
    counts = delivery.run()
    if counts.get("more"):
        wake.wake()
    return counts


def touch_overdue() -> int:
    """``client.touch_overdue`` once per client and missed date, in workspaces that want it;
    and idempotency keys past their day are let go."""
    now = clock.now()
    db.session.execute(
        sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < now - timedelta(days=1))
    )
    tenant_ids = db.session.scalars(
        sa.select(WebhookEndpoint.tenant_id)
        .where(WebhookEndpoint.enabled.is_(True))
        .distinct()
        .execution_options(**ALL_TENANTS)
    ).all()
    written = 0
    connection = db.session.connection()
    for tenant in db.session.scalars(sa.select(Tenant).where(Tenant.id.in_(tenant_ids))):
        if "client.touch_overdue" not in events.wanted(connection, tenant.id):
            continue
        today = clock.today(tenant.timezone, now)
        overdue = db.session.execute(
            sa.select(Lead.id, Lead.next_touch_on)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                Lead.tenant_id == tenant.id,
                Stage.phase == Phase.ACCOUNT,
                Lead.churned_at.is_(None),
                Lead.next_touch_on < today,
            )
            .execution_options(**ALL_TENANTS)
        ).all()
        rows = [
            {
                "type": "client.touch_overdue",
                "resource": f"lead:{lead_id}",
                "subject_id": lead_id,
                "lead_id": lead_id,
                "dedupe_key": f"overdue:{lead_id}:{due_on.isoformat()}",
            }
            for lead_id, due_on in overdue
        ]
        written += _insert_new(connection, tenant.id, rows)
    db.session.commit()
    if written:
        wake.wake()
    return written


def _insert_new(connection, tenant_id: int, rows: list[dict]) -> int:
    if not rows:
        return 0
    now = clock.now()
    statement = (
        insert(WebhookEvent.__table__)
        .values(
            [{"tenant_id": tenant_id, "status": "pending", "occurred_at": now, **r} for r in rows]
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(WebhookEvent.__table__.c.id)
    )
    return len(connection.execute(statement).all())
