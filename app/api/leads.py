"""Creating and changing leads from the API with the app's own rules.

A new lead is built in the request by the one lead builder (``build_leads``), after the
same judgement as a post to a source's intake address: the caller gets the lead back at
once (201) rather than a receipt, and the builder's workspace lock, contact merging and
routing apply as for every other lead. Changes go through the conveyor's services, so a
move into conversion without problem, money and timing is refused with the board's reason.
"""

import sqlalchemy as sa
from flask_babel import gettext as _

from app import clock
from app.api.problems import Problem
from app.api.records import filter_id, leads_query, need, visible_lead_or_404
from app.api.schemas import LeadChange, NewLead
from app.builder.leads import LeadDraft, build_leads
from app.conveyor import services as conveyor
from app.extensions import db
from app.intake import fields as intake_fields
from app.intake.services import phone_region
from app.models import Lead, LostReason, Membership, Phase, Source, Stage, Tenant
from app.pipeline import first_stage
from app.radar import alerts


def create_lead(membership: Membership, tenant: Tenant, body: NewLead) -> int:
    """Judge the fields as intake does, build the lead, commit; the new lead's id."""
    need(membership, "leads.generation")
    source = None
    if body.source_id:
        source = db.session.scalar(
            sa.select(Source).where(
                Source.tenant_id == tenant.id,
                Source.id == filter_id("source", body.source_id, "source_id"),
            )
        )
        if source is None:
            raise Problem(422, _("Some fields are not valid."), {"source_id": [_("Unknown id.")]})
    data = body.model_dump(exclude={"source_id", "extra"}, exclude_none=True)
    if body.decision_date:
        data["decision_date"] = body.decision_date.isoformat()
    judgement = intake_fields.judge({**body.extra, **data}, phone_region(tenant))
    if not judgement.ok:
        fields = {name: [str(message)] for name, message in judgement.errors.items()}
        raise Problem(422, _("Some fields are not valid."), fields)
    values = judgement.fields
    stage = first_stage(tenant.id, Phase.GENERATION)
    if stage is None:
        raise Problem(409, _("The workspace has no lead generation stage."))
    draft = LeadDraft(
        name=values.get("name") or "",
        email=judgement.email,
        phone=judgement.phone,
        company=values.get("company") or None,
        message=values.get("message"),
        budget=values.get("budget"),
        external_id=values.get("external_id"),
        decision_date=judgement.decision_date,
        extra=values.get("extra") or {},
        source_id=source.id if source else None,
        source_name=source.name if source else None,
        flagged=bool(source and not source.active),
    )
    (built,) = build_leads(tenant.id, [draft], stage.id, route=True, now=clock.now())
    db.session.commit()
    return built.lead_id


QUALIFICATION = ("problem", "money", "decision_date", "value_minor")


def change_lead(membership: Membership, lead_id: int, change: LeadChange) -> Lead | None:
    """Qualify, move and close through the conveyor's services, in that order, as one
    change: a move or a close that is refused leaves the conditions unsaved too.

    The lead afterwards, or None when the change took it beyond the seat's walls (a
    lead generator's lead sent to conversion).
    """
    lead = visible_lead_or_404(membership, lead_id)
    given = change.model_fields_set
    alert = None
    if given & set(QUALIFICATION):
        need(membership, "leads.qualify")
        alert = conveyor.apply_qualification(
            membership,
            lead,
            change.problem if "problem" in given else (lead.problem or ""),
            change.money if "money" in given else (lead.money or ""),
            change.decision_date if "decision_date" in given else lead.decision_date,
            change.value_minor,
        )
    try:
        if change.stage_id is not None:
            target = db.session.scalar(
                sa.select(Stage).where(
                    Stage.tenant_id == membership.tenant_id,
                    Stage.id == filter_id("stage", change.stage_id, "stage_id"),
                )
            )
            if target is None:
                raise Problem(
                    422, _("Some fields are not valid."), {"stage_id": [_("Unknown id.")]}
                )
            conveyor.move_lead(membership, lead, target)
        if change.lost_reason is not None:
            need(membership, "deals.lose")
            conveyor.lose(membership, lead, LostReason(change.lost_reason), change.lost_note or "")
        db.session.commit()  # the conditions, when nothing after them committed
    except conveyor.MoveRefused as refusal:
        db.session.rollback()
        field = "lost_reason" if change.lost_reason and change.stage_id is None else "stage_id"
        raise Problem(409, str(refusal), {field: [str(refusal)]}) from None
    except BaseException:
        db.session.rollback()
        raise
    alerts.email_owners_after_commit(alert)
    return db.session.scalar(leads_query(membership).where(Lead.id == lead_id))
