"""Who may do what: the single place where roles are checked.

Views use ``@requires(...)``; templates call ``can(...)``. Nothing else
compares roles.
"""

from functools import wraps

from flask import abort, g, redirect, request, url_for
from flask_login import current_user

from app.htmx import redirect_to
from app.models import Lead, Phase, Role, Stage

OWNER = {Role.OWNER}
EVERYONE = set(Role)

PERMISSIONS: dict[str, set[Role]] = {
    "workspace.view": EVERYONE,
    "workspace.settings": OWNER,
    "team.manage": OWNER,
    "data.export": OWNER,
    "clients.import": OWNER,
    "billing.manage": OWNER,
    "sources.manage": {Role.OWNER, Role.LEAD_GENERATOR},
    "leads.generation": {Role.OWNER, Role.LEAD_GENERATOR},
    "deals.convert": {Role.OWNER, Role.CLOSER},
    "clients.manage": {Role.OWNER, Role.ACCOUNT_MANAGER},
    "board.view": EVERYONE,
    "leads.qualify": {Role.OWNER, Role.LEAD_GENERATOR},
    "deals.assign": OWNER,
    "rules.manage": OWNER,
    "team.handover": OWNER,
    "radar.view": OWNER,
}


def role_allows(role: Role | None, permission: str) -> bool:
    if role is None:
        return False
    return role in PERMISSIONS[permission]


def can(permission: str) -> bool:
    """True when the current member's role grants ``permission``."""
    membership = g.get("membership")
    return role_allows(membership.role if membership else None, permission)


def requires(permission: str):
    """Require a signed-in active member whose role grants ``permission``.

    Signed-out visitors go to the login page. A member without the right gets 404,
    as if the page did not exist: roles are walls, and nothing beyond them is shown.
    """
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                # htmx polls (the bell, the incoming list) leave for the sign-in page
                # as a whole page instead of swapping it into a corner.
                return redirect_to(url_for("auth.login", next=request.full_path.rstrip("?")))
            if g.get("membership") is None:
                return redirect(url_for("auth.no_workspace"))
            if not can(permission):
                abort(404)
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorator


# Which part of the conveyor each role works in. A closer and an account manager
# see only what is assigned to them: no browsing of the base.
PHASES_BY_ROLE: dict[Role, tuple[Phase, ...]] = {
    Role.OWNER: (Phase.GENERATION, Phase.CONVERSION, Phase.ACCOUNT),
    Role.LEAD_GENERATOR: (Phase.GENERATION,),
    Role.CLOSER: (Phase.CONVERSION,),
    Role.ACCOUNT_MANAGER: (Phase.ACCOUNT,),
}
OWN_LEADS_ONLY = {Role.CLOSER, Role.ACCOUNT_MANAGER}


def visible_phases(membership) -> tuple[Phase, ...]:
    return PHASES_BY_ROLE[membership.role]


def scope_leads(query, membership):
    """Limit a query over ``Lead`` joined with ``Stage`` to what the member may see."""
    query = query.where(Stage.phase.in_(visible_phases(membership)))
    if membership.role in OWN_LEADS_ONLY:
        query = query.where(Lead.owner_id == membership.user_id)
    return query


def may_see_lead(membership, lead: Lead, stage: Stage) -> bool:
    if stage.phase not in visible_phases(membership):
        return False
    return membership.role not in OWN_LEADS_ONLY or lead.owner_id == membership.user_id
