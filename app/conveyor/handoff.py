"""Winning a deal: the promises made pass with the client to an account manager.

Promises beyond the closer's authority, and promises the account manager flags,
are recorded as conflicts for the owner.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from app import clock
from app.auth.services import preferred_locale
from app.conveyor.services import MoveRefused, local_today, record_event
from app.extensions import db
from app.mail import external_url
from app.models import (
    Conflict,
    ConflictKind,
    EventKind,
    Lead,
    Membership,
    Notification,
    Phase,
    Promise,
    PromiseStatus,
    Stage,
    Tenant,
    User,
)
from app.pipeline import first_stage
from app.policy import clients_visible_to, members_who


class AlreadyWon(MoveRefused):
    """Someone won this deal a moment ago; there is nothing left to do here."""


@dataclass
class PromiseInput:
    text: str
    discount_percent: int | None = None
    due_on: date | None = None


def record_conflict(tenant_id: int, kind: ConflictKind, **fields) -> Conflict:
    conflict = Conflict(tenant_id=tenant_id, kind=kind, **fields)
    db.session.add(conflict)
    return conflict


def account_managers(tenant_id: int) -> list[Membership]:
    return members_who(tenant_id, "work.clients")


def least_loaded_account_manager(tenant_id: int) -> Membership | None:
    managers = account_managers(tenant_id)
    if not managers:
        return None
    loads = dict(
        db.session.execute(
            sa.select(Lead.owner_id, sa.func.count(Lead.id))
            .join(Stage, Stage.id == Lead.stage_id)
            .where(
                Lead.tenant_id == tenant_id,
                Stage.phase == Phase.ACCOUNT,
                Lead.churned_at.is_(None),
            )
            .group_by(Lead.owner_id)
        ).all()
    )
    return min(managers, key=lambda m: (loads.get(m.user_id, 0), m.id))


def win(
    membership: Membership,
    lead: Lead,
    value_minor: int,
    promises: list[PromiseInput],
    account_manager_id: int | None = None,
) -> Lead:
    """Close the deal as won and hand the client over with the promises made.

    The lead's row is locked first: the same deal won from several tabs at once is won
    by the first, and the others see it already won (one hand-off, promises once).
    """
    db.session.execute(sa.select(Lead.id).where(Lead.id == lead.id).with_for_update())
    db.session.refresh(lead)
    stage = db.session.get(Stage, lead.stage_id)
    if lead.won_at is not None:
        raise AlreadyWon(_l("This deal is already won and handed off."))
    if stage.phase != Phase.CONVERSION or stage.is_won or stage.is_lost:
        raise MoveRefused(_l("Only an open deal in conversion can be won."))
    tenant = db.session.get(Tenant, lead.tenant_id)
    if account_manager_id:
        manager = next(
            (m for m in account_managers(tenant.id) if m.user_id == account_manager_id), None
        )
        if manager is None:
            raise MoveRefused(_l("Choose an active account manager."))
    else:
        manager = least_loaded_account_manager(tenant.id)
    now = clock.now()
    lead.value_minor = value_minor
    lead.won_at = lead.closed_at = now
    lead.stage_id = first_stage(tenant.id, Phase.ACCOUNT).id
    lead.owner_id = manager.user_id if manager else tenant_owner_id(tenant.id)
    lead.next_touch_on = local_today(tenant) + timedelta(
        days=lead.cadence_days or tenant.touch_cadence_days
    )
    record_event(lead, membership.user, EventKind.WON, value_minor=value_minor)
    for item in promises:
        promise = Promise(
            tenant_id=tenant.id,
            lead_id=lead.id,
            made_by_id=membership.user_id,
            text=item.text.strip()[:500],
            discount_percent=item.discount_percent,
            due_on=item.due_on,
        )
        db.session.add(promise)
        db.session.flush()
        if (item.discount_percent or 0) > tenant.max_discount_percent:
            record_conflict(
                tenant.id,
                ConflictKind.PROMISE_BEYOND_AUTHORITY,
                lead_id=lead.id,
                promise_id=promise.id,
                user_id=membership.user_id,
                details={
                    "discount_percent": item.discount_percent,
                    "limit": tenant.max_discount_percent,
                    "text": promise.text,
                },
            )
    record_event(
        lead,
        membership.user,
        EventKind.HANDED_OFF,
        to=manager.user.name if manager else None,
        promises=len(promises),
    )
    db.session.commit()
    return lead


def tenant_owner_id(tenant_id: int) -> int | None:
    owners = members_who(tenant_id, "work.unclaimed")
    return owners[0].user_id if owners else None


def decide_promise(
    membership: Membership, promise: Promise, accept: bool, reason: str = ""
) -> None:
    """The account manager keeps a promise, or flags it with a reason (a conflict)."""
    if promise.status != PromiseStatus.PENDING:
        raise MoveRefused(_l("This promise was already decided."))
    if not accept and not reason.strip():
        raise MoveRefused(_l("Say why the promise cannot be kept."))
    promise.status = PromiseStatus.ACCEPTED if accept else PromiseStatus.FLAGGED
    promise.flag_reason = None if accept else reason.strip()[:500]
    promise.decided_by_id = membership.user_id
    promise.decided_at = clock.now()
    lead = db.session.get(Lead, promise.lead_id)
    if not accept:
        record_conflict(
            promise.tenant_id,
            ConflictKind.PROMISE_FLAGGED,
            lead_id=lead.id,
            promise_id=promise.id,
            user_id=promise.made_by_id,
            details={
                "text": promise.text,
                "reason": promise.flag_reason,
                "flagged_by": membership.user.name,
            },
        )
        _notify_owners_of_flag(lead, promise, membership)
    record_event(
        lead,
        membership.user,
        EventKind.PROMISE_DECIDED,
        text=promise.text,
        status=promise.status.value,
        reason=promise.flag_reason,
    )
    db.session.commit()


def _notify_owners_of_flag(lead: Lead, promise: Promise, membership: Membership) -> None:
    """The owner hears of a flagged promise in the bell, in their own language (the
    morning digest lists it too, from the open conflict)."""
    link = external_url("conveyor.lead", lead_id=lead.id)
    for owner in members_who(lead.tenant_id, "alerts.receive"):
        with force_locale(preferred_locale(owner.user)):
            text = _(
                "%(manager)s flagged a promise to %(client)s: %(text)s",
                manager=membership.user.name,
                client=lead.contact.name,
                text=promise.text,
            )
        db.session.add(
            Notification(
                tenant_id=lead.tenant_id, user_id=owner.user_id, text=text[:500], link=link
            )
        )


def _pending(query, membership: Membership):
    """Promises waiting for this member's decision: on their clients (every client's, for
    the owner)."""
    return (
        query.join(Lead, Lead.id == Promise.lead_id)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(
            Promise.tenant_id == membership.tenant_id,
            Promise.status == PromiseStatus.PENDING,
            clients_visible_to(membership),
        )
    )


@dataclass
class WaitingHandOff:
    """A won client whose promises wait for a decision, and who made them."""

    lead: Lead
    made_by: str | None
    promises: list[Promise]


def pending_handoffs(membership: Membership) -> list[WaitingHandOff]:
    """Clients handed to this account manager (every one, for the owner) with the promises
    still to decide, oldest first: person, deal and closer by name, in two queries."""
    query = (
        _pending(sa.select(Promise, Lead), membership)
        .options(joinedload(Lead.contact))
        .order_by(Promise.created_at, Promise.id)
    )
    waiting: dict[int, WaitingHandOff] = {}
    makers: set[int] = set()
    for promise, lead in db.session.execute(query).all():
        entry = waiting.setdefault(lead.id, WaitingHandOff(lead, None, []))
        entry.promises.append(promise)
        if promise.made_by_id:
            makers.add(promise.made_by_id)
    names = dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(makers))).all())
    for entry in waiting.values():
        entry.made_by = names.get(entry.promises[0].made_by_id)
    return list(waiting.values())


def pending_promise_count(membership: Membership) -> int:
    return db.session.scalar(_pending(sa.select(sa.func.count(Promise.id)), membership))


def promises_of(lead: Lead) -> list[Promise]:
    return list(
        db.session.scalars(
            sa.select(Promise)
            .where(Promise.tenant_id == lead.tenant_id, Promise.lead_id == lead.id)
            .order_by(Promise.id)
        )
    )


def waiting_handoffs(membership: Membership) -> int:
    """Clients handed to this member with promises still waiting for their decision."""
    return db.session.scalar(
        _pending(sa.select(sa.func.count(sa.distinct(Promise.lead_id))), membership)
    )
