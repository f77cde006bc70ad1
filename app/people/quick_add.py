"""Quick add: a walk-in, a call or a message entered by hand, through the one lead builder.

The lead gets the same dedupe, routing, timeline and radar figures as a post: it is a
``LeadDraft`` from one of the workspace's built-in hand-entry sources, built by
``build_leads`` in the member's transaction.
"""

import secrets
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from app import clock
from app.builder.leads import LeadDraft, build_leads
from app.extensions import db
from app.intake.services import phone_region
from app.models import Contact, Membership, Phase, Source, SourceKind, Tenant
from app.money import read_amount
from app.people.services import look_alikes
from app.pipeline import first_stage
from app.policy import allows

# Built-in sources, created on first use (a quick add) in the workspace's language; the
# owner renames them.
MANUAL_KINDS = {
    "by_hand": _l("Added by hand"),
    "phone_call": _l("Phone call"),
    "walk_in": _l("Walk-in"),
}


@dataclass(slots=True)
class QuickLead:
    """What a member typed about a new lead (email and phone already normalised)."""

    name: str
    email: str | None
    phone: str | None
    source_kind: str  # a key of MANUAL_KINDS
    company: str | None = None
    note: str | None = None
    budget: str | None = None
    decision_date: date | None = None


def manual_choices(tenant: Tenant) -> list[tuple[str, str]]:
    """(kind, name) of the hand-entry sources, for the form. Reads only: a page that offers
    quick add is a GET, and a GET never writes (tests/test_get_crawl.py)."""
    found = _manual_found(tenant)
    with force_locale(tenant.language):
        return [
            (kind, found[kind].name if kind in found else str(default))
            for kind, default in MANUAL_KINDS.items()
        ]


def manual_source(tenant: Tenant, kind: str) -> Source:
    """The workspace's hand-entry source of this kind, made in its language on first use."""
    if kind not in MANUAL_KINDS:
        raise ValueError("not a hand-entry source")
    found = _manual_found(tenant)
    if kind in found:
        return found[kind]
    with force_locale(tenant.language):
        name = str(MANUAL_KINDS[kind])
    taken = db.session.scalar(
        sa.select(Source.id).where(Source.tenant_id == tenant.id, Source.name == name)
    )
    source = Source(
        tenant_id=tenant.id,
        name=name if taken is None else f"{name} ({kind})",
        kind=SourceKind.OTHER,
        manual_kind=kind,
        intake_token=secrets.token_urlsafe(24),
    )
    db.session.add(source)
    db.session.flush()
    return source


def _manual_found(tenant: Tenant) -> dict[str, Source]:
    return {
        source.manual_kind: source
        for source in db.session.scalars(
            sa.select(Source).where(Source.tenant_id == tenant.id, Source.manual_kind.isnot(None))
        )
    }


def quick_add(tenant: Tenant, membership: Membership, typed: QuickLead) -> tuple[int, bool]:
    """Build the lead; (lead id, joined the person's open lead). Commits.

    A lead generator keeps what they add; anyone else's goes round robin to the lead
    generators, as a post would.
    """
    source = manual_source(tenant, typed.source_kind)
    keeps_it = allows(membership, "work.leads")
    draft = LeadDraft(
        name=typed.name,
        email=typed.email,
        phone=typed.phone,
        company=typed.company or None,
        message=typed.note or None,
        budget=typed.budget or None,
        value_minor=read_amount(typed.budget, tenant.language, tenant.currency),
        decision_date=typed.decision_date,
        source_id=source.id,
        source_name=source.name,
        owner_id=membership.user_id if keeps_it else None,
        joins_open_lead=True,
    )
    stage = first_stage(tenant.id, Phase.GENERATION)
    [built] = build_leads(tenant.id, [draft], stage.id, route=not keeps_it, now=clock.now())
    db.session.commit()
    return built.lead_id, built.asked_again


def region(tenant: Tenant) -> str:
    return phone_region(tenant)


def matches(tenant: Tenant, name: str, email: str | None, phone: str | None) -> list[Contact]:
    """People already in the base that the typed details may be: the same email or phone,
    or a similar name (trigram word similarity), best first, at most five."""
    typed = name if len(name.strip()) >= 3 else None
    if not (email or phone or typed):
        return []
    ids = look_alikes(tenant.id, typed, email, phone)
    folded = sa.func.conveyor_fold(name)
    return list(
        db.session.scalars(
            sa.select(Contact)
            .where(Contact.tenant_id == tenant.id, Contact.id.in_(ids))
            .order_by(folded.op("<<->")(Contact.search_text), Contact.id)
            .limit(5)
        )
    )
