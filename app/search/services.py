"""Search people, companies and deals by name, email, phone (any format) and company.

``contact.search_text`` folds each person's name, company, email and phone digits (case,
accents and ё folded by ``conveyor_fold``, migration 0017); ``search_name`` and
``search_company`` fold the name and the company alone (migration 0020). A query asks
each kind of match its own index and keeps a few of each, best first: the names nearest
to it (word similarity forgives typos in Latin and Cyrillic), the people it is part of
(part of an email, the words of a name in order) and the people of companies like it; a
phone is found by its digits. Those few are the people found, and their deals are the
deals found. The owner walks the base (people, companies, deals); everyone else finds
only the deals the policy's scope lets them see, never people or companies as such.
"""

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from app.extensions import db
from app.intake.fields import normalise_phone
from app.models import Contact, Lead, Membership, Stage
from app.policy import allows, leads_visible_to

LIMIT = 8
# People each index path offers: more than are shown, so that the deals found are not cut
# short by people without a deal the member may see.
CANDIDATES = 3 * LIMIT
MIN_LENGTH = 2
# A shorter query has no trigram of its own: it finds the names and companies that start
# with it (an index in byte order) instead of asking the trigram indexes.
TRIGRAM = 3
# People of similar companies walked nearest-first before they are grouped into companies:
# bounded however many people one company or a common word ("company") has; the companies
# nearest the query come first, so a company of thousands leaves fewer shown, never a slow
# answer.
COMPANY_WALK = 25 * LIMIT
# People the query is part of that are ranked for that path: the first hundred the index
# (or a scan, when the planner expects most rows to match) finds, the closest kept.
# Walking them all nearest-first read most of the tree when nearly every row matches
# ("company 12": every phone holds "12"; 90-220 ms at 200,000 people, a few ms so); 500
# ranked cost a common name 4 ms more, 100 about 1.
PART_ROWS = 100
# Word similarity needed for a typo to match: "Jon Smiht" finds "John Smith", "Елкна"
# "Ёлкина"; results come best first, so the looser matches trail.
SIMILARITY = 0.3
_DIGITS = re.compile(r"\d")


@dataclass(slots=True)
class Results:
    query: str
    people: list[Contact] = field(default_factory=list)
    companies: list[tuple[str, int]] = field(default_factory=list)
    deals: list[Lead] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.people or self.companies or self.deals)


def search(membership: Membership, text: str, phone_region: str) -> Results:
    """What the member may find for ``text`` (at most ``LIMIT`` of each kind)."""
    text = text.strip()[:100]
    results = Results(text)
    if len(text) < MIN_LENGTH or _start(text) == "%":  # nothing but LIKE's wildcards
        return results
    walks_people = allows(membership, "people.browse")
    within = Contact.tenant_id == membership.tenant_id
    if not walks_people:  # only the people behind deals the member sees
        visible = sa.select(Lead.contact_id).join(Stage, Stage.id == Lead.stage_id)
        within = sa.and_(within, Contact.id.in_(visible.where(leads_visible_to(membership))))
    db.session.execute(
        sa.select(sa.func.set_config("pg_trgm.word_similarity_threshold", str(SIMILARITY), True))
    )
    phone = _phone(text, phone_region)
    if phone:
        found = _by_phone(phone, within)
    elif len(text) < TRIGRAM:
        found = _by_start(text, within)
    else:
        found = _by_text(text, within)
    rank = dict(db.session.execute(found).all())
    if walks_people and not phone:
        results.companies = _companies(membership, text)
    if not rank:
        return results
    if walks_people:
        people = db.session.scalars(sa.select(Contact).where(Contact.id.in_(list(rank)[:LIMIT])))
        results.people = sorted(people, key=lambda person: (rank[person.id], person.id))
    deals = db.session.scalars(
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(leads_visible_to(membership), Lead.contact_id.in_(list(rank)))
        .options(contains_eager(Lead.stage))
    )
    results.deals = sorted(
        deals,
        key=lambda lead: (rank[lead.contact_id], -lead.last_activity_at.timestamp(), lead.id),
    )[:LIMIT]
    return results


def _phone(text: str, phone_region: str) -> str | None:
    """The digits to look for when ``text`` is mostly digits (a phone written any way)."""
    digits = "".join(_DIGITS.findall(text))
    if len(digits) < 5 or len(digits) < len(text.replace(" ", "")) // 2:
        return None
    e164 = normalise_phone(text, phone_region)
    wanted = (e164 or digits).lstrip("+")
    if e164 and len(digits) < len(wanted):  # typed without the country code
        wanted = digits.lstrip("0")
    return wanted


def _by_phone(digits: str, within: sa.ColumnElement[bool]) -> sa.Select:
    """(contact id, rank) of the people ``within`` whose phone holds ``digits``, newest
    first."""
    return (
        sa.select(Contact.id, sa.literal(0) - Contact.id)
        .where(within, Contact.search_text.like(f"%{digits}%"))
        .order_by(Contact.id.desc())
        .limit(CANDIDATES)
    )


def _by_text(text: str, within: sa.ColumnElement[bool]) -> sa.Select:
    """(contact id, rank) of the people ``within`` that match ``text``, best first.

    Three index paths, each LIMIT'd so that it stops early: the names most similar to the
    query (GiST, walked nearest-first; whole-string similarity, which the index answers
    without reading the rows, where word similarity rechecks every row it passes), the
    people it is part of, its words in order (LIKE: part of an email, a Latin spelling of
    a Cyrillic name; the first ``PART_ROWS`` found, the closest of them kept) and the
    people of companies like it (GiST, nearest-first). The cut and
    the ranking, by word similarity to everything known of the person, then look at
    those few rows only.
    """
    folded = sa.func.conveyor_fold(sa.literal(text))
    words = text.lower().replace("\\", "").replace("%", "").replace("_", "\\_").split()
    part = Contact.search_text.like(sa.func.conveyor_fold(sa.literal(f"%{'%'.join(words)}%")))
    matching = (
        sa.select(Contact.id, Contact.search_text).where(within, part).limit(PART_ROWS).subquery()
    )
    paths = [
        sa.select(Contact.id)
        .where(within)
        .order_by(Contact.search_name.op("<->")(folded))
        .limit(CANDIDATES),
        sa.select(matching.c.id)
        .order_by(matching.c.search_text.op("<->>")(folded))
        .limit(CANDIDATES),
        sa.select(Contact.id)
        .where(within, Contact.search_company.op("%>")(folded))
        .order_by(Contact.search_company.op("<->>")(folded))
        .limit(CANDIDATES),
    ]
    rank = folded.op("<<->")(Contact.search_text)
    return (
        sa.select(Contact.id, rank)
        .where(
            Contact.id.in_(sa.union_all(*paths)),
            sa.or_(sa.func.word_similarity(folded, Contact.search_text) >= SIMILARITY, part),
        )
        .order_by(rank, Contact.id)
        .limit(CANDIDATES)
    )


def _by_start(text: str, within: sa.ColumnElement[bool]) -> sa.Select:
    """(contact id, rank) of the people ``within`` whose name starts with ``text`` (a query
    too short for trigrams), in order of their names: the first few on the index."""
    name = Contact.search_name.collate("C")
    order = (name, Contact.id)
    return (
        sa.select(Contact.id, sa.func.row_number().over(order_by=order))
        .where(within, name.like(sa.func.conveyor_fold(sa.literal(_start(text)))))
        .order_by(*order)
        .limit(CANDIDATES)
    )


def _start(text: str) -> str:
    """A LIKE pattern for what starts with ``text`` (its own wildcards dropped)."""
    return text.replace("\\", "").replace("%", "").replace("_", "") + "%"


def _companies(membership: Membership, text: str) -> list[tuple[str, int]]:
    """Companies whose name is like ``text`` (typos forgiven), or starts with it when it is
    too short for trigrams, with the number of their people (exact, counted on an index
    for the few shown only). Companies that fold alike ("ACME", "Acme") are one."""
    tenant = Contact.tenant_id == membership.tenant_id
    key = Contact.search_company.collate("C")
    if len(text) < TRIGRAM:  # from one company to the next in byte order, at most LIMIT
        starts = key.like(sa.func.conveyor_fold(sa.literal(_start(text))))
        first = (
            sa.select(sa.literal(1).label("at"), Contact.search_company.label("key"))
            .where(tenant, starts)
            .order_by(key)
            .limit(1)
            .cte("walk", recursive=True)
        )
        after = (
            sa.select(Contact.search_company)
            .where(tenant, starts, key > first.c.key)
            .order_by(key)
            .limit(1)
            .lateral("after")
        )
        walk = first.union_all(
            sa.select(first.c.at + 1, after.c.search_company)
            .select_from(first.join(after, sa.true()))
            .where(first.c.at < LIMIT)
        )
        shown = sa.select(walk.c.key, walk.c.at).subquery()
    else:  # people of similar companies nearest-first, a bounded walk, then grouped
        folded = sa.func.conveyor_fold(sa.literal(text))
        distance = Contact.search_company.op("<->>")(folded)
        near = (
            sa.select(Contact.search_company.label("key"), distance.label("at"))
            .where(tenant, Contact.search_company.op("%>")(folded))
            .order_by(distance)
            .limit(COMPANY_WALK)
            .subquery()
        )
        shown = (
            sa.select(near.c.key, sa.func.min(near.c.at).label("at"))
            .group_by(near.c.key)
            .order_by(sa.func.min(near.c.at), near.c.key)
            .limit(LIMIT)
            .subquery()
        )
    people = sa.select(sa.func.count()).where(tenant, key == shown.c.key)
    name = sa.select(Contact.company).where(tenant, key == shown.c.key).limit(1)
    return [
        (company, count)
        for company, count in db.session.execute(
            sa.select(name.scalar_subquery(), people.scalar_subquery())
            .select_from(shown)
            .order_by(shown.c.at, shown.c.key)
        )
    ]
