"""Who may see and do what: the single place where roles are read.

Views use ``@requires(...)``; templates call ``can(...)``; services, emails and jobs ask
``allows(membership, ...)``. Every query for leads, deals and clients is limited by
``leads_visible_to`` (or ``scope_leads``); who receives work or alerts is asked through
``members_who``. Nothing else compares roles: tests/test_policy.py walks the code.
"""

from functools import wraps

import sqlalchemy as sa
from flask import abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.htmx import redirect_to
from app.models import Contact, Lead, Membership, Phase, Role, Stage, User
from app.tenancy import ALL_TENANTS

OWNER = frozenset({Role.OWNER})
EVERYONE = frozenset(Role)
LEAD_GENERATION = OWNER | {Role.LEAD_GENERATOR}
CLOSING = OWNER | {Role.CLOSER}
ACCOUNTS = OWNER | {Role.ACCOUNT_MANAGER}

PERMISSIONS: dict[str, frozenset[Role]] = {
    # Areas: the pages a role opens.
    "workspace.view": EVERYONE,
    "workspace.settings": OWNER,
    "team.manage": OWNER,
    "team.handover": OWNER,
    "rules.manage": OWNER,
    "billing.manage": OWNER,
    "data.export": OWNER,
    "clients.import": OWNER,
    "integrations.manage": OWNER,  # API tokens and webhook endpoints
    "radar.view": OWNER,
    "board.view": EVERYONE,
    "sources.manage": LEAD_GENERATION,
    "leads.generation": LEAD_GENERATION,
    "deals.convert": CLOSING,
    "clients.manage": ACCOUNTS,
    # Actions.
    "leads.qualify": LEAD_GENERATION,
    # The contact a lead joined (a client's record); without it, only what the post carried.
    "contacts.record": OWNER | {Role.CLOSER, Role.ACCOUNT_MANAGER},
    "deals.assign": OWNER,  # pick the closer by hand
    "deals.send_back": OWNER,  # from conversion or accounts back to lead generation
    "deals.lose": LEAD_GENERATION | {Role.CLOSER},  # a client is never a lost deal
    "deals.next_in_queue": frozenset({Role.CLOSER}),  # the lead page leads on through Today
    "clients.churn": ACCOUNTS,
    "board.filter_by_owner": OWNER,
    "clients.filter_by_manager": OWNER,
    "alerts.limits": OWNER,  # junk and qualified limits and windows, workspace and sources
    # What the home page and the morning digest show.
    "home.clients_due": ACCOUNTS,
    "home.compliance": ACCOUNTS,
    "home.sources": LEAD_GENERATION,
    "digest.queue": frozenset({Role.CLOSER}),
    "digest.clients": frozenset({Role.ACCOUNT_MANAGER}),
    "digest.incoming": frozenset({Role.LEAD_GENERATOR}),
    "digest.glance": OWNER,
    # Who receives work and news.
    "work.leads": frozenset({Role.LEAD_GENERATOR}),  # new leads, in turn
    "work.deals": frozenset({Role.CLOSER}),  # qualified leads to convert
    "work.clients": frozenset({Role.ACCOUNT_MANAGER}),  # won clients, with promises
    "work.unclaimed": OWNER,  # what nobody else can take
    "alerts.receive": OWNER,  # conflicts, source alerts, billing notices
    # People, quick add and search (app/people, app/search).
    "leads.quick_add": EVERYONE,  # a walk-in or a call, through the one lead builder
    "search.use": EVERYONE,  # each role finds only what its walls allow
    "people.browse": OWNER,  # walk the base: every person and company, in search too
    "people.edit": OWNER | {Role.CLOSER, Role.ACCOUNT_MANAGER},  # people whose deals they own
    "people.merge": OWNER,
    "handoffs.receive": frozenset({Role.ACCOUNT_MANAGER}),  # hand-offs waiting, counted
}

DIGEST_SECTIONS = ("digest.glance", "digest.queue", "digest.clients", "digest.incoming")


def role_allows(role: Role | None, permission: str) -> bool:
    if role is None:
        return False
    return role in PERMISSIONS[permission]


def allows(membership: Membership | None, permission: str) -> bool:
    """True when ``membership`` is an active seat whose role grants ``permission``."""
    if membership is None or not membership.active:
        return False
    return role_allows(membership.role, permission)


def can(permission: str) -> bool:
    """True when the current member's role grants ``permission`` (for views and templates)."""
    return allows(g.get("membership"), permission)


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


def digest_sections(membership: Membership) -> list[str]:
    """The parts of the morning digest this member gets."""
    return [name for name in DIGEST_SECTIONS if allows(membership, name)]


# --- What a member sees ---------------------------------------------------------------------

# Which part of the conveyor each role works in. A closer and an account manager
# see only what is assigned to them: no browsing of the base.
PHASES_BY_ROLE: dict[Role, tuple[Phase, ...]] = {
    Role.OWNER: (Phase.GENERATION, Phase.CONVERSION, Phase.ACCOUNT),
    Role.LEAD_GENERATOR: (Phase.GENERATION,),
    Role.CLOSER: (Phase.CONVERSION,),
    Role.ACCOUNT_MANAGER: (Phase.ACCOUNT,),
}
OWN_LEADS_ONLY = frozenset({Role.CLOSER, Role.ACCOUNT_MANAGER})


def visible_phases(membership: Membership) -> tuple[Phase, ...]:
    return PHASES_BY_ROLE[membership.role]


def leads_visible_to(membership: Membership) -> sa.ColumnElement[bool]:
    """The condition on ``Lead`` joined with ``Stage`` for what the member may see:
    their workspace, their phases and, for closers and account managers, their own."""
    condition = sa.and_(
        Lead.tenant_id == membership.tenant_id,
        Stage.phase.in_(visible_phases(membership)),
    )
    if membership.role in OWN_LEADS_ONLY:
        condition = sa.and_(condition, Lead.owner_id == membership.user_id)
    return condition


def clients_visible_to(membership: Membership) -> sa.ColumnElement[bool]:
    """``leads_visible_to`` narrowed to the client base (the account phase)."""
    return sa.and_(leads_visible_to(membership), Stage.phase == Phase.ACCOUNT)


def people_visible_to(membership: Membership) -> sa.ColumnElement[bool]:
    """The condition on ``Contact`` for the people whose page the member may open: the
    owner every person; a closer or an account manager those with a deal they see."""
    if allows(membership, "people.browse"):
        return Contact.tenant_id == membership.tenant_id
    if not allows(membership, "contacts.record"):
        return sa.false()
    return sa.and_(
        Contact.tenant_id == membership.tenant_id,
        Contact.id.in_(
            sa.select(Lead.contact_id)
            .join(Stage, Stage.id == Lead.stage_id)
            .where(leads_visible_to(membership))
        ),
    )


def scope_leads(query, membership: Membership):
    """Limit a query over ``Lead`` joined with ``Stage`` to what the member may see."""
    return query.where(leads_visible_to(membership))


def may_see_lead(membership: Membership, lead: Lead, stage: Stage) -> bool:
    if lead.tenant_id != membership.tenant_id or stage.phase not in visible_phases(membership):
        return False
    return membership.role not in OWN_LEADS_ONLY or lead.owner_id == membership.user_id


# --- Who receives work and news -----------------------------------------------------------


def _holding(permission: str) -> sa.ColumnElement[bool]:
    return Membership.role.in_(PERMISSIONS[permission])


def holding(permission: str) -> sa.ColumnElement[bool]:
    """A where-clause on ``Membership``: its role grants ``permission`` (for queries that
    order or join seats their own way, such as the lead builder's rotation)."""
    return _holding(permission)


def members_who(tenant_id: int, permission: str) -> list[Membership]:
    """The workspace's active seats whose role grants ``permission``, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(
                Membership.tenant_id == tenant_id,
                _holding(permission),
                Membership.active.is_(True),
            )
            .options(joinedload(Membership.user))
            .order_by(Membership.id)
            .execution_options(**ALL_TENANTS)
        )
    )


def member_who(tenant_id: int, user_id: int, permission: str) -> Membership | None:
    """The user's active seat, if its role grants ``permission``."""
    return next((m for m in members_who(tenant_id, permission) if m.user_id == user_id), None)


def users_who(tenant_id: int, permission: str, active_only: bool = True) -> list[User]:
    """People whose seat grants ``permission``, by name (for pickers and filters)."""
    query = (
        sa.select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id, _holding(permission))
        .order_by(User.name, User.id)
    )
    if active_only:
        query = query.where(Membership.active.is_(True))
    return list(db.session.scalars(query))


def successors(leaving: Membership) -> list[Membership]:
    """Active teammates in the leaving member's role: who may take over their work."""
    return [
        m
        for m in members_who(leaving.tenant_id, "workspace.view")
        if m.role == leaving.role and m.id != leaving.id
    ]


# --- A workspace always keeps an active owner ---------------------------------------------


def is_owner_role(role: Role) -> bool:
    return role == Role.OWNER


def lock_owner_seats(tenant_id: int) -> list[Membership]:
    """The workspace's active owner seats, locked until the transaction ends.

    Two owners taking each other's seat at once wait for each other here; the second
    then counts what the first left.
    """
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(
                Membership.tenant_id == tenant_id,
                Membership.role == Role.OWNER,
                Membership.active.is_(True),
            )
            .order_by(Membership.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
