"""What each engine email says, by kind and by the recipient's role."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import joinedload

from app.auth.services import preferred_locale
from app.conveyor import handoff
from app.conveyor import today as today_queue
from app.extensions import db
from app.formatting import format_date
from app.mail import external_url
from app.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    Lead,
    Membership,
    MessageKind,
    OutboxMessage,
    Phase,
    Stage,
    Tenant,
    Touch,
    User,
)
from app.policy import clients_visible_to, digest_sections, leads_visible_to
from app.tenancy import ALL_TENANTS, tenant_scope

DIGEST_LIST_LENGTH = 5


@dataclass
class Message:
    template: str
    locale: str
    context: dict
    notification: str
    link: str
    headers: dict = field(default_factory=dict)


def unsubscribe_token(membership: Membership) -> str:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="unsubscribe").dumps(
        [membership.tenant_id, membership.user_id]
    )


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    try:
        tenant_id, user_id = URLSafeSerializer(
            current_app.config["SECRET_KEY"], salt="unsubscribe"
        ).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return tenant_id, user_id


def build(row: OutboxMessage, tenant: Tenant, membership: Membership, user: User) -> Message | None:
    """The message for an outbox row, or None when it no longer applies."""
    if membership.digest_opt_out:
        return None
    locale = preferred_locale(user)
    unsubscribe = external_url("engine.unsubscribe", token=unsubscribe_token(membership))
    headers = {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    with tenant_scope(tenant.id), force_locale(locale):
        if row.kind == MessageKind.DIGEST:
            context = _digest_context(tenant, membership, row)
            notification = _(
                "Your morning digest for %(date)s is in your inbox.",
                date=format_date(row.local_date),
            )
            link = external_url("main.dashboard")
        else:
            lead = db.session.get(Lead, row.subject_id)
            if lead is None or not _still_applies(row, lead):
                return None
            link = external_url("conveyor.lead", lead_id=lead.id)
            context = {"lead": lead, "link": link}
            if row.kind == MessageKind.TOUCH_DUE:
                notification = _("Time to touch %(name)s.", name=lead.contact.name)
            elif row.kind == MessageKind.TOUCH_SCHEDULED:
                notification = _(
                    "It is time for the touch you planned with %(name)s.", name=lead.contact.name
                )
            else:
                notification = _(
                    "%(name)s decides around %(date)s: be in touch.",
                    name=lead.contact.name,
                    date=format_date(lead.decision_date),
                )
    context.update(tenant=tenant, user=user, unsubscribe=unsubscribe, kind=row.kind.value)
    return Message(row.kind.value, locale, context, notification, link, headers)


def _still_applies(row: OutboxMessage, lead: Lead) -> bool:
    stage = lead.stage
    if row.kind == MessageKind.TOUCH_SCHEDULED:
        return lead.touch_scheduled_at is not None  # cleared once the touch is logged
    if row.kind == MessageKind.TOUCH_DUE:
        return (
            stage.phase == Phase.ACCOUNT
            and lead.next_touch_on is not None
            and (lead.next_touch_on <= row.local_date)
        )
    if stage.is_won or stage.is_lost or lead.decision_date is None:
        return False
    return abs((lead.decision_date - row.local_date).days) in (0, 3)


def _digest_context(tenant: Tenant, membership: Membership, row: OutboxMessage) -> dict:
    """The digest's sections the member's role gets (app.policy), each with its figures;
    the link opens the page of the first one."""
    today = row.local_date
    sections = [name.removeprefix("digest.") for name in digest_sections(membership)]
    context = {"sections": sections, "today": today}
    links = []
    if "glance" in sections:
        context.update(_owner_glance(tenant, today))
        links.append("conveyor.board")
    if "queue" in sections:
        queue = today_queue.queue(tenant, membership, today)
        context.update(queue_size=len(queue), first=queue[:DIGEST_LIST_LENGTH])
        links.append("conveyor.today_queue")
    if "clients" in sections:
        context.update(_clients_due(tenant, membership, today))
        links.append("clients.index")
    if "incoming" in sections:
        context.update(_incoming(tenant, membership, today))
        links.append("leads.incoming")
    context["link"] = external_url(links[0] if links else "main.dashboard")
    return context


def _clients_due(tenant: Tenant, membership: Membership, today) -> dict:
    """The member's clients due a touch today or overdue, and promises awaiting them."""
    due = list(
        db.session.scalars(
            sa.select(Lead)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(clients_visible_to(membership), Lead.next_touch_on <= today)
            .order_by(Lead.next_touch_on)
            .limit(50)
        )
    )
    handoffs = handoff.pending_promise_count(membership)
    return {
        "due": due[:DIGEST_LIST_LENGTH],
        "due_count": len(due),
        "overdue_count": sum(1 for lead in due if lead.next_touch_on < today),
        "handoffs": handoffs,
    }


def _incoming(tenant: Tenant, membership: Membership, today) -> dict:
    """Leads in generation the member sees: not qualified yet, untouched for a day."""
    generation = (
        sa.select(sa.func.count(Lead.id))
        .join(Stage, Stage.id == Lead.stage_id)
        .where(leads_visible_to(membership), Stage.phase == Phase.GENERATION)
    )
    since = _local_midnight(tenant, today) - timedelta(days=1)
    return {
        "unqualified": db.session.scalar(generation.where(Lead.qualified_at.is_(None))),
        "untouched": db.session.scalar(
            generation.where(Lead.last_touch_at.is_(None), Lead.created_at < since)
        ),
    }


def _clients(tenant: Tenant):
    return (
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.tenant_id == tenant.id, Stage.phase == Phase.ACCOUNT)
    )


def _local_midnight(tenant: Tenant, day) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(tenant.timezone)).astimezone(UTC)


def _owner_glance(tenant: Tenant, today) -> dict:
    """Yesterday on the conveyor, and this week's touches done against those due."""
    start, end = _local_midnight(tenant, today - timedelta(days=1)), _local_midnight(tenant, today)

    def count(model_column, *where):
        return db.session.scalar(sa.select(sa.func.count(model_column)).where(*where))

    week_start = today - timedelta(days=today.weekday())
    return {
        "new_leads": count(
            Lead.id, Lead.tenant_id == tenant.id, Lead.created_at >= start, Lead.created_at < end
        ),
        "qualified": count(
            Lead.id,
            Lead.tenant_id == tenant.id,
            Lead.qualified_at >= start,
            Lead.qualified_at < end,
        ),
        "won": count(Lead.id, Lead.tenant_id == tenant.id, Lead.won_at >= start, Lead.won_at < end),
        "touches_done": count(
            Touch.id,
            Touch.tenant_id == tenant.id,
            Touch.happened_at >= _local_midnight(tenant, week_start),
        ),
        "touches_due": db.session.scalar(
            _clients(tenant)
            .with_only_columns(sa.func.count(Lead.id))
            .where(Lead.next_touch_on <= week_start + timedelta(days=6))
        ),
        "open_conflicts": count(
            Conflict.id, Conflict.tenant_id == tenant.id, Conflict.status == ConflictStatus.OPEN
        ),
        "flagged_promises": _flagged_promises(tenant),
    }


def _flagged_promises(tenant: Tenant) -> list[tuple[Conflict, Lead]]:
    """Promises an account manager flagged that the owner has not settled yet, each with
    its deal (and client), which the digest names."""
    return list(
        db.session.execute(
            sa.select(Conflict, Lead)
            .join(Lead, Lead.id == Conflict.lead_id)
            .options(joinedload(Lead.contact))
            .where(
                Conflict.tenant_id == tenant.id,
                Conflict.status == ConflictStatus.OPEN,
                Conflict.kind == ConflictKind.PROMISE_FLAGGED,
            )
            .order_by(Conflict.created_at.desc(), Conflict.id.desc())
            .limit(DIGEST_LIST_LENGTH)
        ).all()
    )


def unsubscribe(token: str) -> Membership | None:
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    membership = db.session.scalar(
        sa.select(Membership)
        .where(Membership.tenant_id == found[0], Membership.user_id == found[1])
        .execution_options(**ALL_TENANTS)
    )
    if membership is not None:
        membership.digest_opt_out = True
        db.session.commit()
    return membership
