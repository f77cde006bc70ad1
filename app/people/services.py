"""A person's page, their history of changes, and merging two records of one person.

Every query goes through the policy's scopes: a member sees a person through the deals
they may see (the owner sees every person), and only those deals, with their timeline
and promises.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from flask import abort
from sqlalchemy.orm import joinedload, selectinload

from app import clock
from app.extensions import db
from app.models import AuditEntry, Contact, Lead, LeadEvent, Membership, Stage, User
from app.models.activity import EventKind, Promise
from app.policy import allows, leads_visible_to, people_visible_to

EDITABLE = ("name", "email", "phone", "company")
TIMELINE_LENGTH = 200


@dataclass(slots=True)
class PersonPage:
    contact: Contact
    deals: list[Lead]
    events: list[LeadEvent]
    promises: list[Promise]
    history: list[AuditEntry]
    duplicates: list[Contact] = field(default_factory=list)

    @property
    def next_touch_on(self) -> date | None:
        dates = [deal.next_touch_on for deal in self.deals if deal.next_touch_on]
        return min(dates) if dates else None

    @property
    def touch_planned_at(self) -> datetime | None:
        moments = [deal.touch_scheduled_at for deal in self.deals if deal.touch_scheduled_at]
        return min(moments) if moments else None


def person_for_member_or_404(membership: Membership, contact_id: int) -> Contact:
    contact = db.session.scalar(
        sa.select(Contact).where(Contact.id == contact_id, people_visible_to(membership))
    )
    if contact is None:
        abort(404)
    return contact


def may_open_lead(membership: Membership, lead_id: int) -> bool:
    """Whether the member's walls let them open this lead (after adding it by hand)."""
    return (
        db.session.scalar(
            sa.select(Lead.id)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(Lead.id == lead_id, leads_visible_to(membership))
        )
        is not None
    )


def page(membership: Membership, contact: Contact) -> PersonPage:
    """The person with every deal the member may see, their timeline and promises."""
    deals = list(
        db.session.scalars(
            sa.select(Lead)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(Lead.contact_id == contact.id, leads_visible_to(membership))
            .options(joinedload(Lead.stage), joinedload(Lead.owner), joinedload(Lead.source))
            .order_by(Lead.created_at.desc(), Lead.id.desc())
        ).unique()
    )
    ids = [deal.id for deal in deals]
    events = list(
        db.session.scalars(
            sa.select(LeadEvent)
            .where(LeadEvent.tenant_id == contact.tenant_id, LeadEvent.lead_id.in_(ids))
            .options(selectinload(LeadEvent.actor))
            .order_by(LeadEvent.created_at.desc(), LeadEvent.id.desc())
            .limit(TIMELINE_LENGTH)
        )
    )
    promises = list(
        db.session.scalars(
            sa.select(Promise)
            .where(Promise.tenant_id == contact.tenant_id, Promise.lead_id.in_(ids))
            .order_by(Promise.created_at)
        )
    )
    history = list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.tenant_id == contact.tenant_id,
                AuditEntry.action.in_(("person.edited", "person.merged")),
                AuditEntry.data["contact_id"].as_integer() == contact.id,
            )
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(50)
        )
    )
    result = PersonPage(contact, deals, events, promises, history)
    if allows(membership, "people.merge"):
        result.duplicates = possible_duplicates(contact)
    return result


def actors(history: list[AuditEntry]) -> dict[int, User]:
    ids = {entry.actor_id for entry in history if entry.actor_id}
    if not ids:
        return {}
    return {user.id: user for user in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}


def edit(membership: Membership, contact: Contact, changes: dict[str, str | None]) -> bool:
    """Write the changed details and what changed to the person's history. Commits.
    False when nothing changed."""
    changed = {
        name: [getattr(contact, name), value]
        for name, value in changes.items()
        if name in EDITABLE and (getattr(contact, name) or None) != (value or None)
    }
    if not changed:
        return False
    for name, (_, value) in changed.items():
        setattr(contact, name, value or (None if name != "name" else contact.name))
    db.session.add(
        AuditEntry(
            tenant_id=contact.tenant_id,
            actor_id=membership.user_id,
            action="person.edited",
            data={"contact_id": contact.id, "changes": changed},
            created_at=clock.now(),
        )
    )
    db.session.commit()
    return True


# Names nearest a typed one that the look-alike checks judge (quick add, merging), and the
# word similarity that makes one a look-alike (pg_trgm's default threshold, which ``<%``
# applied; a function call, which the planner does not estimate by trying it on a
# thousand sampled rows of search_text, 8 ms of planning where the query takes 1).
NEAR_NAMES = 24
LOOK_ALIKE = 0.6


def look_alikes(
    tenant_id: int, name: str | None, email: str | None, phone: str | None
) -> sa.Select:
    """The ids of the people of the workspace that may be the one described: the same email
    or phone (their indexes), or a similar name: the names nearest to it walked
    nearest-first on the name's index (GiST, migration 0020) and stopped after a few, then
    judged by word similarity to everything known of them outside the walk, so
    a common name is a few milliseconds however many people the base holds."""
    tenant = Contact.tenant_id == tenant_id
    found = []
    if email:
        found.append(sa.select(Contact.id).where(tenant, Contact.email == email))
    if phone:
        found.append(sa.select(Contact.id).where(tenant, Contact.phone == phone))
    if name:
        folded = sa.func.conveyor_fold(name)
        near = (
            sa.select(Contact.id, Contact.search_text)
            .where(tenant)
            .order_by(Contact.search_name.op("<->")(folded))
            .limit(NEAR_NAMES)
            .subquery()
        )
        similar = sa.func.word_similarity(folded, near.c.search_text) >= LOOK_ALIKE
        found.append(sa.select(near.c.id).where(similar))
    return sa.union_all(*found)


def possible_duplicates(contact: Contact) -> list[Contact]:
    """Other records that may be this person: the same email or phone, or a similar name."""
    ids = look_alikes(contact.tenant_id, contact.name, contact.email, contact.phone)
    return list(
        db.session.scalars(
            sa.select(Contact)
            .where(
                Contact.tenant_id == contact.tenant_id,
                Contact.id != contact.id,
                Contact.id.in_(ids),
            )
            .order_by(Contact.id)
            .limit(5)
        )
    )


def merge(membership: Membership, keep: Contact, other: Contact) -> int:
    """Merge ``other`` into ``keep``: every deal (with its touches, promises and timeline)
    moves, the gaps in ``keep``'s details are filled, ``other`` goes, and the audit trail
    and each moved deal's timeline say so. Commits; the number of deals moved."""
    if keep.id == other.id or keep.tenant_id != other.tenant_id:
        raise ValueError("a person merges with another person of the same workspace")
    now = clock.now()
    moved = list(
        db.session.scalars(
            sa.select(Lead.id).where(Lead.tenant_id == keep.tenant_id, Lead.contact_id == other.id)
        )
    )
    db.session.execute(
        sa.update(Lead)
        .where(Lead.tenant_id == keep.tenant_id, Lead.contact_id == other.id)
        .values(contact_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    merged = {"name": other.name, "email": other.email, "phone": other.phone}
    for name in ("email", "phone", "company"):
        if not getattr(keep, name) and getattr(other, name):
            setattr(keep, name, getattr(other, name))
    for lead_id in moved:
        db.session.add(
            LeadEvent(
                tenant_id=keep.tenant_id,
                lead_id=lead_id,
                actor_id=membership.user_id,
                kind=EventKind.PERSON_MERGED,
                data={"name": other.name, "into": keep.name},
                created_at=now,
            )
        )
    db.session.add(
        AuditEntry(
            tenant_id=keep.tenant_id,
            actor_id=membership.user_id,
            action="person.merged",
            data={
                "contact_id": keep.id,
                "merged_id": other.id,
                "merged": merged,
                "deals": len(moved),
            },
            created_at=now,
        )
    )
    db.session.delete(other)
    db.session.commit()
    return len(moved)
