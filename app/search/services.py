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
    if len(text) < MIN_LENGTH:
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
    found = _by_phone(phone, within) if phone else _by_text(text, within)
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
    people it is part of, its words in order (GiST, LIKE: part of an email, a Latin
    spelling of a Cyrillic name) and the people of companies like it (GIN). The cut and
    the ranking, by word similarity to everything known of the person, then look at
    those few rows only.
    """
    folded = sa.func.conveyor_fold(sa.literal(text))
    words = text.lower().replace("\\", "").replace("%", "").replace("_", "\\_").split()
    part = Contact.search_text.like(sa.func.conveyor_fold(sa.literal(f"%{'%'.join(words)}%")))
    paths = [
        sa.select(Contact.id)
        .where(within)
        .order_by(Contact.search_name.op("<->")(folded))
        .limit(CANDIDATES),
        sa.select(Contact.id)
        .where(within, part)
        .order_by(Contact.search_text.op("<->>")(folded))
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


def _companies(membership: Membership, text: str) -> list[tuple[str, int]]:
    """Companies whose name is like ``text`` (typos forgiven), with their people."""
    folded = sa.func.conveyor_fold(sa.literal(text))
    return [
        (name, count)
        for name, count in db.session.execute(
            sa.select(Contact.company, sa.func.count())
            .where(
                Contact.tenant_id == membership.tenant_id,
                Contact.search_company.op("%>")(folded),
            )
            .group_by(Contact.company)
            .order_by(sa.func.min(folded.op("<<->")(Contact.search_company)), Contact.company)
            .limit(LIMIT)
        )
    ]
