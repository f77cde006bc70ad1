"""Moving leads along the conveyor: the rules between stages live here.

Each public function takes the acting member and commits once.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from app import clock
from app.extensions import db
from app.models import Conflict, Lead, Membership, Phase, Stage, Tenant, User
from app.models.activity import EventKind, LeadEvent, LostReason, Touch, TouchChannel
from app.pipeline import first_stage
from app.policy import allows, may_see_lead, member_who, members_who, visible_phases
from app.radar import alerts


class MoveRefused(ValueError):
    """A rule forbids the change; the message says why, for the person who tried."""


def local_today(tenant: Tenant) -> date:
    return clock.workspace_today(tenant)


def lead_for_member_or_404(membership: Membership, lead_id: int) -> Lead:
    """The lead, if it is in this workspace and the member's role may see it."""
    lead = db.session.scalar(
        sa.select(Lead)
        .where(Lead.id == lead_id, Lead.tenant_id == membership.tenant_id)
        .options(
            joinedload(Lead.stage),
            joinedload(Lead.contact),
            joinedload(Lead.source),
            joinedload(Lead.owner),
        )
    )
    if lead is None or not may_see_lead(membership, lead, lead.stage):
        abort(404)
    return lead


def stages(tenant: Tenant, phases: tuple[Phase, ...] | None = None) -> list[Stage]:
    query = sa.select(Stage).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
    if phases:
        query = query.where(Stage.phase.in_(phases))
    return list(db.session.scalars(query))


def _stage_where(tenant_id: int, **flags) -> Stage:
    return db.session.scalar(
        sa.select(Stage)
        .where(
            Stage.tenant_id == tenant_id,
            *[getattr(Stage, name).is_(value) for name, value in flags.items()],
        )
        .order_by(Stage.position)
        .limit(1)
    )


def record_event(lead: Lead, actor: User | None, kind: EventKind, **data) -> LeadEvent:
    event = LeadEvent(
        tenant_id=lead.tenant_id,
        lead_id=lead.id,
        actor_id=actor.id if actor else None,
        kind=kind,
        data=data,
    )
    db.session.add(event)
    lead.last_activity_at = clock.now()
    return event


def move_lead(membership: Membership, lead: Lead, target: Stage) -> Lead:
    """Move a card on the board, or refuse with the reason."""
    current = lead.stage
    if target.id == current.id:
        return lead
    if target.tenant_id != lead.tenant_id:
        abort(404)
    if target.phase not in visible_phases(membership):
        raise MoveRefused(_l("Your role does not work in that stage."))
    if target.is_won:
        raise MoveRefused(_l("Win the deal from its page: the hand-off needs the promises made."))
    if target.is_lost:
        raise MoveRefused(_l("Close the deal as lost from its page: a reason is needed."))
    if target.phase == Phase.ACCOUNT and current.phase != Phase.ACCOUNT:
        raise MoveRefused(_l("A deal becomes a client by winning it, with a hand-off."))
    if current.phase == Phase.GENERATION and target.phase == Phase.CONVERSION:
        if not lead.is_qualified:
            raise MoveRefused(_l("Record the problem, the money and the timing before conversion."))
        return _send_to_conversion(membership, lead, target, closer_id=None)
    going_back = current.phase != Phase.GENERATION and target.phase == Phase.GENERATION
    if going_back and not allows(membership, "deals.send_back"):
        raise MoveRefused(_l("Only the owner can send a deal back to lead generation."))
    if current.is_won or current.is_lost:
        raise MoveRefused(_l("This deal is closed."))
    lead.stage_id = target.id
    record_event(
        lead,
        membership.user,
        EventKind.STAGE_MOVED,
        **{
            "from": current.name,
            "to": target.name,
        },
    )
    db.session.commit()
    return lead


def save_qualification(
    membership: Membership,
    lead: Lead,
    problem: str,
    money: str,
    decision_date: date | None,
    value_minor: int | None = None,
) -> Lead:
    """Record the three conditions of a sale (any may still be empty)."""
    alert = apply_qualification(membership, lead, problem, money, decision_date, value_minor)
    db.session.commit()
    alerts.email_owners_after_commit(alert)
    return lead


def apply_qualification(
    membership: Membership,
    lead: Lead,
    problem: str,
    money: str,
    decision_date: date | None,
    value_minor: int | None = None,
) -> Conflict | None:
    """``save_qualification`` without the commit, for a change that commits it with more
    (the API's one PATCH); the quality alert it raised, to email once committed."""
    was_qualified = lead.is_qualified
    lead.problem = problem.strip() or None
    lead.money = money.strip() or None
    lead.decision_date = decision_date
    if value_minor is not None:
        lead.value_minor = value_minor
    alert = None
    if lead.is_qualified and not was_qualified:
        lead.qualified_at = clock.now()
        record_event(
            lead,
            membership.user,
            EventKind.QUALIFIED,
            problem=lead.problem,
            money=lead.money,
            decision_date=decision_date.isoformat(),
        )
        alert = alerts.after_verdict(lead)
    else:
        lead.last_activity_at = clock.now()
    return alert


def send_to_conversion(membership: Membership, lead: Lead, closer_id: int | None = None) -> Lead:
    """Pass a qualified lead to a closer: chosen by the owner, or picked by the rules."""
    if lead.stage.phase != Phase.GENERATION:
        raise MoveRefused(_l("This lead is already past lead generation."))
    if not lead.is_qualified:
        raise MoveRefused(_l("Record the problem, the money and the timing before conversion."))
    if closer_id is not None and not allows(membership, "deals.assign"):
        raise MoveRefused(_l("Only the owner assigns a closer by hand."))
    return _send_to_conversion(
        membership, lead, first_stage(lead.tenant_id, Phase.CONVERSION), closer_id
    )


def _send_to_conversion(membership, lead, target: Stage, closer_id: int | None) -> Lead:
    tenant = db.session.get(Tenant, lead.tenant_id)
    if closer_id is not None:
        closer = member_who(tenant.id, closer_id, "work.deals")
        if closer is None:
            raise MoveRefused(_l("Choose an active closer."))
    else:
        closer = pick_closer(tenant)
    assign_to_closer(lead, membership.user, target, closer)
    db.session.commit()
    return lead


def assign_to_closer(lead: Lead, actor: User, stage: Stage, closer: Membership | None) -> None:
    """Put a deal in a conversion stage with its closer (none: the owner assigns it)."""
    lead.stage_id = stage.id
    lead.owner_id = closer.user_id if closer else None
    if closer:
        closer.last_assigned_at = clock.now()
    record_event(
        lead,
        actor,
        EventKind.ASSIGNED,
        phase=Phase.CONVERSION.value,
        to=closer.user.name if closer else None,
        stage=stage.name,
    )


def pick_closer(tenant: Tenant) -> Membership | None:
    """Least loaded (or round robin) among active closers under today's capacity."""
    closers = members_who(tenant.id, "work.deals")
    if not closers:
        return None
    today_start = datetime.combine(
        local_today(tenant), datetime.min.time(), ZoneInfo(tenant.timezone)
    )
    assigned_today = dict(
        db.session.execute(
            sa.select(Lead.owner_id, sa.func.count(LeadEvent.id))
            .join(Lead, Lead.id == LeadEvent.lead_id)
            .where(
                LeadEvent.tenant_id == tenant.id,
                LeadEvent.kind == EventKind.ASSIGNED,
                LeadEvent.created_at >= today_start,
                Lead.owner_id.in_([c.user_id for c in closers]),
            )
            .group_by(Lead.owner_id)
        ).all()
    )
    open_deals = dict(
        db.session.execute(
            sa.select(Lead.owner_id, sa.func.count(Lead.id))
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                Lead.tenant_id == tenant.id,
                Stage.phase == Phase.CONVERSION,
                Stage.is_won.is_(False),
                Stage.is_lost.is_(False),
                Lead.owner_id.in_([c.user_id for c in closers]),
            )
            .group_by(Lead.owner_id)
        ).all()
    )
    available = [
        c for c in closers if assigned_today.get(c.user_id, 0) < tenant.closer_daily_capacity
    ]
    if not available:
        return None
    epoch = datetime.min.replace(tzinfo=ZoneInfo("UTC"))
    if tenant.assignment_mode == "round_robin":
        return min(available, key=lambda c: (c.last_assigned_at or epoch, c.id))
    return min(
        available,
        key=lambda c: (open_deals.get(c.user_id, 0), c.last_assigned_at or epoch, c.id),
    )


LOST_REASONS_NEEDING_NOTE = {LostReason.OTHER}


def lose(membership: Membership, lead: Lead, reason: LostReason, note: str = "") -> Lead:
    if lead.stage.phase == Phase.ACCOUNT:
        # A verdict on a client would count against the source that brought them.
        raise MoveRefused(_l("A client is never a lost deal: mark them churned instead."))
    if lead.stage.is_won or lead.stage.is_lost:
        raise MoveRefused(_l("This deal is closed."))
    if reason in LOST_REASONS_NEEDING_NOTE and not note.strip():
        raise MoveRefused(_l("Say what happened."))
    lead.stage_id = _stage_where(lead.tenant_id, is_lost=True).id
    lead.lost_reason = reason.value
    lead.lost_note = note.strip()[:500] or None
    lead.closed_at = clock.now()
    record_event(lead, membership.user, EventKind.LOST, reason=reason.value, note=lead.lost_note)
    alert = alerts.after_verdict(lead)
    db.session.commit()
    alerts.email_owners_after_commit(alert)
    return lead


def add_note(membership: Membership, lead: Lead, text: str) -> None:
    record_event(lead, membership.user, EventKind.NOTE, text=text.strip()[:5000])
    db.session.commit()


def log_touch(
    membership: Membership, lead: Lead, channel: TouchChannel, outcome: str, note: str = ""
) -> Touch:
    """A call, message or meeting; for a client it moves the next-touch date on."""
    tenant = db.session.get(Tenant, lead.tenant_id)
    touch = Touch(
        tenant_id=lead.tenant_id,
        lead_id=lead.id,
        actor_id=membership.user_id,
        channel=channel,
        outcome=outcome.strip()[:200],
        note=note.strip() or None,
    )
    db.session.add(touch)
    lead.last_touch_at = clock.now()
    lead.first_touch_at = lead.first_touch_at or lead.last_touch_at
    lead.touch_scheduled_at = None
    if lead.stage.phase == Phase.ACCOUNT and lead.churned_at is None:
        cadence = lead.cadence_days or tenant.touch_cadence_days
        lead.next_touch_on = local_today(tenant) + timedelta(days=cadence)
    record_event(
        lead,
        membership.user,
        EventKind.TOUCH,
        channel=channel.value,
        outcome=touch.outcome,
        note=touch.note,
    )
    db.session.commit()
    return touch


def set_cadence(membership: Membership, lead: Lead, days: int | None) -> None:
    """A client's own touch cadence (None: the workspace's); the next touch follows it
    from the last touch, or from today for a client never touched."""
    tenant = db.session.get(Tenant, lead.tenant_id)
    lead.cadence_days = days
    cadence = days or tenant.touch_cadence_days
    zone = ZoneInfo(tenant.timezone)
    since = lead.last_touch_at.astimezone(zone).date() if lead.last_touch_at else None
    lead.next_touch_on = (since or local_today(tenant)) + timedelta(days=cadence)
    record_event(
        lead,
        membership.user,
        EventKind.CADENCE_CHANGED,
        days=cadence,
        workspace_default=days is None,
    )
    db.session.commit()


def schedule_touch(membership: Membership, lead: Lead, local_moment: datetime | None) -> None:
    """Plan the next touch for a moment in the workspace's time (None clears the plan)."""
    tenant = db.session.get(Tenant, lead.tenant_id)
    lead.touch_scheduled_at = (
        local_moment.replace(tzinfo=ZoneInfo(tenant.timezone)).astimezone(ZoneInfo("UTC"))
        if local_moment
        else None
    )
    planned = lead.touch_scheduled_at
    record_event(
        lead, membership.user, EventKind.TOUCH_PLANNED, at=planned.isoformat() if planned else None
    )
    db.session.commit()
