"""API tokens: created by the owner, shown once, kept as a hash, revocable.

A token acts with the walls of one seat: the owner's own (everything, the export right
included) or a member's, chosen when it is made. It never reaches another workspace:
the seat names the workspace, and a seat that is deactivated takes its tokens with it.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import ApiToken, Membership, Tenant, TokenAccess, User
from app.tenancy import ALL_TENANTS

PREFIX = "cvk_"
# Writing the last use on every request would make each read a write; once a minute is enough.
LAST_USE_RESOLUTION = timedelta(minutes=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    tenant: Tenant, creator: User, name: str, access: TokenAccess, membership: Membership
) -> tuple[ApiToken, str]:
    """A new token and its secret (returned once, never stored)."""
    if membership.tenant_id != tenant.id:
        raise ValueError("a token acts within its own workspace")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        tenant_id=tenant.id,
        name=name.strip()[:120],
        secret_hash=digest(secret),
        hint=secret[: len(PREFIX) + 6],
        access=access,
        membership_id=membership.id,
        created_by_id=creator.id,
    )
    db.session.add(token)
    db.session.commit()
    return token, secret


def revoke_token(token: ApiToken) -> None:
    token.revoked_at = token.revoked_at or clock.now()
    db.session.commit()


def tokens_of(tenant: Tenant) -> list[ApiToken]:
    return list(
        db.session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.tenant_id == tenant.id)
            .options(sa.orm.joinedload(ApiToken.membership).joinedload(Membership.user))
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id)
        )
    )


def authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret whose seat is active, or None."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    token = db.session.scalar(
        sa.select(ApiToken)
        .where(ApiToken.secret_hash == digest(secret), ApiToken.revoked_at.is_(None))
        .options(sa.orm.joinedload(ApiToken.membership).joinedload(Membership.tenant))
        .execution_options(**ALL_TENANTS)
    )
    if token is None or not token.membership.active:
        return None
    return token


def note_use(token: ApiToken, now: datetime) -> None:
    """Record the token's last use (at most once a minute)."""
    if token.last_used_at is None or token.last_used_at < now - LAST_USE_RESOLUTION:
        db.session.execute(
            sa.update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
        )
        db.session.commit()
