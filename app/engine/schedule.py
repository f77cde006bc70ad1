"""The tick: find what is due in each workspace's local morning and record it once.

Run every minute by the worker. A workspace is due while its local time is in
[digest hour, digest hour + 15 min); everything it owes that day is written as
outbox rows under unique keys, so ticks that overlap or repeat add nothing.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app import clock
from app.extensions import db
from app.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    Lead,
    Membership,
    MessageKind,
    OutboxMessage,
    Phase,
    Stage,
    Tenant,
)
from app.telegram import alerts as owner_alerts
from app.telegram import preferences
from app.tenancy import ALL_TENANTS

WINDOW = timedelta(minutes=15)
DECISION_OFFSETS = (-3, 0, 3)  # days around the decision date: before, on, after
ESCALATION_GRACE_DAYS = 2
UNTOUCHED_LEAD_HOURS = 24


def local_now(tenant: Tenant, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(tenant.timezone))


def is_due(tenant: Tenant, now: datetime) -> bool:
    """Inside the workspace's morning window, by its own clock (DST-proof)."""
    local = local_now(tenant, now)
    start = datetime.combine(local.date(), time(tenant.digest_hour), ZoneInfo(tenant.timezone))
    return start <= local < start + WINDOW


def tick(now: datetime | None = None) -> dict:
    """Record everything due at ``now``; returns counts for logs and benchmarks.

    Every row written carries ``now`` (its creation and first attempt), never the
    real clock, so a tick for a given moment writes the same rows whenever it runs.
    """
    now = now or clock.now()
    tenants = db.session.scalars(sa.select(Tenant).execution_options(**ALL_TENANTS)).all()
    due = [tenant for tenant in tenants if is_due(tenant, now)]
    written = 0
    for tenant in due:
        written += _record_day(tenant, clock.workspace_today(tenant, now), now)
    written += _record_planned_touches(tenants, now)
    written += _insert_new(owner_alerts.rows_due(tenants, now))
    db.session.commit()
    return {"workspaces_due": len(due), "rows": written}


def _record_day(tenant: Tenant, today: date, now: datetime) -> int:
    rows = []
    members = db.session.execute(
        sa.select(Membership.user_id, Membership.digest_opt_out)
        .where(Membership.tenant_id == tenant.id, Membership.active.is_(True))
        .execution_options(**ALL_TENANTS)
    ).all()
    # A member who turned engine email off still gets a digest in Telegram if they
    # want one: app.telegram.preferences.fan_out leaves their email row out.
    for user_id, _email_off in members:
        rows.append(_row(tenant, user_id, MessageKind.DIGEST, None, today, now))
    open_stage = sa.and_(Stage.is_won.is_(False), Stage.is_lost.is_(False))
    clients_due = db.session.execute(
        sa.select(Lead.id, Lead.owner_id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Lead.tenant_id == tenant.id,
            Stage.phase == Phase.ACCOUNT,
            Lead.next_touch_on == today,
            Lead.owner_id.is_not(None),
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    rows += [
        _row(tenant, owner, MessageKind.TOUCH_DUE, lead, today, now) for lead, owner in clients_due
    ]
    window_dates = [today - timedelta(days=offset) for offset in DECISION_OFFSETS]
    deciding = db.session.execute(
        sa.select(Lead.id, Lead.owner_id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Lead.tenant_id == tenant.id,
            Stage.phase != Phase.ACCOUNT,
            open_stage,
            Lead.decision_date.in_(window_dates),
            Lead.owner_id.is_not(None),
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    rows += [
        _row(tenant, owner, MessageKind.DECISION_WINDOW, lead, today, now)
        for lead, owner in deciding
    ]
    _escalate(tenant, today, now)
    return _insert_new(rows)


def _record_planned_touches(tenants: list[Tenant], now: datetime) -> int:
    """Touches planned for a moment that has now come (looked at every minute)."""
    zones = {tenant.id: ZoneInfo(tenant.timezone) for tenant in tenants}
    planned = db.session.execute(
        sa.select(Lead.id, Lead.tenant_id, Lead.owner_id, Lead.touch_scheduled_at)
        .where(
            Lead.touch_scheduled_at <= now,
            Lead.touch_scheduled_at > now - timedelta(days=1),
            Lead.owner_id.is_not(None),
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    rows = []
    for lead_id, tenant_id, owner_id, at in planned:
        row = {
            "tenant_id": tenant_id,
            "user_id": owner_id,
            "subject_id": lead_id,
            "kind": MessageKind.TOUCH_SCHEDULED.value,
            "local_date": at.astimezone(zones[tenant_id]).date(),
            "unique_key": f"{tenant_id}:{owner_id}:touch_scheduled:{lead_id}:{at.isoformat()}",
            "next_attempt_at": now,
            "created_at": now,
        }
        rows.append(row)
    return _insert_new(rows)


def _row(
    tenant: Tenant, user_id: int, kind: MessageKind, subject_id, today: date, now: datetime
) -> dict:
    key = f"{tenant.id}:{user_id}:{kind.value}:{subject_id or '-'}:{today.isoformat()}"
    return {
        "tenant_id": tenant.id,
        "unique_key": key,
        "user_id": user_id,
        "kind": kind.value,
        "subject_id": subject_id,
        "local_date": today,
        "next_attempt_at": now,
        "created_at": now,
    }


def _insert_new(rows: list[dict]) -> int:
    """Insert the rows whose unique key is new; existing ones are left as they are.

    Each row is first made one row per channel its recipient wants (email, Telegram).
    """
    rows = preferences.fan_out(rows)
    if not rows:
        return 0
    keys = [row["unique_key"] for row in rows]
    existing = set(
        db.session.scalars(
            sa.select(OutboxMessage.unique_key)
            .where(OutboxMessage.unique_key.in_(keys))
            .execution_options(**ALL_TENANTS)
        )
    )
    new_rows = [row for row in rows if row["unique_key"] not in existing]
    if new_rows:
        # A concurrent tick may insert the same keys between the read and here.
        statement = postgresql.insert(OutboxMessage).on_conflict_do_nothing(
            index_elements=["unique_key"]
        )
        db.session.connection().execute(statement, new_rows)
    return len(new_rows)


def _escalate(tenant: Tenant, today: date, now: datetime) -> None:
    """Clients past cadence + 2 days and new leads untouched for 24 h become conflicts."""
    overdue_before = today - timedelta(days=ESCALATION_GRACE_DAYS)
    open_conflict = (
        sa.select(Conflict.lead_id)
        .where(Conflict.tenant_id == tenant.id, Conflict.status != "resolved")
        .where(Conflict.kind.in_([ConflictKind.CADENCE_MISSED, ConflictKind.LEAD_UNTOUCHED]))
    )
    missed = db.session.execute(
        sa.select(Lead.id, Lead.owner_id, Lead.next_touch_on)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Lead.tenant_id == tenant.id,
            Stage.phase == Phase.ACCOUNT,
            Lead.next_touch_on < overdue_before,
            Lead.id.not_in(open_conflict),
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    for lead_id, owner_id, next_touch in missed:
        db.session.add(
            Conflict(
                tenant_id=tenant.id,
                kind=ConflictKind.CADENCE_MISSED,
                status=ConflictStatus.OPEN,
                lead_id=lead_id,
                user_id=owner_id,
                details={"due": next_touch.isoformat()},
                created_at=now,
            )
        )
    untouched = db.session.execute(
        sa.select(Lead.id, Lead.owner_id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Lead.tenant_id == tenant.id,
            Stage.phase == Phase.GENERATION,
            Lead.last_touch_at.is_(None),
            Lead.created_at < now - timedelta(hours=UNTOUCHED_LEAD_HOURS),
            Lead.id.not_in(open_conflict),
        )
        .execution_options(**ALL_TENANTS)
    ).all()
    for lead_id, owner_id in untouched:
        db.session.add(
            Conflict(
                tenant_id=tenant.id,
                kind=ConflictKind.LEAD_UNTOUCHED,
                status=ConflictStatus.OPEN,
                lead_id=lead_id,
                user_id=owner_id,
                details={},
                created_at=now,
            )
        )
