"""New conflicts become Telegram alerts for the owners who linked the bot.

The engine's tick asks every minute; rows go in under a key per (owner, conflict), so
each conflict alerts each owner once, however many ticks see it.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import Conflict, ConflictStatus, MessageKind, TelegramLink, Tenant
from app.policy import members_who
from app.telegram.bot_api import enabled
from app.tenancy import ALL_TENANTS

LOOK_BACK = timedelta(days=1)  # a worker that was down for a while still alerts


def rows_due(tenants: list[Tenant], now: datetime) -> list[dict]:
    """Outbox rows (before the fan-out per channel) for conflicts the owners have not had."""
    if not enabled():
        return []
    conflicts = db.session.execute(
        sa.select(Conflict.id, Conflict.tenant_id, Conflict.created_at)
        .where(
            Conflict.created_at > now - LOOK_BACK,
            Conflict.created_at <= now,
            Conflict.status == ConflictStatus.OPEN,
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    if not conflicts:
        return []
    zones = {tenant.id: tenant.timezone for tenant in tenants}
    linked_at = dict(
        db.session.execute(
            sa.select(TelegramLink.user_id, TelegramLink.linked_at).where(
                TelegramLink.disabled_at.is_(None)
            )
        ).all()
    )
    owners: dict[int, list[int]] = {}
    rows = []
    for conflict_id, tenant_id, created_at in conflicts:
        if tenant_id not in owners:
            owners[tenant_id] = [m.user_id for m in members_who(tenant_id, "alerts.receive")]
        for user_id in owners[tenant_id]:
            # Only what happened since they linked: linking brings no backlog.
            if user_id not in linked_at or linked_at[user_id] > created_at:
                continue
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "subject_id": conflict_id,
                    "kind": MessageKind.OWNER_ALERT.value,
                    "local_date": clock.today(zones[tenant_id], created_at),
                    "unique_key": f"{tenant_id}:{user_id}:owner_alert:{conflict_id}",
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows
