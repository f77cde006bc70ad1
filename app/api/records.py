"""Rows as API records, and the listings behind each resource, inside the policy's walls.

Every query here starts from the acting seat (``g.membership``): leads and clients
through ``leads_visible_to`` / ``clients_visible_to``, the rest by named permission.
A page is at most ``limit`` rows after the cursor, in id order: one query per page
(two with the people's or stages' names joined in).
"""

import sqlalchemy as sa
from flask_babel import gettext as _
from pydantic import TypeAdapter
from sqlalchemy.orm import contains_eager

from app.api import ids
from app.api.problems import Problem
from app.extensions import db
from app.models import Conflict, Contact, Lead, Membership, Promise, Source, Stage, Tenant, Touch
from app.policy import allows, clients_visible_to, leads_visible_to, visible_phases

_JSON = TypeAdapter(dict)


def as_json(record: dict) -> dict:
    """A record as the API answers it: dates and times in ISO 8601 (``2026-11-24``,
    ``2026-11-24T09:00:00Z``) as in webhook payloads, not Flask's default HTTP dates."""
    return _JSON.dump_python(record, mode="json")


def lead_status(lead: Lead) -> str:
    if lead.churned_at is not None:
        return "churned"
    if lead.stage.is_lost:
        return "lost"
    if lead.won_at is not None or lead.stage.is_won:
        return "won"
    return "open"


def lead_record(lead: Lead, tenant: Tenant) -> dict:
    return {
        "id": ids.encode("lead", lead.id),
        "title": lead.title,
        "person_id": ids.encode("person", lead.contact_id),
        "source_id": ids.encode("source", lead.source_id),
        "stage_id": ids.encode("stage", lead.stage_id),
        "stage": lead.stage.name,
        "phase": lead.stage.phase.value,
        "status": lead_status(lead),
        "owner_id": ids.encode("user", lead.owner_id),
        "problem": lead.problem,
        "money": lead.money,
        "decision_date": lead.decision_date,
        "qualified": lead.is_qualified,
        "value_minor": lead.value_minor,
        "currency": tenant.currency,
        "message": lead.message,
        "budget": lead.budget,
        "external_id": lead.external_id,
        "lost_reason": lead.lost_reason,
        "next_touch_on": lead.next_touch_on,
        "cadence_days": lead.cadence_days,
        "last_touch_at": lead.last_touch_at,
        "created_at": lead.created_at,
        "updated_at": lead.last_activity_at,
        "won_at": lead.won_at,
        "closed_at": lead.closed_at,
        "churned_at": lead.churned_at,
    }


def person_record(contact: Contact) -> dict:
    return {
        "id": ids.encode("person", contact.id),
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "company": contact.company,
        "created_at": contact.created_at,
    }


def stage_record(stage: Stage) -> dict:
    return {
        "id": ids.encode("stage", stage.id),
        "name": stage.name,
        "phase": stage.phase.value,
        "position": stage.position,
        "is_won": stage.is_won,
        "is_lost": stage.is_lost,
    }


def source_record(source: Source) -> dict:
    return {
        "id": ids.encode("source", source.id),
        "name": source.name,
        "kind": source.kind.value,
        "active": source.active,
        "cost_per_lead_minor": source.cost_per_lead_minor,
        "created_at": source.created_at,
    }


def touch_record(touch: Touch) -> dict:
    return {
        "id": ids.encode("touch", touch.id),
        "lead_id": ids.encode("lead", touch.lead_id),
        "actor_id": ids.encode("user", touch.actor_id),
        "channel": touch.channel.value,
        "outcome": touch.outcome,
        "note": touch.note,
        "happened_at": touch.happened_at,
    }


def promise_record(promise: Promise) -> dict:
    return {
        "id": ids.encode("promise", promise.id),
        "lead_id": ids.encode("lead", promise.lead_id),
        "text": promise.text,
        "discount_percent": promise.discount_percent,
        "due_on": promise.due_on,
        "status": promise.status.value,
        "flag_reason": promise.flag_reason,
        "created_at": promise.created_at,
        "decided_at": promise.decided_at,
    }


def conflict_record(conflict: Conflict) -> dict:
    return {
        "id": ids.encode("conflict", conflict.id),
        "kind": conflict.kind.value,
        "status": conflict.status.value,
        "lead_id": ids.encode("lead", conflict.lead_id),
        "source_id": ids.encode("source", conflict.source_id),
        "promise_id": ids.encode("promise", conflict.promise_id),
        "details": conflict.details or {},
        "created_at": conflict.created_at,
        "resolved_at": conflict.resolved_at,
    }


# --- Reading ids and pages -------------------------------------------------------------------


def id_or_404(kind: str, value: str) -> int:
    number = ids.decode(kind, value)
    if number is None:
        raise Problem(404, _("There is nothing here, or your token may not see it."))
    return number


def filter_id(kind: str, value: str, field: str) -> int:
    """An id given as a filter: an id of another kind is the caller's mistake (422)."""
    number = ids.decode(kind, value)
    if number is None:
        raise Problem(422, _("Some fields are not valid."), {field: [_("Unknown id.")]})
    return number


def page(query, model, kind: str, args, updated_column=None) -> tuple[list, str | None]:
    """Up to ``args.limit`` rows after the cursor, by id; and the next cursor (or None)."""
    if args.cursor:
        query = query.where(model.id > filter_id(kind, args.cursor, "cursor"))
    if args.updated_since is not None and updated_column is not None:
        if args.updated_since.tzinfo is None:
            raise Problem(
                422, _("Some fields are not valid."), {"updated_since": [_("Give a time zone.")]}
            )
        query = query.where(updated_column >= args.updated_since)
    rows = list(db.session.scalars(query.order_by(model.id).limit(args.limit + 1)).unique())
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    return rows, ids.encode(kind, rows[-1].id) if more and rows else None


def need(membership: Membership, permission: str) -> None:
    if not allows(membership, permission):
        raise Problem(403, _("The seat this token acts for may not do this."))


# --- Queries inside the walls ----------------------------------------------------------------


def leads_query(membership: Membership, clients_only: bool = False):
    condition = clients_visible_to(membership) if clients_only else leads_visible_to(membership)
    return (
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(condition)
        .options(contains_eager(Lead.stage))
    )


def visible_lead_or_404(membership: Membership, lead_id: int, clients_only: bool = False) -> Lead:
    lead = db.session.scalar(leads_query(membership, clients_only).where(Lead.id == lead_id))
    if lead is None:
        raise Problem(404, _("There is nothing here, or your token may not see it."))
    return lead


def people_query(membership: Membership):
    """People behind at least one lead the seat may see."""
    visible = (
        sa.select(Lead.id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.contact_id == Contact.id, leads_visible_to(membership))
    )
    return sa.select(Contact).where(Contact.tenant_id == membership.tenant_id, visible.exists())


def stages_query(membership: Membership):
    return sa.select(Stage).where(
        Stage.tenant_id == membership.tenant_id, Stage.phase.in_(visible_phases(membership))
    )


def touches_query(membership: Membership):
    visible = (
        sa.select(Lead.id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.id == Touch.lead_id, leads_visible_to(membership))
    )
    return sa.select(Touch).where(Touch.tenant_id == membership.tenant_id, visible.exists())


def promises_query(membership: Membership):
    visible = (
        sa.select(Lead.id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.id == Promise.lead_id, clients_visible_to(membership))
    )
    return sa.select(Promise).where(Promise.tenant_id == membership.tenant_id, visible.exists())
