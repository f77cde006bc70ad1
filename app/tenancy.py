"""The one place that knows which workspace a request or job works in.

``g.tenant`` and ``g.membership`` are resolved once per request (see
``load_current_tenant``). Every lookup by id goes through
``get_for_tenant_or_404``; the ``do_orm_execute`` listener below is the safety
net that keeps any other SELECT inside the current tenant as well.
"""

from contextlib import contextmanager

import sqlalchemy as sa
from flask import abort, g, has_app_context, request, session
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Session, with_loader_criteria

from app.extensions import db
from app.models import Membership, Tenant, TenantScoped

ALL_TENANTS = {"all_tenants": True}
# Addresses that answer senders, never members: no member's workspace is loaded for them
# (intake finds its workspace by the address posted to, whoever is signed in).
SENDER_ENDPOINTS = frozenset({"intake.receive"})


def current_tenant_id() -> int | None:
    if not has_app_context():
        return None
    return g.get("tenant_id")


@event.listens_for(Session, "do_orm_execute")
def _limit_to_current_tenant(state) -> None:
    if not state.is_select or state.execution_options.get("all_tenants"):
        return
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    )


def get_for_tenant_or_404(model, object_id: int):
    """Return the current tenant's row of ``model`` with this id, or answer 404."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        abort(404)
    row = db.session.scalar(
        sa.select(model)
        .where(model.id == object_id, model.tenant_id == tenant_id)
        .execution_options(**ALL_TENANTS)
    )
    if row is None:
        abort(404)
    return row


def active_memberships(user_id: int) -> list[Membership]:
    """Every workspace seat the user can still use, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user_id, Membership.active.is_(True))
            .order_by(Membership.created_at, Membership.id)
            .execution_options(**ALL_TENANTS)
        )
    )


def load_current_tenant() -> None:
    """Resolve the signed-in user's workspace into ``g`` (before each request but those
    answering senders)."""
    forget_current_tenant()
    if request.endpoint in SENDER_ENDPOINTS or not current_user.is_authenticated:
        return
    memberships = active_memberships(current_user.id)
    wanted = session.get("tenant_id") or current_user.last_tenant_id
    chosen = next((m for m in memberships if m.tenant_id == wanted), None)
    if chosen is None and memberships:
        chosen = memberships[0]
    if chosen is None:
        return
    session["tenant_id"] = chosen.tenant_id
    g.membership = chosen
    g.tenant = chosen.tenant
    g.tenant_id = chosen.tenant_id
    g.memberships = memberships


def forget_current_tenant(*_args) -> None:
    """Clear the request's tenant (also at teardown, so nothing outlives the request)."""
    g.tenant = None
    g.tenant_id = None
    g.membership = None
    g.memberships = []


@contextmanager
def tenant_scope(tenant_id: int):
    """Run worker or CLI code as if inside one workspace's request."""
    previous = g.get("tenant"), g.get("tenant_id")
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"no workspace with id {tenant_id}")
    g.tenant, g.tenant_id = tenant, tenant.id
    try:
        yield tenant
    finally:
        g.tenant, g.tenant_id = previous
