"""The list of every conflict, their handling, and the monthly view."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app import clock
from app.extensions import db
from app.models import Conflict, ConflictKind, ConflictStatus, Contact, Lead, Source, Tenant, User

PAGE_SIZE = 50


def listing(tenant: Tenant, kind: str | None, status: str | None, page: int):
    query = sa.select(Conflict).where(Conflict.tenant_id == tenant.id)
    if kind in {k.value for k in ConflictKind}:
        query = query.where(Conflict.kind == ConflictKind(kind))
    if status in {s.value for s in ConflictStatus}:
        query = query.where(Conflict.status == ConflictStatus(status))
    rows = list(
        db.session.scalars(
            query.order_by(Conflict.created_at.desc(), Conflict.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        )
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def people_and_sources(conflicts: list[Conflict]) -> tuple[dict, dict]:
    """Names for the users and sources the listed conflicts involve (two queries)."""
    user_ids = {c.user_id for c in conflicts if c.user_id}
    source_ids = {c.source_id for c in conflicts if c.source_id}
    users = (
        dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(user_ids))).all())
        if user_ids
        else {}
    )
    sources = (
        dict(
            db.session.execute(
                sa.select(Source.id, Source.name).where(Source.id.in_(source_ids))
            ).all()
        )
        if source_ids
        else {}
    )
    return users, sources


def deals_named(conflicts: list[Conflict]) -> dict[int, tuple[str, str]]:
    """(person, deal title) for the deals the listed conflicts are about (one query)."""
    lead_ids = {c.lead_id for c in conflicts if c.lead_id}
    if not lead_ids:
        return {}
    rows = db.session.execute(
        sa.select(Lead.id, Contact.name, Lead.title)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(Lead.id.in_(lead_ids))
    )
    return {lead_id: (name, title) for lead_id, name, title in rows}


def open_count(tenant: Tenant) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Conflict.id)).where(
            Conflict.tenant_id == tenant.id, Conflict.status == ConflictStatus.OPEN
        )
    )


def update(conflict: Conflict, status: ConflictStatus, note: str) -> None:
    conflict.status = status
    conflict.resolution_note = note.strip()[:2000] or conflict.resolution_note
    conflict.resolved_at = clock.now() if status == ConflictStatus.RESOLVED else None
    db.session.commit()


def monthly(tenant: Tenant, year: int, month: int) -> dict:
    """Per person and per source: conflicts caused in the month, and how many were resolved."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    in_month = sa.and_(
        Conflict.tenant_id == tenant.id, Conflict.created_at >= start, Conflict.created_at < end
    )
    resolved = sa.func.sum(sa.case((Conflict.status == ConflictStatus.RESOLVED, 1), else_=0))
    person = aliased(User)
    by_person = db.session.execute(
        sa.select(person.name, Conflict.kind, sa.func.count(Conflict.id), resolved)
        .join(person, person.id == Conflict.user_id)
        .where(in_month)
        .group_by(person.name, Conflict.kind)
        .order_by(person.name)
    ).all()
    by_source = db.session.execute(
        sa.select(Source.name, Conflict.kind, sa.func.count(Conflict.id), resolved)
        .join(Source, Source.id == Conflict.source_id)
        .where(in_month)
        .group_by(Source.name, Conflict.kind)
        .order_by(Source.name)
    ).all()
    return {"by_person": by_person, "by_source": by_source, "start": start}
