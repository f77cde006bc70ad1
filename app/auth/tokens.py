"""Signed, expiring tokens for emailed links and for browsers that signed in before."""

import hashlib

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.models import Invitation, PendingSignup, User

INVITATION_MAX_AGE = 7 * 24 * 3600
RESET_MAX_AGE = 3600
SIGNUP_MAX_AGE = 2 * 24 * 3600
DEVICE_MAX_AGE = 365 * 24 * 3600


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def invitation_token(invitation: Invitation) -> str:
    return _serializer("invitation").dumps({"i": invitation.id, "t": invitation.tenant_id})


def read_invitation_token(token: str) -> tuple[int, int] | None:
    """(tenant_id, invitation_id) for a valid, unexpired token; None otherwise."""
    try:
        data = _serializer("invitation").loads(token, max_age=INVITATION_MAX_AGE)
    except BadSignature:
        return None
    return data["t"], data["i"]


def password_reset_token(user: User) -> str:
    # The hash fragment makes the token die as soon as the password changes.
    return _serializer("reset").dumps({"u": user.id, "h": user.password_hash[-12:]})


def read_password_reset_token(token: str) -> tuple[int, str] | None:
    try:
        data = _serializer("reset").loads(token, max_age=RESET_MAX_AGE)
    except BadSignature:
        return None
    return data["u"], data["h"]


def signup_token(pending: PendingSignup) -> str:
    return _serializer("signup").dumps({"p": pending.id})


def read_signup_token(token: str) -> int | None:
    """The pending signup's id for a valid, unexpired link; None otherwise."""
    try:
        data = _serializer("signup").loads(token, max_age=SIGNUP_MAX_AGE)
    except BadSignature:
        return None
    return data.get("p") if isinstance(data, dict) else None


def _email_fingerprint(email: str) -> str:
    # The cookie names the account without showing its address.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def device_token(email: str) -> str:
    """Given to a browser after a correct password: "this browser signed in as email"."""
    return _serializer("device").dumps({"e": _email_fingerprint(email)})


def device_signed_in_as(token: str | None, email: str) -> bool:
    """Whether ``token`` is a device token (not expired) of the account ``email``."""
    if not token:
        return False
    try:
        data = _serializer("device").loads(token, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(data, dict) and data.get("e") == _email_fingerprint(email)
