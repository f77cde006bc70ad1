"""Search people, companies and deals by name, email, phone (any format) and company.

``contact.search_text`` folds each person's name, company, email and phone digits (case,
accents and ё folded by ``conveyor_fold``, migration 0017) under a trigram GIN index, so
a query is one indexed lookup: word similarity forgives typos in Latin and Cyrillic, a
substring finds part of an email, and digits find a phone written any way. The owner
walks the base (people, companies, deals); everyone else finds only the deals the
policy's scope lets them see, never people or companies as such.
"""

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from app.extensions import db
from app.intake.fields import normalise_phone
from app.models import Contact, Lead, Membership, Stage
from app.policy import allows, leads_visible_to

LIMIT = 8
MIN_LENGTH = 2
# Word similarity needed for a typo to match: "Jon Smiht" finds "John Smith", "Елкна"
# "Ёлкина"; results come best first, so the looser matches trail.
SIMILARITY = "0.3"
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
    matched, rank = _matching(text, phone_region)
    db.session.execute(
        sa.select(sa.func.set_config("pg_trgm.word_similarity_threshold", SIMILARITY, True))
    )
    if allows(membership, "people.browse"):
        results.people = list(
            db.session.scalars(
                sa.select(Contact)
                .where(Contact.tenant_id == membership.tenant_id, matched)
                .order_by(rank, Contact.id)
                .limit(LIMIT)
            )
        )
        company = sa.func.min(rank)
        results.companies = [
            (name, count)
            for name, count in db.session.execute(
                sa.select(Contact.company, sa.func.count())
                .where(
                    Contact.tenant_id == membership.tenant_id,
                    matched,
                    Contact.company.isnot(None),
                    sa.func.conveyor_fold(sa.literal(text)).op("<%")(
                        sa.func.conveyor_fold(Contact.company)
                    ),
                )
                .group_by(Contact.company)
                .order_by(company, Contact.company)
                .limit(LIMIT)
            )
        ]
    results.deals = list(
        db.session.scalars(
            sa.select(Lead)
            .join(Stage, Stage.id == Lead.stage_id)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(leads_visible_to(membership), matched)
            .order_by(rank, Lead.last_activity_at.desc(), Lead.id)
            .limit(LIMIT)
        )
    )
    return results


def _matching(text: str, phone_region: str):
    """(condition on ``Contact``, its ranking): a phone by its digits, anything else by
    word similarity or as a substring (part of an email)."""
    folded = sa.func.conveyor_fold(sa.literal(text))
    digits = "".join(_DIGITS.findall(text))
    if len(digits) >= 5 and len(digits) >= len(text.replace(" ", "")) // 2:
        e164 = normalise_phone(text, phone_region)
        wanted = (e164 or digits).lstrip("+")
        if e164 and len(digits) < len(wanted):  # typed without the country code
            wanted = digits.lstrip("0")
        return Contact.search_text.like(f"%{wanted}%"), sa.literal(0) - Contact.id  # newest
    pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
    condition = sa.or_(
        folded.op("<%")(Contact.search_text),
        Contact.search_text.like(sa.func.conveyor_fold(sa.literal(pattern))),
    )
    return condition, folded.op("<<->")(Contact.search_text)
