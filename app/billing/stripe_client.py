"""The one way the app talks to Stripe: a configured client and idempotency keys.

Billing is on only when ``STRIPE_SECRET_KEY`` is set. The library never retries on
its own (``max_network_retries=0``): a failed call fails the request or the job,
and the retry (the person's second click, RQ's retry) sends the same idempotency
key, so Stripe does the work once.
"""

import hashlib
import json

import stripe
from flask import current_app

from app import clock

TIMEOUT_SECONDS = 20
CLIENTS_KEY = "conveyor_stripe_clients"


def billing_enabled() -> bool:
    """True when this server bills workspaces (a Stripe secret key is configured)."""
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def get_client() -> stripe.StripeClient:
    """A StripeClient for the configured key and address (one per pair, reused)."""
    config = current_app.config
    key, base = config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE")
    clients = current_app.extensions.setdefault(CLIENTS_KEY, {})
    client = clients.get((key, base))
    if client is None:
        client = stripe.StripeClient(
            key,
            base_addresses={"api": base} if base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )
        clients[(key, base)] = client
    return client


def time_bucket(seconds: int) -> int:
    """The number of the current window of ``seconds``: clicks inside one window share it."""
    return int(clock.now().timestamp() // seconds)


def idempotency_key(tenant_id: int, purpose: str, *parts, params: dict | None = None) -> str:
    """A key a retry derives again: tenant, purpose, a stable counter or time bucket.

    With ``params``, a digest of them is part of the key, so a different request in the
    same window gets its own key instead of Stripe's "key reused" error.
    """
    pieces = ["conveyor", f"t{tenant_id}", purpose, *map(str, parts)]
    if params is not None:
        canonical = json.dumps(params, sort_keys=True, default=str).encode()
        pieces.append(hashlib.sha256(canonical).hexdigest()[:16])
    return "-".join(pieces)
