"""The client base: who is due a touch, exports, and new sales to existing clients."""

import io
from datetime import date

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from app import clock, csvfile
from app.conveyor.services import MoveRefused, assign_to_closer, pick_closer, record_event
from app.extensions import db
from app.models import ChurnReason, EventKind, Lead, Membership, Phase, Stage, Tenant, User
from app.money import major_text
from app.pipeline import first_stage
from app.policy import clients_visible_to, users_who

PAGE_SIZE = 50


def clients_query(
    membership: Membership, manager_id: int | None = None, churned: bool | None = None
):
    """The member's clients; ``churned`` True or False keeps only those who stopped
    buying or only those who still buy (None: both)."""
    query = (
        sa.select(Lead).join(Stage, Stage.id == Lead.stage_id).where(clients_visible_to(membership))
    )
    if manager_id:
        query = query.where(Lead.owner_id == manager_id)
    if churned is not None:
        query = query.where(Lead.churned_at.is_not(None) if churned else Lead.churned_at.is_(None))
    return query


def client_page(membership: Membership, manager_id: int | None, page: int, churned: bool = False):
    """Clients by next touch (overdue first), a page at a time; churned ones on their own,
    the latest first."""
    order = (
        (Lead.churned_at.desc(), Lead.id)
        if churned
        else (Lead.next_touch_on.is_(None), Lead.next_touch_on, Lead.id)
    )
    rows = list(
        db.session.scalars(
            clients_query(membership, manager_id, churned)
            .options(joinedload(Lead.contact), joinedload(Lead.owner))
            .order_by(*order)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        ).unique()
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def account_managers(tenant: Tenant) -> list[User]:
    """Everyone who manages or managed clients here (a leaver's clients stay findable)."""
    return users_who(tenant.id, "work.clients", active_only=False)


EXPORT_COLUMNS = [
    "name",
    "email",
    "phone",
    "company",
    "account_manager",
    "value",
    "last_touch",
    "next_touch",
    "client_since",
]


def export_csv(membership: Membership, manager_id: int | None, tenant: Tenant) -> str:
    """Every client in the member's view as CSV (streamed rows, one query)."""
    out = io.StringIO()
    writer = csvfile.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    rows = db.session.scalars(
        clients_query(membership, manager_id)
        .options(joinedload(Lead.contact), joinedload(Lead.owner))
        .order_by(Lead.id)
        .execution_options(yield_per=1000)
    )
    for lead in rows:
        writer.writerow(
            [
                lead.contact.name,
                lead.contact.email,
                lead.contact.phone,
                lead.contact.company,
                lead.owner.name if lead.owner else "",
                major_text(lead.value_minor, tenant.currency),
                lead.last_touch_at.date().isoformat() if lead.last_touch_at else "",
                lead.next_touch_on.isoformat() if lead.next_touch_on else "",
                (lead.won_at or lead.created_at).date().isoformat(),
            ]
        )
    return out.getvalue()


def is_due(lead: Lead, today: date) -> bool:
    return lead.next_touch_on is not None and lead.next_touch_on <= today


CHURN_REASONS_NEEDING_NOTE = {ChurnReason.OTHER}


def churn(membership: Membership, client: Lead, reason: ChurnReason, note: str = "") -> Lead:
    """Mark a client who stopped buying: they stay a client, in the base and in history,
    no longer due a touch, and nothing is held against the source that brought them."""
    if client.stage.phase != Phase.ACCOUNT:
        raise MoveRefused(_l("Only a client can churn; close a deal as lost instead."))
    if client.churned_at is not None:
        raise MoveRefused(_l("This client is already marked churned."))
    if reason in CHURN_REASONS_NEEDING_NOTE and not note.strip():
        raise MoveRefused(_l("Say what happened."))
    client.churned_at = clock.now()
    client.churn_reason = reason.value
    client.churn_note = note.strip()[:500] or None
    client.next_touch_on = None
    client.touch_scheduled_at = None
    record_event(
        client, membership.user, EventKind.CHURNED, reason=reason.value, note=client.churn_note
    )
    db.session.commit()
    return client


def new_sale(membership: Membership, client: Lead) -> Lead:
    """Open a new deal in conversion for an existing client's contact."""
    tenant = db.session.get(Tenant, client.tenant_id)
    stage = first_stage(tenant.id, Phase.CONVERSION)
    deal = Lead(
        tenant_id=tenant.id,
        contact_id=client.contact_id,
        source_id=client.source_id,
        stage_id=stage.id,
        title=client.title,
        problem=client.problem,
        money=client.money,
    )
    db.session.add(deal)
    db.session.flush()
    assign_to_closer(deal, membership.user, stage, pick_closer(tenant))
    db.session.commit()
    return deal
