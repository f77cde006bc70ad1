"""The client base: who is due a touch, exports, and new sales to existing clients."""

import io
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app import csvfile
from app.conveyor.services import assign_to_closer, pick_closer
from app.extensions import db
from app.models import Lead, Membership, Phase, Role, Stage, Tenant, User
from app.pipeline import first_stage
from app.policy import scope_leads

PAGE_SIZE = 50


def clients_query(membership: Membership, manager_id: int | None = None):
    query = scope_leads(
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.tenant_id == membership.tenant_id, Stage.phase == Phase.ACCOUNT),
        membership,
    )
    if manager_id:
        query = query.where(Lead.owner_id == manager_id)
    return query


def client_page(membership: Membership, manager_id: int | None, page: int):
    """Clients by next touch (overdue first), a page at a time."""
    rows = list(
        db.session.scalars(
            clients_query(membership, manager_id)
            .options(joinedload(Lead.contact), joinedload(Lead.owner))
            .order_by(Lead.next_touch_on.is_(None), Lead.next_touch_on, Lead.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        ).unique()
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def account_managers(tenant: Tenant) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant.id, Membership.role == Role.ACCOUNT_MANAGER)
            .order_by(User.name)
        )
    )


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
                f"{lead.value_minor / 100:.2f}",
                lead.last_touch_at.date().isoformat() if lead.last_touch_at else "",
                lead.next_touch_on.isoformat() if lead.next_touch_on else "",
                (lead.won_at or lead.created_at).date().isoformat(),
            ]
        )
    return out.getvalue()


def is_due(lead: Lead, today: date) -> bool:
    return lead.next_touch_on is not None and lead.next_touch_on <= today


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
