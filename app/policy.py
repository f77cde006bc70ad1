"""Who may do what: the single place where roles are checked.

Views use ``@requires(...)``; templates call ``can(...)``. Nothing else
compares roles.
"""

from functools import wraps

from flask import abort, g, redirect, request, url_for
from flask_login import current_user

from app.models import Role

OWNER = {Role.OWNER}
EVERYONE = set(Role)

PERMISSIONS: dict[str, set[Role]] = {
    "workspace.view": EVERYONE,
    "workspace.settings": OWNER,
    "team.manage": OWNER,
    "data.export": OWNER,
    "billing.manage": OWNER,
    "sources.manage": {Role.OWNER, Role.LEAD_GENERATOR},
    "leads.generation": {Role.OWNER, Role.LEAD_GENERATOR},
    "deals.convert": {Role.OWNER, Role.CLOSER},
    "clients.manage": {Role.OWNER, Role.ACCOUNT_MANAGER},
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

    Signed-out visitors go to the login page; a member without the right gets 403.
    """
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if g.get("membership") is None:
                return redirect(url_for("auth.no_workspace"))
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorator
