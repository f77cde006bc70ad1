"""Handover: a leaving member's leads, deals and clients pass to teammates in one action."""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import clock
from app.billing.services import seats_changed
from app.extensions import db
from app.models import (
    AuditEntry,
    EventKind,
    Lead,
    LeadEvent,
    Membership,
    Stage,
    Tenant,
    User,
)
from app.policy import successors
from app.workspace.services import WorkspaceError, _guard_last_owner


def open_work(tenant: Tenant, user_id: int) -> list[Lead]:
    """Everything still in motion that the member owns (closed deals keep their history)."""
    return list(
        db.session.scalars(
            sa.select(Lead)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                Lead.tenant_id == tenant.id,
                Lead.owner_id == user_id,
                Stage.is_won.is_(False),
                Stage.is_lost.is_(False),
            )
            .order_by(Lead.id)
        )
    )


def candidates(tenant: Tenant, leaving: Membership) -> list[Membership]:
    """Active teammates with the same role who can take the work over."""
    return successors(leaving)


def hand_over(tenant: Tenant, actor: User, leaving: Membership, recipient_ids: list[int]) -> dict:
    """Deactivate ``leaving`` and split their open work by current load. Commits once."""
    _guard_last_owner(tenant, leaving)
    allowed = {m.user_id: m for m in candidates(tenant, leaving)}
    recipients = [allowed[user_id] for user_id in recipient_ids if user_id in allowed]
    work = open_work(tenant, leaving.user_id)
    if work and not recipients:
        raise WorkspaceError(_l("Choose at least one teammate to take the work over."))
    loads = dict(
        db.session.execute(
            sa.select(Lead.owner_id, sa.func.count(Lead.id))
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                Lead.tenant_id == tenant.id,
                Stage.is_won.is_(False),
                Stage.is_lost.is_(False),
                Lead.owner_id.in_([m.user_id for m in recipients]),
            )
            .group_by(Lead.owner_id)
        ).all()
    )
    given: dict[int, int] = {m.user_id: 0 for m in recipients}
    for lead in work:
        target = min(recipients, key=lambda m: (loads.get(m.user_id, 0), m.id))
        lead.owner_id = target.user_id
        loads[target.user_id] = loads.get(target.user_id, 0) + 1
        given[target.user_id] += 1
        db.session.add(
            LeadEvent(
                tenant_id=tenant.id,
                lead_id=lead.id,
                actor_id=actor.id,
                kind=EventKind.ASSIGNED,
                data={
                    "to": target.user.name,
                    "handover_from": leaving.user.name,
                    "stage": lead.stage.name,
                },
            )
        )
    leaving.active = False
    leaving.deactivated_at = clock.now()
    summary = {
        "member": leaving.user.email,
        "moved": len(work),
        "to": {str(user_id): count for user_id, count in given.items()},
    }
    db.session.add(
        AuditEntry(tenant_id=tenant.id, actor_id=actor.id, action="handover", data=summary)
    )
    db.session.commit()
    seats_changed(tenant.id)
    return summary
