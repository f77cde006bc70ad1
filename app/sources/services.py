"""Lead sources: where leads come from, what each costs, and its secret intake address."""

import secrets

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.intake import signing
from app.mail import external_url
from app.models import InboxItem, InboxStatus, IntakeMinute, Lead, Source, SourceKind, Tenant

INBOX_PAGE_SIZE = 50


class SourceError(ValueError):
    def __init__(self, message, field: str | None = None):
        super().__init__(message)
        self.field = field


def new_token() -> str:
    return secrets.token_urlsafe(24)


def intake_url(source: Source) -> str:
    return external_url("intake.receive", token=source.intake_token)


def hosted_form_url(source: Source) -> str:
    return external_url("intake.hosted_form", token=source.intake_token)


def list_sources(tenant: Tenant) -> list[tuple[Source, int]]:
    """Every source with its lead count, active ones first."""
    counts = (
        sa.select(Lead.source_id, sa.func.count(Lead.id).label("leads"))
        .where(Lead.tenant_id == tenant.id)
        .group_by(Lead.source_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(Source, sa.func.coalesce(counts.c.leads, 0))
        .outerjoin(counts, counts.c.source_id == Source.id)
        .where(Source.tenant_id == tenant.id)
        .order_by(Source.active.desc(), Source.name)
    )
    return [(source, count) for source, count in rows]


def _name_taken(tenant: Tenant, name: str, exclude_id: int | None = None) -> bool:
    query = sa.select(Source.id).where(Source.tenant_id == tenant.id, Source.name == name)
    if exclude_id:
        query = query.where(Source.id != exclude_id)
    return db.session.scalar(query) is not None


def create_source(
    tenant: Tenant,
    name: str,
    kind: SourceKind,
    cost_minor: int = 0,
    signed: bool = False,
    thank_you_url: str | None = None,
    rate_limit_per_minute: int = 600,
    junk_share_max: int | None = None,
    qualified_share_min: int | None = None,
) -> Source:
    name = name.strip()
    if _name_taken(tenant, name):
        raise SourceError(_l("A source with this name exists."), field="name")
    source = Source(
        tenant_id=tenant.id,
        name=name,
        kind=kind,
        cost_per_lead_minor=cost_minor,
        intake_token=new_token(),
        signing_secret=signing.new_secret() if signed else None,
        thank_you_url=thank_you_url or None,
        rate_limit_per_minute=rate_limit_per_minute,
        junk_share_max=junk_share_max,
        qualified_share_min=qualified_share_min,
    )
    db.session.add(source)
    db.session.commit()
    return source


def update_source(tenant: Tenant, source: Source, data: dict) -> Source:
    name = data["name"].strip()
    if _name_taken(tenant, name, exclude_id=source.id):
        raise SourceError(_l("A source with this name exists."), field="name")
    source.name = name
    source.kind = SourceKind(data["kind"])
    source.cost_per_lead_minor = data["cost_minor"]
    source.thank_you_url = data.get("thank_you_url") or None
    source.rate_limit_per_minute = data["rate_limit_per_minute"]
    # Empty: the workspace's default limit applies. Absent: not the editor's to set.
    for name in ("junk_share_max", "qualified_share_min"):
        if name in data:
            setattr(source, name, data[name])
    db.session.commit()
    return source


def set_active(source: Source, active: bool) -> None:
    source.active = active
    db.session.commit()


def rotate_token(source: Source) -> None:
    """A new secret address; the old one answers 404 from now on."""
    source.intake_token = new_token()
    db.session.commit()


def rotate_signing_secret(source: Source) -> None:
    source.signing_secret = signing.new_secret()
    db.session.commit()


def disable_signing(source: Source) -> None:
    source.signing_secret = None
    db.session.commit()


def inbox_page(tenant: Tenant, status: str | None, source_id: int | None, page: int):
    query = sa.select(InboxItem).where(InboxItem.tenant_id == tenant.id)
    if status in {s.value for s in InboxStatus}:
        query = query.where(InboxItem.status == InboxStatus(status))
    if source_id:
        query = query.where(InboxItem.source_id == source_id)
    items = list(
        db.session.scalars(
            query.order_by(InboxItem.received_at.desc(), InboxItem.id.desc())
            .offset((page - 1) * INBOX_PAGE_SIZE)
            .limit(INBOX_PAGE_SIZE + 1)
        )
    )
    return items[:INBOX_PAGE_SIZE], len(items) > INBOX_PAGE_SIZE


def counted_minutes(tenant: Tenant, source_id: int | None, limit: int = 20) -> list[IntakeMinute]:
    """The latest minutes in which a source's refused posts were past what the inbox
    keeps, so only counted (``app.intake.cap``), newest first."""
    query = (
        sa.select(IntakeMinute)
        .where(IntakeMinute.tenant_id == tenant.id, IntakeMinute.counted_posts > 0)
        .options(joinedload(IntakeMinute.source))
        .order_by(IntakeMinute.minute.desc(), IntakeMinute.id.desc())
        .limit(limit)
    )
    if source_id:
        query = query.where(IntakeMinute.source_id == source_id)
    return list(db.session.scalars(query))
