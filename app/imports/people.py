"""The people an import batch touches: the contacts its rows join, the members who get them."""

import itertools
from collections import deque
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.imports.rows import JudgedRow
from app.models import Contact, Membership, Role
from app.tenancy import ALL_TENANTS


class ContactBook:
    """The contacts one batch may merge with, by email and phone, oldest first.

    The batch equivalent of ``find_or_create_contact``: a row joins the oldest
    contact sharing its email or its phone (in the workspace or earlier in the
    file) and fills the gaps in it; otherwise it becomes a new contact.
    """

    def __init__(self, tenant_id: int, rows: list[JudgedRow]):
        self.tenant_id = tenant_id
        self.by_email: dict[str, Contact] = {}
        self.by_phone: dict[str, Contact] = {}
        self.rank: dict[Contact, int] = {}
        self._counter = itertools.count()
        emails = {row.email for row in rows if row.email}
        phones = {row.phone for row in rows if row.phone}
        if emails or phones:
            existing = db.session.scalars(
                sa.select(Contact)
                .where(
                    Contact.tenant_id == tenant_id,
                    sa.or_(Contact.email.in_(emails), Contact.phone.in_(phones)),
                )
                .order_by(Contact.id)
                .execution_options(**ALL_TENANTS)
            )
            for contact in existing:
                self._remember(contact)

    def _remember(self, contact: Contact) -> None:
        self.rank.setdefault(contact, next(self._counter))
        if contact.email:
            self.by_email.setdefault(contact.email, contact)
        if contact.phone:
            self.by_phone.setdefault(contact.phone, contact)

    def find_or_add(self, row: JudgedRow) -> tuple[Contact, bool]:
        """(contact, merged): the row's contact, and whether it already existed."""
        matches = [
            contact
            for contact in (self.by_email.get(row.email), self.by_phone.get(row.phone))
            if contact is not None
        ]
        if matches:
            contact = min(matches, key=self.rank.__getitem__)
            contact.email = contact.email or row.email
            contact.phone = contact.phone or row.phone
            contact.company = contact.company or row.values.get("company") or None
            self._remember(contact)
            return contact, True
        contact = Contact(
            tenant_id=self.tenant_id,
            name=row.contact_name,
            email=row.email,
            phone=row.phone,
            company=row.values.get("company") or None,
        )
        db.session.add(contact)
        self._remember(contact)
        return contact, False


class LeadRotation:
    """``next_assignee``'s round robin for a whole batch: one read, one write per member."""

    def __init__(self, tenant_id: int):
        members = self._active(tenant_id, Role.LEAD_GENERATOR)
        self.queue = deque(members or self._active(tenant_id, Role.OWNER)[:1])
        self.last_turn: dict[Membership, int] = {}
        self._turns = itertools.count()

    @staticmethod
    def _active(tenant_id: int, role: Role) -> list[Membership]:
        return list(
            db.session.scalars(
                sa.select(Membership)
                .where(
                    Membership.tenant_id == tenant_id,
                    Membership.role == role,
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
