"""Who is calling the API: a bearer token, never a cookie; and how often they may.

``api_call`` wraps every API view: it forgets whatever a session cookie resolved,
authenticates the ``Authorization: Bearer`` token, puts its workspace and seat in
``g`` (so the policy's scopes and the tenancy safety net apply as for a member),
refuses writes to read-only tokens and read-only workspaces, and counts the call
against the token's rate limit, answering with ``RateLimit`` headers.
"""

import math
from functools import wraps

from flask import current_app, g, request
from flask_babel import gettext as _
from limits import parse

from app import clock
from app.api import tokens
from app.api.problems import Problem
from app.billing.access import is_read_only
from app.extensions import limiter
from app.models import TokenAccess
from app.tenancy import forget_current_tenant

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bearer() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def _unauthenticated():
    return Problem(
        401,
        _("Send a valid API token: Authorization: Bearer <token>."),
        headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
    )


def _count_call(token) -> None:
    """Hit the token's window; over the limit, 429 with Retry-After."""
    g.api_rate = None
    if not limiter.enabled:
        return
    item = parse(current_app.config["API_RATE_LIMIT"])
    key = f"{current_app.config['RATELIMIT_KEY_PREFIX']}:api-token:{token.id}"
    strategy = limiter.limiter
    allowed = strategy.hit(item, key)
    stats = strategy.get_window_stats(item, key)
    reset = max(0, math.ceil(stats.reset_time - clock.now().timestamp()))
    g.api_rate = (item.amount, stats.remaining, reset, item.get_expiry())
    if not allowed:
        raise Problem(
            429,
            _("This token made too many requests. Try again in %(num)d seconds.", num=reset),
            headers={"Retry-After": str(max(reset, 1)), **rate_headers()},
        )


def rate_headers() -> dict:
    """The token's budget in the IETF RateLimit fields (limit, remaining, seconds to reset)."""
    rate = g.get("api_rate")
    if not rate:
        return {}
    amount, remaining, reset, window = rate
    return {
        "RateLimit": f"limit={amount}, remaining={remaining}, reset={reset}",
        "RateLimit-Policy": f"{amount};w={window}",
    }


def api_call(view):
    """Authenticate the token and set the workspace and seat the call acts with."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        forget_current_tenant()  # a session cookie never authenticates the API
        secret = _bearer()
        token = tokens.authenticate(secret) if secret else None
        if token is None:
            raise _unauthenticated()
        membership = token.membership
        g.tenant, g.tenant_id, g.membership = membership.tenant, token.tenant_id, membership
        g.api_token = token
        _count_call(token)
        if request.method not in SAFE_METHODS:
            if request.mimetype != "application/json":
                raise Problem(415, _("Send the body as JSON (Content-Type: application/json)."))
            if token.access != TokenAccess.WRITE:
                raise Problem(403, _("This token is read-only."))
            if is_read_only(token.tenant_id):
                raise Problem(402, _("This workspace is read-only until its subscription is paid."))
        tokens.note_use(token, clock.now())
        return view(*args, **kwargs)

    return wrapped
