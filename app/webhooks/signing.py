"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` under the
secret (the bytes behind ``whsec_``). While a rotated-out secret is still valid, both
sign, separated by a space, so a receiver holding either verifies the delivery.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(endpoint, message_id: str, body: bytes, now: datetime) -> dict:
    timestamp = int(now.timestamp())
    secrets_in_force = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > now:
        secrets_in_force.append(endpoint.previous_secret)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(s, message_id, timestamp, body) for s in secrets_in_force
        ),
        "Content-Type": "application/json",
        "User-Agent": "Conveyor-Webhooks/1",
    }
