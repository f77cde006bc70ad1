"""Workspaces and their teams: creation, settings, invitations, seats."""

import re
import secrets
import unicodedata

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from app import clock, policy
from app.billing.services import seats_changed, start_trial
from app.extensions import db
from app.models import Invitation, Membership, Phase, Role, Stage, Tenant, User
from app.passwords import hash_password
from app.queue import enqueue
from app.tenancy import ALL_TENANTS
from app.workspace import regions

DEFAULT_STAGES = [
    # (name, phase, rot_days, won, lost); names are stored in the workspace language.
    # A card rots after the idle days a healthy deal rarely goes without a step at that
    # stage (a new lead within two days; a negotiation may wait two weeks); won and lost
    # cards never rot, and a client is idle only past its touch cadence with a week's
    # grace.
    (_l("New"), Phase.GENERATION, 2, False, False),
    (_l("Contacted"), Phase.GENERATION, 5, False, False),
    (_l("Qualified"), Phase.GENERATION, 3, False, False),
    (_l("Assigned"), Phase.CONVERSION, 3, False, False),
    (_l("Proposal"), Phase.CONVERSION, 10, False, False),
    (_l("Negotiation"), Phase.CONVERSION, 14, False, False),
    (_l("Won"), Phase.CONVERSION, 30, True, False),
    (_l("Lost"), Phase.CONVERSION, 365, False, True),
    (_l("Client"), Phase.ACCOUNT, 14, False, False),
]


class WorkspaceError(ValueError):
    """A business rule refused the change; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:40] or "workspace"


def _unique_slug(name: str) -> str:
    base = slugify(name)
    slug = base
    while db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def create_user(
    email: str,
    name: str,
    password: str | None,
    locale: str | None = None,
    password_hash: str | None = None,
) -> User:
    """A new user (not committed); ``password_hash`` when the password was hashed before."""
    user = User(
        email=email.strip().lower(),
        name=name.strip(),
        password_hash=password_hash or hash_password(password),
        locale=locale,
    )
    db.session.add(user)
    db.session.flush()
    return user


def create_workspace(
    name: str,
    owner: User,
    language: str = "en",
    country: str | None = None,
    timezone: str | None = None,
) -> Tenant:
    """A new workspace with default stages and ``owner`` as its owner (not committed).

    With a ``country`` the workspace's currency, timezone (the browser's ``timezone``
    when it lies in that country) and phone region follow from it.
    """
    tenant = Tenant(name=name.strip(), slug=_unique_slug(name), language=language)
    if country:
        tenant.country = country
        tenant.currency = regions.currency_for(country)
        tenant.timezone = regions.timezone_for(country, timezone)
    db.session.add(tenant)
    db.session.flush()
    names = default_stage_names(language)
    for position, (name_in_language, (_, phase, rot_days, won, lost)) in enumerate(
        zip(names, DEFAULT_STAGES, strict=True)
    ):
        db.session.add(
            Stage(
                tenant_id=tenant.id,
                name=name_in_language,
                phase=phase,
                position=position,
                rot_days=rot_days,
                is_won=won,
                is_lost=lost,
            )
        )
    db.session.add(Membership(tenant_id=tenant.id, user_id=owner.id, role=Role.OWNER))
    owner.last_tenant_id = tenant.id
    start_trial(tenant)
    db.session.flush()
    return tenant


def default_stage_names(language: str) -> list[str]:
    with force_locale(language):
        return [str(stage[0]) for stage in DEFAULT_STAGES]


def _rename_default_stages(tenant: Tenant, old_language: str, new_language: str) -> None:
    """Stages still called by the name signup gave them take the new language's name;
    a stage somebody renamed keeps its name."""
    renames = dict(
        zip(default_stage_names(old_language), default_stage_names(new_language), strict=True)
    )
    stages = db.session.scalars(sa.select(Stage).where(Stage.tenant_id == tenant.id)).all()
    taken = {stage.name for stage in stages}
    for stage in stages:
        new_name = renames.get(stage.name)
        if new_name and new_name != stage.name and new_name not in taken:
            taken.discard(stage.name)
            stage.name = new_name
            taken.add(new_name)


def update_settings(tenant: Tenant, data: dict) -> Tenant:
    if data.get("language") and data["language"] != tenant.language:
        _rename_default_stages(tenant, tenant.language, data["language"])
    for field in (
        "name",
        "timezone",
        "language",
        "currency",
        "country",
        "digest_hour",
        "junk_share_max",
        "qualified_share_min",
        "quality_window_mode",
        "quality_window",
        "quality_window_days",
    ):
        if field in data:
            setattr(tenant, field, data[field])
    db.session.commit()
    return tenant


def members(tenant: Tenant) -> list[Membership]:
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(Membership.tenant_id == tenant.id)
            .join(User, User.id == Membership.user_id)
            .order_by(Membership.active.desc(), User.name)
        )
    )


def pending_invitations(tenant: Tenant) -> list[Invitation]:
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.tenant_id == tenant.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def invite(tenant: Tenant, inviter: User, email: str, role: Role) -> Invitation:
    """Record an invitation and have the worker email it."""
    email = email.strip().lower()
    existing = find_user_by_email(email)
    if existing is not None and db.session.scalar(
        sa.select(Membership.id).where(
            Membership.tenant_id == tenant.id, Membership.user_id == existing.id
        )
    ):
        raise WorkspaceError(_l("This person is already a member of the workspace."), field="email")
    for old in db.session.scalars(
        sa.select(Invitation).where(
            Invitation.tenant_id == tenant.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    ):
        old.revoked_at = clock.now()
    invitation = Invitation(tenant_id=tenant.id, email=email, role=role, invited_by_id=inviter.id)
    db.session.add(invitation)
    db.session.commit()
    enqueue("app.tasks.email.send_invitation", tenant.id, invitation.id)
    return invitation


def resend_invitation(invitation: Invitation) -> None:
    enqueue("app.tasks.email.send_invitation", invitation.tenant_id, invitation.id)


def revoke_invitation(invitation: Invitation) -> None:
    if invitation.pending:
        invitation.revoked_at = clock.now()
        db.session.commit()


def accept_invitation(invitation: Invitation, user: User) -> Membership:
    """Give ``user`` the invited seat (reactivating an old one) and mark it accepted."""
    membership = db.session.scalar(
        sa.select(Membership)
        .where(Membership.tenant_id == invitation.tenant_id, Membership.user_id == user.id)
        .execution_options(**ALL_TENANTS)
    )
    if membership is None:
        membership = Membership(
            tenant_id=invitation.tenant_id, user_id=user.id, role=invitation.role
        )
        db.session.add(membership)
    else:
        membership.role = invitation.role
        membership.active = True
        membership.deactivated_at = None
    invitation.accepted_at = clock.now()
    user.last_tenant_id = invitation.tenant_id
    db.session.commit()
    seats_changed(invitation.tenant_id)
    return membership


def _guard_last_owner(tenant: Tenant, membership: Membership) -> None:
    """Refuse to take away the last active owner seat.

    The owner seats are locked first, so two owners removing each other at once are
    served one after the other, and the second sees that only one owner is left.
    """
    owners = policy.lock_owner_seats(tenant.id)
    db.session.refresh(membership)
    if membership in owners and len(owners) <= 1:
        db.session.rollback()
        raise WorkspaceError(_l("A workspace needs at least one active owner."))


def deactivate_member(tenant: Tenant, membership: Membership) -> None:
    """Take the seat away: the person can no longer sign in to this workspace."""
    _guard_last_owner(tenant, membership)
    membership.active = False
    membership.deactivated_at = clock.now()
    db.session.commit()
    seats_changed(tenant.id)


def reactivate_member(membership: Membership) -> None:
    membership.active = True
    membership.deactivated_at = None
    db.session.commit()
    seats_changed(membership.tenant_id)


def change_role(tenant: Tenant, membership: Membership, role: Role) -> None:
    if not policy.is_owner_role(role):
        _guard_last_owner(tenant, membership)
    membership.role = role
    db.session.commit()


RULE_FIELDS = (
    "max_discount_percent",
    "closer_daily_capacity",
    "queue_size",
    "touch_cadence_days",
    "assignment_mode",
)


def update_rules(tenant: Tenant, data: dict) -> None:
    for name in RULE_FIELDS:
        setattr(tenant, name, data[name])
    db.session.commit()


def stage_list(tenant: Tenant) -> list[Stage]:
    return list(
        db.session.scalars(
            sa.select(Stage).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
        )
    )


def update_stage(tenant: Tenant, stage: Stage, name: str, rot_days: int) -> None:
    name = name.strip()
    taken = db.session.scalar(
        sa.select(Stage.id).where(
            Stage.tenant_id == tenant.id, Stage.name == name, Stage.id != stage.id
        )
    )
    if taken:
        raise WorkspaceError(_l("Another stage has this name."), field="name")
    stage.name, stage.rot_days = name, rot_days
    db.session.commit()


def move_stage(tenant: Tenant, stage: Stage, step: int) -> None:
    """Swap a stage with its neighbour inside the same phase (phases keep their order)."""
    siblings = [s for s in stage_list(tenant) if s.phase == stage.phase]
    index = siblings.index(stage)
    other = index + step
    if 0 <= other < len(siblings):
        neighbour = siblings[other]
        stage.position, neighbour.position = neighbour.position, stage.position
        db.session.commit()
