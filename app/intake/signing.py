"""Standard Webhooks signatures: ``whsec_`` secrets and ``v1,<base64>`` HMAC-SHA256."""

import base64
import hashlib
import hmac
import secrets

from app import clock

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
# Unix seconds: ten digits until the year 2286. Longer is no time a sender means (and a
# 400-digit number overflowed the float it was compared with).
MAX_TIMESTAMP_DIGITS = 12


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value a sender would send."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers, body: bytes, now: float | None = None) -> str | None:
    """None when the signature is good; otherwise a short reason for the inbox."""
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (message_id and timestamp and signatures):
        return "signature_missing"
    sent_at = _unix_seconds(timestamp)
    if sent_at is None:
        return "signature_bad_timestamp"
    if abs((now if now is not None else clock.now().timestamp()) - sent_at) > TOLERANCE_SECONDS:
        return "signature_stale"
    expected = sign(secret, message_id, sent_at, body).split(",", 1)[1].encode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Bytes, not str: compare_digest refuses non-ASCII strings, and headers may hold any.
        if version == "v1" and hmac.compare_digest(value.encode("latin-1", "replace"), expected):
            return None
    return "signature_mismatch"


def _unix_seconds(text: str) -> int | None:
    """The timestamp header as Unix seconds: ASCII digits only, at most a dozen of them."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_TIMESTAMP_DIGITS):
        return None
    return int(text)
