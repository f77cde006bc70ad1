"""Signing up, signing in and looking after one's own account."""

from datetime import timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import clock
from app.auth.tokens import SIGNUP_MAX_AGE
from app.extensions import db
from app.models import Invitation, PendingSignup, Tenant, User
from app.passwords import hash_password, needs_rehash, verify_password
from app.queue import enqueue
from app.tenancy import ALL_TENANTS, active_memberships
from app.workspace.services import (
    WorkspaceError,
    accept_invitation,
    create_user,
    create_workspace,
    find_user_by_email,
)

# Verified when the email is unknown so that both paths take the same time; a fixed
# hash, so that importing the app costs no hashing.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$8t4el/KhDpPtoX3zxpwCZg$wmA2+7"
    "vhMMPhc2aR4M8zWMPBPY5bCQ4WmTsyhdUeFBk"
)


def sign_up(
    business_name: str,
    name: str,
    email: str,
    password: str,
    language: str,
    country: str | None = None,
    timezone: str | None = None,
) -> None:
    """Ask the address to confirm the signup; the same answer for every address.

    A new address gets a link that opens the workspace; an address with an account gets
    an email saying someone tried to sign up with it (with links to sign in or reset the
    password). Both paths hash the password, so neither is quicker than the other.
    """
    email = email.strip().lower()
    password_hash = hash_password(password)
    existing = find_user_by_email(email)
    if existing is not None:
        enqueue("app.tasks.email.send_signup_attempt", existing.id)
        return
    db.session.execute(
        sa.delete(PendingSignup).where(
            PendingSignup.created_at < clock.now() - timedelta(seconds=SIGNUP_MAX_AGE)
        )
    )
    pending = PendingSignup(
        email=email,
        name=name.strip(),
        business_name=business_name.strip(),
        password_hash=password_hash,
        language=language,
        country=country,
        timezone=timezone,
    )
    db.session.add(pending)
    db.session.commit()
    enqueue("app.tasks.email.send_signup_confirmation", pending.id)


def pending_signup(pending_id: int) -> PendingSignup | None:
    return db.session.get(PendingSignup, pending_id)


def confirm_signup(pending_id: int) -> User | None:
    """The address confirmed: its user and workspace are created (once, even when the link
    is followed twice at once). None when the link was used or the address has meanwhile
    got an account."""
    email = db.session.scalar(sa.select(PendingSignup.email).where(PendingSignup.id == pending_id))
    if email is None:
        return None
    # One address, one account: two links of the same address confirmed at once wait here.
    db.session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("signup:" + email)))
    )
    pending = db.session.scalar(
        sa.select(PendingSignup).where(PendingSignup.id == pending_id).with_for_update()
    )
    if pending is None:
        db.session.rollback()
        return None
    others = sa.delete(PendingSignup).where(PendingSignup.email == pending.email)
    if find_user_by_email(pending.email) is not None:
        db.session.execute(others)
        db.session.commit()
        return None
    user = create_user(
        pending.email, pending.name, None, pending.language, password_hash=pending.password_hash
    )
    create_workspace(
        pending.business_name,
        user,
        language=pending.language,
        country=pending.country,
        timezone=pending.timezone,
    )
    db.session.execute(others)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    user = find_user_by_email(email)
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def can_sign_in(user: User) -> bool:
    """A user with no active seat in any workspace cannot sign in."""
    return bool(active_memberships(user.id))


def record_login(user: User) -> None:
    user.last_login_at = clock.now()
    db.session.commit()


def preferred_locale(user: User) -> str:
    if user.locale:
        return user.locale
    if user.last_tenant_id:
        tenant = db.session.get(Tenant, user.last_tenant_id)
        if tenant is not None:
            return tenant.language
    return "en"


def request_password_reset(email: str) -> None:
    """Email a reset link if the account exists; say nothing either way."""
    user = find_user_by_email(email)
    if user is not None:
        enqueue("app.tasks.email.send_password_reset", user.id)


def end_sessions(user: User) -> None:
    """Every session and remember cookie of the user stops working, on every device.

    Sessions and remember cookies carry the user's session version (``User.get_id``);
    the user loader refuses any other version.
    """
    user.session_version += 1
    db.session.commit()


def reset_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    end_sessions(user)


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise WorkspaceError(_l("The current password is wrong."), field="current_password")
    reset_password(user, new_password)


def change_email(user: User, current_password: str, new_email: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise WorkspaceError(_l("The current password is wrong."), field="current_password")
    new_email = new_email.strip().lower()
    other = find_user_by_email(new_email)
    if other is not None and other.id != user.id:
        raise WorkspaceError(_l("This email belongs to another account."), field="new_email")
    user.email = new_email
    db.session.commit()


def set_language(user: User, language: str) -> None:
    user.locale = language
    db.session.commit()


def load_invitation(tenant_id: int, invitation_id: int) -> Invitation | None:
    invitation = db.session.scalar(
        sa.select(Invitation)
        .where(Invitation.id == invitation_id, Invitation.tenant_id == tenant_id)
        .execution_options(**ALL_TENANTS)
    )
    if invitation is None or not invitation.pending:
        return None
    return invitation


def join_by_invitation(invitation: Invitation, name: str, password: str, language: str) -> User:
    """A new person creates their account; an existing one proves it with their password."""
    user = find_user_by_email(invitation.email)
    if user is None:
        if not name.strip():
            raise WorkspaceError(_l("Tell us your name."), field="name")
        user = create_user(invitation.email, name, password, locale=language)
    elif not verify_password(user.password_hash, password):
        raise WorkspaceError(
            _l("This email already has an account: enter its password."), field="password"
        )
    accept_invitation(invitation, user)
    return user


def set_digest(membership, wanted: bool) -> None:
    membership.digest_opt_out = not wanted
    db.session.commit()
