"""Idempotency keys: a repeated post is answered with its first post's receipt.

A post's keys are its ``Idempotency-Key`` and ``webhook-id`` headers, its
``external_id`` and the hosted form's submission id. On a signed source a key is one
post, whatever it says. On a source without signatures anyone who reads its address
can post a key first, so a key is one post only together with the same contact details
(``fields.contact_details``): the same key with other details is kept as a post of its
own, flagged as a reused key, and never swallowed as a "duplicate".
"""

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert

from app import clock
from app.extensions import db
from app.models import IntakeKey, Source
from app.tenancy import ALL_TENANTS


@dataclass(frozen=True, slots=True)
class Claim:
    seen: str | None = None  # the receipt of the post these keys belong to: a duplicate
    reused: bool = False  # a key another post claimed with other contact details


def _key(kind: str, value: str) -> str:
    """The stored form of a sender's key: itself when short, else a digest of all of it."""
    if len(value) <= 200:
        return f"{kind}:{value}"
    return f"{kind}:sha256:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def idempotency_keys(headers, data: dict) -> list[str]:
    keys = []
    if headers.get("Idempotency-Key"):
        keys.append(_key("idem", headers["Idempotency-Key"]))
    if headers.get("webhook-id"):
        keys.append(_key("whid", headers["webhook-id"]))
    if (data.get("external_id") or "").strip():
        keys.append(_key("ext", data["external_id"].strip()))
    if data.get("_submission"):
        keys.append(_key("form", data["_submission"]))
    return keys


def claim(source: Source, keys: list[str], contact: str, receipt: str) -> Claim:
    """Claim the post's keys (with its contact details, empty on a signed source) for its
    receipt. ``seen`` when they belong to another post (nothing is claimed then).

    ``ON CONFLICT DO NOTHING`` waits for a concurrent identical post to commit or roll
    back, so exactly one of them claims the keys and the other sees its receipt. On a
    source without signatures posts naming the same key take turns (an advisory lock
    per key), so a post sees every claim of its keys with other details.
    """
    if not keys:
        return Claim()
    if contact:
        _take_turns(source, keys)
    claimed = db.session.scalars(
        postgresql_insert(IntakeKey)
        .values(
            [
                {
                    "tenant_id": source.tenant_id,
                    "source_id": source.id,
                    "key": key,
                    "contact": contact,
                    "receipt": receipt,
                    "created_at": clock.now(),
                }
                for key in keys
            ]
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "source_id", "key", "contact"])
        .returning(IntakeKey.id)
    ).all()
    if len(claimed) < len(keys):
        seen = receipt_for(source, keys, contact, other_than=receipt)
        if seen is not None:
            if claimed:  # one key was new, another taken: this post is not new after all
                db.session.execute(sa.delete(IntakeKey).where(IntakeKey.id.in_(claimed)))
            return Claim(seen=seen)
        # else the keys it did not get were its own (a re-processed post)
    return Claim(reused=bool(contact) and _claimed_by_others(source, keys, contact, receipt))


def receipt_for(
    source: Source, keys: list[str], contact: str, other_than: str | None = None
) -> str | None:
    """The receipt of an earlier post of this source that claimed one of these keys with
    the same contact details."""
    if not keys:
        return None
    query = _claims(source, keys).where(IntakeKey.contact == contact)
    if other_than is not None:
        query = query.where(IntakeKey.receipt != other_than)
    return db.session.scalar(query.limit(1))


def _claimed_by_others(source: Source, keys: list[str], contact: str, receipt: str) -> bool:
    """Whether another post claimed one of these keys with other contact details."""
    query = _claims(source, keys).where(IntakeKey.contact != contact, IntakeKey.receipt != receipt)
    return db.session.scalar(query.limit(1)) is not None


def _claims(source: Source, keys: list[str]):
    return (
        sa.select(IntakeKey.receipt)
        .where(
            IntakeKey.tenant_id == source.tenant_id,
            IntakeKey.source_id == source.id,
            IntakeKey.key.in_(keys),
        )
        .execution_options(**ALL_TENANTS)
    )


def _take_turns(source: Source, keys: list[str]) -> None:
    """Wait until no other transaction claims one of these keys of this source; held until
    commit. Taken in one order, so two posts never wait for each other crosswise."""
    names = sorted({f"{source.id}:{key}" for key in keys})
    db.session.execute(
        sa.select(
            *(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(name, 0)) for name in names)
        )
    )
