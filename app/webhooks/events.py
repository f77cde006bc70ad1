"""Recording webhook events in the transaction of the change they report (an outbox).

The conveyor's services are not touched: the events are read off the rows they write.
A timeline line (qualified, assigned, won, lost), a touch on a client and a new conflict
each add an event through the mapper's ``after_insert`` on the same connection, so the
event commits or rolls back with its change; the one lead builder records
``lead.created`` for every lead it builds. Only workspaces with an endpoint that wants
the event write anything. After the commit the delivery job is woken.
"""

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from app import clock
from app.models import (
    Conflict,
    ConflictKind,
    EventKind,
    Lead,
    LeadEvent,
    Phase,
    Stage,
    Touch,
    WebhookEndpoint,
    WebhookEvent,
)

EVENT_TYPES = (
    "lead.created",
    "lead.qualified",
    "deal.assigned",
    "deal.won",
    "deal.lost",
    "client.touch_logged",
    "client.touch_overdue",
    "promise.flagged",
    "conflict.opened",
    "source.alert",
)
BY_TIMELINE = {
    EventKind.QUALIFIED: "lead.qualified",
    EventKind.ASSIGNED: "deal.assigned",
    EventKind.WON: "deal.won",
    EventKind.LOST: "deal.lost",
}
WAKE_FLAG = "webhooks_wake"
# What each workspace's endpoints want, read once per transaction: the digest's tick
# escalated 14,400 clients and asked PostgreSQL 14,400 times (12.5 s of a 23 s tick).
WANTED = "webhooks_wanted"


def wanted(connection, tenant_id: int, session: Session | None = None) -> set[str]:
    """The event types some enabled endpoint of the workspace subscribes to."""
    known = session.info.setdefault(WANTED, {}) if session is not None else {}
    if tenant_id not in known:
        rows = connection.execute(
            sa.select(WebhookEndpoint.events).where(
                WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
            )
        ).scalars()
        known[tenant_id] = {name for events in rows for name in events or ()}
    return known[tenant_id]


def record(connection, tenant_id: int, rows: list[dict], session: Session | None = None) -> int:
    """Insert the events (type, resource, subject_id, lead_id, ...) that are wanted."""
    types = wanted(connection, tenant_id, session) if rows else set()
    now = clock.now()
    kept = [
        {"tenant_id": tenant_id, "status": "pending", "occurred_at": now, **row}
        for row in rows
        if row["type"] in types
    ]
    if kept:
        connection.execute(sa.insert(WebhookEvent.__table__), kept)
    return len(kept)


def _lead_event(type_: str, lead_id: int, subject_id: int | None = None) -> dict:
    return {
        "type": type_,
        "resource": f"lead:{lead_id}",
        "subject_id": subject_id or lead_id,
        "lead_id": lead_id,
    }


def _flag(target) -> None:
    session = object_session(target)
    if session is not None:
        session.info[WAKE_FLAG] = True


@event.listens_for(LeadEvent, "after_insert")
def _timeline_line(mapper, connection, target: LeadEvent) -> None:
    type_ = BY_TIMELINE.get(target.kind)
    row = _lead_event(type_, target.lead_id) if type_ else None
    if row and record(connection, target.tenant_id, [row], object_session(target)):
        _flag(target)


@event.listens_for(Touch, "after_insert")
def _touch(mapper, connection, target: Touch) -> None:
    phase = connection.execute(
        sa.select(Stage.phase)
        .join(Lead, Lead.stage_id == Stage.id)
        .where(Lead.id == target.lead_id)
    ).scalar()
    if phase != Phase.ACCOUNT:
        return
    row = _lead_event("client.touch_logged", target.lead_id, target.id)
    if record(connection, target.tenant_id, [row], object_session(target)):
        _flag(target)


@event.listens_for(Conflict, "after_insert")
def _conflict(mapper, connection, target: Conflict) -> None:
    resource = (
        f"lead:{target.lead_id}"
        if target.lead_id
        else f"source:{target.source_id}"
        if target.source_id
        else f"conflict:{target.id}"
    )
    base = {"resource": resource, "subject_id": target.id, "lead_id": target.lead_id}
    rows = [{"type": "conflict.opened", **base}]
    if target.kind == ConflictKind.PROMISE_FLAGGED:
        rows.append({"type": "promise.flagged", **base})
    if target.kind == ConflictKind.SOURCE_QUALITY:
        rows.append({"type": "source.alert", **base})
    if record(connection, target.tenant_id, rows, object_session(target)):
        _flag(target)


def leads_created(session: Session, tenant_id: int, lead_ids: list[int]) -> None:
    """``lead.created`` for leads the builder wrote (in its transaction)."""
    rows = [_lead_event("lead.created", lead_id) for lead_id in lead_ids]
    if record(session.connection(), tenant_id, rows, session):
        session.info[WAKE_FLAG] = True


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    session.info.pop(WANTED, None)
    if session.info.pop(WAKE_FLAG, False):
        from app.webhooks.wake import wake

        wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(WANTED, None)
    session.info.pop(WAKE_FLAG, None)
