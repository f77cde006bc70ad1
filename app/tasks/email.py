"""Account emails: invitations, password resets and signup confirmations."""

from app.auth import tokens
from app.auth.services import preferred_locale
from app.extensions import db
from app.mail import external_url, send_email
from app.models import Invitation, PendingSignup, User
from app.tenancy import tenant_scope


def send_invitation(tenant_id: int, invitation_id: int) -> bool:
    """Email the invitation link; does nothing for an invitation no longer pending."""
    with tenant_scope(tenant_id) as tenant:
        invitation = db.session.get(Invitation, invitation_id)
        if invitation is None or invitation.tenant_id != tenant_id or not invitation.pending:
            return False
        inviter = (
            db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
        )
        link = external_url("auth.accept_invitation", token=tokens.invitation_token(invitation))
        send_email(
            invitation.email,
            "invitation",
            tenant.language,
            tenant=tenant,
            invitation=invitation,
            inviter=inviter,
            link=link,
        )
        return True


def send_password_reset(user_id: int) -> bool:
    user = db.session.get(User, user_id)
    if user is None:
        return False
    link = external_url("auth.reset_password", token=tokens.password_reset_token(user))
    send_email(user.email, "password_reset", preferred_locale(user), user=user, link=link)
    return True


def send_signup_confirmation(pending_id: int) -> bool:
    """Email a new address the link that opens its workspace."""
    pending = db.session.get(PendingSignup, pending_id)
    if pending is None:
        return False
    link = external_url("auth.confirm_signup", token=tokens.signup_token(pending))
    send_email(pending.email, "signup_confirmation", pending.language, pending=pending, link=link)
    return True


def send_signup_attempt(user_id: int) -> bool:
    """Tell an account that someone tried to sign up with its address, with the way in."""
    user = db.session.get(User, user_id)
    if user is None:
        return False
    send_email(
        user.email,
        "signup_attempt",
        preferred_locale(user),
        user=user,
        login_link=external_url("auth.login"),
        reset_link=external_url("auth.reset_password", token=tokens.password_reset_token(user)),
    )
    return True
