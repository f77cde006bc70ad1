"""Opaque ids: ``lead_3KXW2M6Q7TJ4A``, never the database's counters.

An id is the row's number enciphered (a four-round Feistel network over 64 bits, keyed
by HMAC with the app's secret and the kind), so ids say nothing about how many rows a
workspace has, cannot be guessed from one another, and decode without a lookup table.
"""

import base64
import hashlib
import hmac

from flask import current_app

ROUNDS = 4
MASK = 0xFFFFFFFF
KINDS = ("lead", "person", "stage", "source", "touch", "promise", "conflict", "user", "event")


def _round_key(kind: str, n: int) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"opaque-id:{kind}:{n}".encode(), hashlib.sha256).digest()


def _f(key: bytes, half: int) -> int:
    digest = hmac.new(key, half.to_bytes(4, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def encode(kind: str, number: int | None) -> str | None:
    if number is None:
        return None
    left, right = number >> 32 & MASK, number & MASK
    for n in range(ROUNDS):
        left, right = right, left ^ _f(_round_key(kind, n), right)
    raw = (left << 32 | right).to_bytes(8, "big")
    return f"{kind}_{base64.b32encode(raw).decode().rstrip('=')}"


def decode(kind: str, value: str) -> int | None:
    """The row number behind an id of this kind; None for anything else."""
    prefix = f"{kind}_"
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) > 40:
        return None
    try:
        raw = base64.b32decode(value[len(prefix) :] + "===", casefold=True)
    except ValueError:
        return None
    if len(raw) != 8:
        return None
    whole = int.from_bytes(raw, "big")
    left, right = whole >> 32 & MASK, whole & MASK
    for n in reversed(range(ROUNDS)):
        left, right = right ^ _f(_round_key(kind, n), left), left
    number = left << 32 | right
    # Rows are numbered by PostgreSQL integers: a made-up id deciphers to a larger number,
    # which would make the lookup fail (500) rather than find nothing (404).
    return number if 0 < number < 2**31 else None
