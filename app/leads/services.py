"""Incoming leads: the lead generators' worklist until the board takes over."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Lead, Membership, Phase, Stage
from app.policy import allows, leads_visible_to

PAGE_SIZE = 50


def incoming(membership: Membership, before_id: int | None = None) -> tuple[list[Lead], bool]:
    """Newest leads the member sees still in the generation phase, a page at a time
    (keyset on id)."""
    query = (
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(leads_visible_to(membership), Stage.phase == Phase.GENERATION)
        .options(joinedload(Lead.contact), joinedload(Lead.source), joinedload(Lead.owner))
        .order_by(Lead.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before_id:
        query = query.where(Lead.id < before_id)
    leads = list(db.session.scalars(query))
    return leads[:PAGE_SIZE], len(leads) > PAGE_SIZE


@dataclass(frozen=True, slots=True)
class ContactCard:
    """Who a lead is about, as one member may see it."""

    name: str
    email: str | None
    phone: str | None
    company: str | None


def contact_card(membership: Membership | None, lead: Lead) -> ContactCard:
    """The contact a lead joined for members who may see the record (``contacts.record``);
    for the others (lead generators) what the lead's post carried: a post with a known
    phone joins that client, and must not read the client's record back to its poster."""
    posted = lead.posted
    if posted is None or allows(membership, "contacts.record"):  # None: not from a post
        contact = lead.contact
        return ContactCard(contact.name, contact.email, contact.phone, contact.company)
    return ContactCard(
        posted.get("name") or "?", posted.get("email"), posted.get("phone"), posted.get("company")
    )
