"""The board: columns per stage with counts, sums and the first cards of each.

Whatever the number of deals, a board is three queries: stages, column totals,
and the first cards of every column at once (for each stage, its newest cards read
in the order of the ``(tenant, stage, last activity)`` index and cut at a page).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app import clock
from app.extensions import db
from app.models import Contact, Lead, Membership, Stage, Tenant
from app.policy import allows, scope_leads, visible_phases

CARDS_PER_PAGE = 25
# Won and Lost columns show the deals closed in this many days unless asked for all:
# otherwise they grow forever and bury the open work.
CLOSED_DAYS_SHOWN = 30


@dataclass
class BoardFilters:
    source_id: int | None = None
    owner_id: int | None = None
    text: str = ""
    all_closed: bool = False

    @property
    def active(self) -> bool:
        return bool(self.source_id or self.owner_id or self.text)

    def as_args(self) -> dict:
        args = {
            "source": self.source_id,
            "owner": self.owner_id,
            "q": self.text or None,
            "closed": "all" if self.all_closed else None,
        }
        return {k: v for k, v in args.items() if v}


@dataclass
class Column:
    stage: Stage
    count: int = 0
    value_minor: int = 0
    cards: list["Card"] = field(default_factory=list)
    last_id: int | None = None  # the newest lead and latest activity: the board's stamp
    last_activity: datetime | None = None

    @property
    def has_more(self) -> bool:
        return len(self.cards) < self.count


def _filtered(query, membership: Membership, filters: BoardFilters):
    query = scope_leads(query.where(Lead.tenant_id == membership.tenant_id), membership)
    if filters.source_id:
        query = query.where(Lead.source_id == filters.source_id)
    if filters.owner_id:
        query = query.where(Lead.owner_id == filters.owner_id)
    if not filters.all_closed:
        since = clock.now() - timedelta(days=CLOSED_DAYS_SHOWN)
        closed_on = sa.func.coalesce(Lead.won_at, Lead.closed_at, Lead.last_activity_at)
        query = query.where(
            sa.or_(sa.and_(Stage.is_won.is_(False), Stage.is_lost.is_(False)), closed_on >= since)
        )
    if filters.text:
        pattern = f"%{filters.text.lower()}%"
        if allows(membership, "contacts.record"):
            query = query.join(Contact, Contact.id == Lead.contact_id)
            fields = [Contact.name, Contact.email, Contact.phone, Contact.company]
        else:  # what the post carried, never the record it joined (issue 15, hole 6)
            fields = [Lead.posted[key].as_string() for key in ("name", "email", "phone", "company")]
        query = query.where(
            sa.or_(
                *(sa.func.lower(sa.func.coalesce(field, "")).like(pattern) for field in fields),
                sa.func.lower(Lead.title).like(pattern),
            )
        )
    return query


@dataclass(slots=True, frozen=True)
class CardContact:
    name: str
    email: str | None
    phone: str | None
    company: str | None


@dataclass(slots=True)
class Card:
    """What a board card shows of a deal (``conveyor/_card.html``, and ``contact_card``
    for the name), read as plain rows: hundreds of ORM objects a page cost more than
    the rest of the board."""

    id: int
    tenant_id: int
    stage_id: int
    value_minor: int
    decision_date: date | None
    next_touch_on: date | None
    last_activity_at: datetime
    last_touch_at: datetime | None
    flagged: bool
    posted: dict | None
    contact: CardContact


CARD_FIELDS = (
    Lead.id,
    Lead.tenant_id,
    Lead.stage_id,
    Lead.value_minor,
    Lead.decision_date,
    Lead.next_touch_on,
    Lead.last_activity_at,
    Lead.last_touch_at,
    Lead.flagged,
    Lead.posted,
    Contact.name,
    Contact.email,
    Contact.phone,
    Contact.company,
)


def _cards(lead_ids) -> list[Card]:
    """The cards of the deals ``lead_ids`` (a subquery) selects, newest first."""
    rows = db.session.execute(
        _newest_first(
            sa.select(*CARD_FIELDS)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Lead.id.in_(lead_ids))
        )
    )
    return [Card(*row[:10], CardContact(*row[10:])) for row in rows]


def _newest_first(query):
    return query.order_by(Lead.last_activity_at.desc(), Lead.id.desc())


def build_stage_list(tenant: Tenant, membership: Membership) -> list[Stage]:
    return list(
        db.session.scalars(
            sa.select(Stage)
            .where(Stage.tenant_id == tenant.id, Stage.phase.in_(visible_phases(membership)))
            .order_by(Stage.position)
        )
    )


def stamp(membership: Membership, filters: BoardFilters) -> str:
    """A short mark of what the member's board shows; it changes when any card arrives,
    leaves, moves or is worked on, so an open board knows to refresh itself."""
    count, last_id, last_activity = db.session.execute(
        _filtered(
            sa.select(
                sa.func.count(Lead.id), sa.func.max(Lead.id), sa.func.max(Lead.last_activity_at)
            ).join(Stage, Stage.id == Lead.stage_id),
            membership,
            filters,
        )
    ).one()
    return _mark(count, last_id, last_activity)


def _mark(count: int, last_id: int | None, last_activity: datetime | None) -> str:
    text = f"{count}|{last_id}|{last_activity.isoformat() if last_activity else ''}"
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()


def stamp_of(columns: list["Column"]) -> str:
    """The same mark as ``stamp``, from the totals a board has already counted."""
    activities = [c.last_activity for c in columns if c.last_activity is not None]
    ids = [c.last_id for c in columns if c.last_id is not None]
    return _mark(
        sum(c.count for c in columns),
        max(ids) if ids else None,
        max(activities) if activities else None,
    )


def build(tenant: Tenant, membership: Membership, filters: BoardFilters) -> list[Column]:
    stages = build_stage_list(tenant, membership)
    columns = {stage.id: Column(stage) for stage in stages}
    totals = _filtered(
        sa.select(
            Lead.stage_id,
            sa.func.count(Lead.id),
            sa.func.coalesce(sa.func.sum(Lead.value_minor), 0),
            sa.func.max(Lead.id),
            sa.func.max(Lead.last_activity_at),
        ).join(Stage, Stage.id == Lead.stage_id),
        membership,
        filters,
    ).group_by(Lead.stage_id)
    for stage_id, count, value, last_id, last_activity in db.session.execute(totals):
        if stage_id in columns:
            column = columns[stage_id]
            column.count, column.value_minor = count, value
            column.last_id, column.last_activity = last_id, last_activity
    # Each column's first page: a LATERAL subquery per stage walks the stage's index
    # newest first and stops at a page (a window over every deal would sort them all).
    column_stage = aliased(Stage)
    page = (
        _newest_first(
            _filtered(
                sa.select(Lead.id).join(Stage, Stage.id == Lead.stage_id),
                membership,
                filters,
            ).where(Lead.stage_id == column_stage.id)
        )
        .limit(CARDS_PER_PAGE)
        .lateral()
    )
    first_pages = (
        sa.select(page.c.id)
        .select_from(column_stage)
        .join(page, sa.true())
        .where(column_stage.id.in_(list(columns)))
    )
    for card in _cards(first_pages):
        columns[card.stage_id].cards.append(card)
    return list(columns.values())


def more_cards(
    membership: Membership, stage: Stage, filters: BoardFilters, after: tuple[datetime, int]
) -> list[Card]:
    """The next page of one column, after the card (last activity, id) shown last."""
    activity, lead_id = after
    query = _filtered(
        sa.select(Lead.id).join(Stage, Stage.id == Lead.stage_id).where(Lead.stage_id == stage.id),
        membership,
        filters,
    ).where(
        sa.or_(
            Lead.last_activity_at < activity,
            sa.and_(Lead.last_activity_at == activity, Lead.id < lead_id),
        )
    )
    return _cards(_newest_first(query).limit(CARDS_PER_PAGE))
