"""The people a batch of new leads touches: the contacts they join, the members who get them."""

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from app.builder.bulk import insert_rows_returning_ids
from app.extensions import db
from app.models import Contact, Membership
from app.policy import holding
from app.tenancy import ALL_TENANTS

if TYPE_CHECKING:
    from app.builder.leads import LeadDraft

# Values per lookup statement (a batch's emails, then its phones, in statements of at most
# this many): one OR of both lists made PostgreSQL scan all the workspace's contacts.
LOOKUP_CHUNK = 1000


@dataclass(slots=True, eq=False)
class NewContact:
    """A contact this batch creates: the columns ``Contact`` gets, without the ORM's upkeep."""

    tenant_id: int
    name: str
    email: str | None
    phone: str | None
    company: str | None
    id: int | None = None


class ContactBook:
    """The contacts one batch may merge with, by email and phone, oldest first.

    A new lead joins the oldest contact sharing its email or its phone (in the
    workspace or earlier in the batch) and fills the gaps in it; otherwise it
    becomes a new contact. Known contacts are ORM objects (the flush writes what
    was filled in); new ones are written together by ``insert_new``.
    """

    def __init__(self, tenant_id: int, drafts: "list[LeadDraft]"):
        self.tenant_id = tenant_id
        self.by_email: dict[str, Contact | NewContact] = {}
        self.by_phone: dict[str, Contact | NewContact] = {}
        self.rank: dict[Contact | NewContact, int] = {}
        self.new: list[NewContact] = []
        self._counter = itertools.count()
        found: dict[int, Contact] = {}
        # psycopg prepares a statement it has run five times, and PostgreSQL may then keep
        # a generic plan made before ``contact`` had statistics: the ``= ANY`` lookups
        # below scanned the whole workspace (371 ms instead of 6 ms per 1,000 emails), so
        # each batch of an import ran slower than the last. Plan them for their values.
        db.session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        for column, values in (
            (Contact.email, sorted({draft.email for draft in drafts if draft.email})),
            (Contact.phone, sorted({draft.phone for draft in drafts if draft.phone})),
        ):
            for start in range(0, len(values), LOOKUP_CHUNK):
                found.update(
                    (contact.id, contact)
                    for contact in db.session.scalars(
                        sa.select(Contact)
                        .where(
                            Contact.tenant_id == tenant_id,
                            _one_of(column, values[start : start + LOOKUP_CHUNK]),
                        )
                        .execution_options(**ALL_TENANTS)
                    )
                )
        for contact_id in sorted(found):  # oldest first, as one query ordered by id gave them
            self._remember(found[contact_id])

    def _remember(self, contact: Contact | NewContact) -> None:
        self.rank.setdefault(contact, next(self._counter))
        if contact.email:
            self.by_email.setdefault(contact.email, contact)
        if contact.phone:
            self.by_phone.setdefault(contact.phone, contact)

    def find_or_add(self, draft: "LeadDraft") -> tuple[Contact | NewContact, bool]:
        """(contact, merged): the draft's contact, and whether it already existed."""
        matches = [
            contact
            for contact in (self.by_email.get(draft.email), self.by_phone.get(draft.phone))
            if contact is not None
        ]
        if matches:
            contact = min(matches, key=self.rank.__getitem__)
            contact.email = contact.email or draft.email
            contact.phone = contact.phone or draft.phone
            contact.company = contact.company or draft.company
            self._remember(contact)
            return contact, True
        contact = NewContact(
            tenant_id=self.tenant_id,
            name=draft.contact_name,
            email=draft.email,
            phone=draft.phone,
            company=draft.company,
        )
        self.new.append(contact)
        self._remember(contact)
        return contact, False

    def insert_new(self) -> None:
        """Write the new contacts in one go and give each its id."""
        ids = insert_rows_returning_ids(
            Contact.__table__,
            [
                {
                    "tenant_id": contact.tenant_id,
                    "name": contact.name,
                    "email": contact.email,
                    "phone": contact.phone,
                    "company": contact.company,
                }
                for contact in self.new
            ],
        )
        for contact, new_id in zip(self.new, ids, strict=True):
            contact.id = new_id


def _one_of(column: sa.Column, values: list[str]) -> sa.ColumnElement[bool]:
    """``column = ANY(array)``: one parameter to send and parse instead of one per value
    (as ``IN`` would), and the same plan (the column's index or a scan)."""
    return column == sa.any_(sa.bindparam("values", values, type_=ARRAY(column.type)))


class LeadRotation:
    """Round robin over active lead generators (the first active owner when there are
    none) for a whole batch: one read, one write per member."""

    def __init__(self, tenant_id: int):
        members = self._active(tenant_id, "work.leads")
        self.queue = deque(members or self._active(tenant_id, "work.unclaimed")[:1])
        self.last_turn: dict[Membership, int] = {}
        self._turns = itertools.count()

    @staticmethod
    def _active(tenant_id: int, permission: str) -> list[Membership]:
        return list(
            db.session.scalars(
                sa.select(Membership)
                .where(
                    Membership.tenant_id == tenant_id,
                    holding(permission),
                    Membership.active.is_(True),
                )
                .order_by(Membership.last_assigned_at.asc().nulls_first(), Membership.id)
                .execution_options(**ALL_TENANTS)
            )
        )

    def next_user_id(self) -> int | None:
        """The member assigned longest ago, who then goes to the back of the line."""
        if not self.queue:
            return None
        member = self.queue.popleft()
        self.queue.append(member)
        self.last_turn[member] = next(self._turns)
        return member.user_id

    def record(self, now: datetime) -> None:
        """Stamp each assigned member in turn order, so live intake continues the rotation."""
        ordered = sorted(self.last_turn, key=self.last_turn.__getitem__)
        for offset, member in enumerate(ordered, start=1 - len(ordered)):
            member.last_assigned_at = now + timedelta(microseconds=offset)
