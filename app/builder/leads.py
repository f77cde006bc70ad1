"""Building new leads in batches: the one place where a lead is created from outside.

Web posts, the hosted form, re-processed inbox rows and CSV imports all end here as
``LeadDraft``s. One call builds a workspace's batch in a handful of statements
whatever its size: the contacts it may merge with (by normalised email, by E.164
phone), the lead generators it rotates through, ``COPY`` of the new contacts, leads
and timeline lines, and the generators' stamps. A workspace is built by one builder
at a time (a transaction-level advisory lock), so two builders never make the same
new contact twice or hand out the same turn of the rotation.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from app import clock
from app.builder.bulk import insert_rows, insert_rows_returning_ids
from app.builder.people import ContactBook, LeadRotation
from app.extensions import db
from app.models import Contact, EventKind, Lead, LeadEvent, Phase, Stage
from app.webhooks import events as webhook_events

# The first key of the two-key advisory lock a workspace's builds take ("LEAD").
WORKSPACE_LOCK = 0x4C454144


@dataclass(slots=True)
class LeadDraft:
    """One lead to build: who it is about, what was said, where it came from."""

    name: str
    email: str | None
    phone: str | None
    company: str | None = None
    message: str | None = None
    budget: str | None = None
    external_id: str | None = None
    decision_date: date | None = None
    utm: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    source_id: int | None = None
    source_name: str | None = None  # named on the timeline line of a lead from a source
    flagged: bool = False  # its source was paused or the workspace's billing had lapsed
    key_reused: bool = False  # its post reused another post's key with other contact details
    arrived_at: datetime | None = None  # when the post came (empty: now)
    owner_id: int | None = None  # who gets it when the batch is not routed
    next_touch_on: date | None = None
    last_touch_at: datetime | None = None
    value_minor: int | None = None  # the deal's value, read from the budget or a value field
    joins_open_lead: bool = False  # a repeat from a person with an open lead joins it (posts)

    @property
    def contact_name(self) -> str:
        return self.name or self.email or self.phone or "?"

    @property
    def title(self) -> str:
        return (self.company or self.contact_name)[:200]

    @property
    def posted(self) -> dict:
        """The contact details as posted, kept on the lead: what a member who may not see
        the contact it joins is shown (``app.leads.services.contact_card``)."""
        return {
            "name": self.contact_name,
            "email": self.email,
            "phone": self.phone,
            "company": self.company,
        }


@dataclass(slots=True)
class BuiltLead:
    lead_id: int
    merged: bool  # joined a contact that already existed
    asked_again: bool = False  # joined the person's open lead instead of making a new one


def lock_workspace(tenant_id: int) -> None:
    """Wait until no other transaction builds this workspace's leads; held until commit."""
    db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(WORKSPACE_LOCK, tenant_id))).scalar()


def build_leads(
    tenant_id: int,
    drafts: list[LeadDraft],
    stage_id: int,
    route: bool,
    now: datetime | None = None,
) -> list[BuiltLead]:
    """Write the drafts' contacts, leads and timeline lines, in the caller's transaction.

    ``route``: the leads go round robin to active lead generators (the first active
    owner when there are none); otherwise each goes to its draft's ``owner_id``.
    Returns one ``BuiltLead`` per draft, in order.
    """
    if not drafts:
        return []
    now = now or clock.now()
    lock_workspace(tenant_id)
    book = ContactBook(tenant_id, drafts)
    placed = [book.find_or_add(draft) for draft in drafts]
    db.session.flush()  # what the drafts filled in on contacts already stored
    book.insert_new()
    joined = _join_open_leads(tenant_id, drafts, placed, now)
    fresh = [i for i in range(len(drafts)) if i not in joined]
    rotation = LeadRotation(tenant_id) if route else None
    rows = [
        _lead_row(tenant_id, drafts[i], placed[i][0].id, stage_id, rotation, now) for i in fresh
    ]
    # Bulk inserts on the tables: the ORM's per-row bookkeeping would double the cost.
    lead_ids = insert_rows_returning_ids(Lead.__table__, rows)
    insert_rows(
        LeadEvent.__table__,
        [
            {
                "tenant_id": tenant_id,
                "lead_id": lead_id,
                "actor_id": None,
                "kind": EventKind.INTAKE,
                "data": {"source": draft.source_name},
                "created_at": row["created_at"],
            }
            for draft, lead_id, row in zip((drafts[i] for i in fresh), lead_ids, rows, strict=True)
            if draft.source_id is not None
        ],
    )
    if rotation is not None:
        rotation.record(now)
    webhook_events.leads_created(db.session, tenant_id, lead_ids)
    new_ids = dict(zip(fresh, lead_ids, strict=True))
    return [
        BuiltLead(joined[i], True, True) if i in joined else BuiltLead(new_ids[i], merged)
        for i, (_, merged) in enumerate(placed)
    ]


def _join_open_leads(tenant_id: int, drafts: list, placed: list, now: datetime) -> dict[int, int]:
    """A repeat post from a person who has an open lead (not yet won, lost or a client)
    joins it: an "asked again" line on its timeline, and the card rises. Returns
    {draft index: lead id} for the drafts that joined."""
    known = {
        contact.id
        for draft, (contact, merged) in zip(drafts, placed, strict=True)
        if draft.joins_open_lead and merged and isinstance(contact, Contact)
    }
    if not known:
        return {}
    open_lead_of: dict[int, int] = {}
    for contact_id, lead_id in db.session.execute(
        sa.select(Lead.contact_id, Lead.id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Lead.tenant_id == tenant_id,
            Lead.contact_id.in_(known),
            Stage.phase != Phase.ACCOUNT,
            Stage.is_won.is_(False),
            Stage.is_lost.is_(False),
        )
        .order_by(Lead.last_activity_at, Lead.id)
        .execution_options(all_tenants=True)
    ):
        open_lead_of[contact_id] = lead_id  # the most recently worked on wins
    joined = {
        i: open_lead_of[contact.id]
        for i, (contact, _) in enumerate(placed)
        if drafts[i].joins_open_lead and isinstance(contact, Contact) and contact.id in open_lead_of
    }
    events, risen = [], {}
    for i, lead_id in joined.items():
        draft = drafts[i]
        at = draft.arrived_at or now
        risen[lead_id] = max(at, risen.get(lead_id, at))
        events.append(
            {
                "tenant_id": tenant_id,
                "lead_id": lead_id,
                "actor_id": None,
                "kind": EventKind.ASKED_AGAIN,
                "data": {"source": draft.source_name, "message": (draft.message or "")[:500]},
                "created_at": at,
            }
        )
    insert_rows(LeadEvent.__table__, events)
    for lead_id, at in risen.items():
        db.session.execute(
            sa.update(Lead)
            .where(Lead.tenant_id == tenant_id, Lead.id == lead_id)
            .values(last_activity_at=at)
            .execution_options(synchronize_session=False, all_tenants=True)
        )
    return joined


def _lead_row(
    tenant_id: int,
    draft: LeadDraft,
    contact_id: int,
    stage_id: int,
    rotation: LeadRotation | None,
    now: datetime,
) -> dict:
    created_at = draft.arrived_at or now
    return {
        "tenant_id": tenant_id,
        "contact_id": contact_id,
        "source_id": draft.source_id,
        "stage_id": stage_id,
        "owner_id": rotation.next_user_id() if rotation is not None else draft.owner_id,
        "title": draft.title,
        "value_minor": draft.value_minor or 0,
        "money": draft.budget or None,  # a budget is what the Money condition notes
        "message": draft.message or None,
        "budget": draft.budget or None,
        "external_id": draft.external_id or None,
        "decision_date": draft.decision_date,
        "next_touch_on": draft.next_touch_on,
        "last_activity_at": draft.last_touch_at or created_at,
        "last_touch_at": draft.last_touch_at,
        "utm": draft.utm,
        "extra": draft.extra,
        "flagged": draft.flagged,
        "key_reused": draft.key_reused,
        "posted": draft.posted,
        "created_at": created_at,
        "stage_entered_at": created_at,
    }
