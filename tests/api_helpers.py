"""Tokens and calls for the API tests: real tokens, made by the service the owner uses."""

from app.api import tokens
from app.models import TokenAccess
from tests import factories


def token_for(tenant, creator, user=None, access=TokenAccess.WRITE, name="Zapier") -> str:
    """A real token's secret acting with ``user``'s seat (the creator's by default)."""
    membership = factories.membership_of(tenant, user or creator)
    _, secret = tokens.create_token(tenant, creator, name, access, membership)
    return secret


def bearer(secret: str, **extra) -> dict:
    return {"Authorization": f"Bearer {secret}", **extra}
