"""Idempotency keys: a repeated post is answered with its first post's receipt.

A post's keys are its ``Idempotency-Key`` and ``webhook-id`` headers, its
``external_id`` and the hosted form's submission id. On a signed source a key is one
post, whatever it says. On a source without signatures anyone who reads its address
can post a key first, so a key is one post only together with the same contact details
(``fields.contact_details``): the same key with other details is kept as a post of its
own, flagged as a reused key, and never swallowed as a "duplicate".
"""

import functools
import hashlib

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from app import clock
from app.extensions import db
from app.models import IntakeKey, Source
from app.tenancy import ALL_TENANTS


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


# The claim of an accepted post and its verdict, in one statement (``claim_and``): the
# keys are inserted for the post's receipt; a key another post of the same contact
# details holds answers with that post's receipt instead (``ON CONFLICT DO UPDATE``
# returns the holder's row even when it committed while this statement waited for it,
# which ``DO NOTHING`` and a later read in the same statement would not see). A post
# without keys claims nothing and is new. ``verdict`` is one row: the inbox row's
# status, answer, receipt, reason, the lead of the post it repeats (once built), whether
# it is flagged, and ``unclaim``, the keys this statement claimed for a post that turned
# out to be a repeat (one key new, another taken), which the caller deletes.
# The lookups are written to reach each key and receipt through its index even where the
# planner has no statistics yet (a new workspace's first minutes): a key compared per
# row of a LATERAL (not ``= ANY``, which it may filter by instead), a receipt looked up
# on its own behind ``OFFSET 0`` (not the workspace's whole status index).
_CLAIM_AND_VERDICT = """
claimed AS (
    INSERT INTO intake_key (tenant_id, source_id, key, contact, receipt, created_at)
    SELECT :tenant_id, :source_id, post_key, :contact, :receipt, :now
    FROM unnest(CAST(:keys AS varchar[])) AS post_key
    ON CONFLICT (tenant_id, source_id, key, contact)
        DO UPDATE SET receipt = intake_key.receipt
    RETURNING id, receipt, xmax = 0 AS new
), seen AS (
    SELECT (SELECT receipt FROM claimed WHERE receipt <> :receipt LIMIT 1) AS receipt
), verdict AS (
    SELECT
        CASE WHEN seen.receipt IS NULL THEN 'pending' ELSE 'duplicate' END AS status,
        CASE WHEN seen.receipt IS NULL THEN 202 ELSE 200 END AS http_status,
        COALESCE(seen.receipt, :receipt) AS receipt,
        CASE WHEN seen.receipt IS NULL AND :contact <> '' AND EXISTS (
            SELECT 1 FROM unnest(CAST(:keys AS varchar[])) AS post_key, LATERAL (
                SELECT 1 FROM intake_key AS other
                WHERE other.tenant_id = :tenant_id AND other.source_id = :source_id
                  AND other.key = post_key
                  AND other.contact <> :contact AND other.receipt <> :receipt
                LIMIT 1
            ) AS taken
        ) THEN 'reused_key' END AS reason,
        (
            SELECT earlier.lead_id FROM (
                SELECT lead_id, tenant_id, status FROM inbox_item
                WHERE seen.receipt IS NOT NULL AND receipt = seen.receipt
                OFFSET 0
            ) AS earlier
            WHERE earlier.tenant_id = :tenant_id AND earlier.status = 'accepted'
            LIMIT 1
        ) AS lead_id,
        seen.receipt IS NULL AND :flagged AS flagged,
        ARRAY(SELECT id FROM claimed WHERE new AND seen.receipt IS NOT NULL) AS unclaim
    FROM seen
)
"""


@functools.cache
def claim_and(then: str) -> sa.TextClause:
    """``WITH <the claim and its verdict> <then>``: ``then`` stores the verdict (the
    inbox row's INSERT, or a SELECT of it for a post re-processed in place). Built once
    per ``then``; executed with ``claim_params``."""
    return sa.text("WITH " + _CLAIM_AND_VERDICT + then).bindparams(
        sa.bindparam("keys", type_=ARRAY(sa.String)),
        sa.bindparam("now", type_=IntakeKey.__table__.c.created_at.type),
    )


def claim_params(
    source: Source, keys: list[str], contact: str, receipt: str, flagged: bool
) -> dict:
    """The parameters of ``claim_and`` for a post of ``source`` with these keys and contact
    details (empty on a signed source), its new receipt and whether it is flagged."""
    return {
        "tenant_id": source.tenant_id,
        "source_id": source.id,
        "keys": list(dict.fromkeys(keys)),
        "contact": contact,
        "receipt": receipt,
        "flagged": flagged,
        "now": clock.now(),
    }


def unclaim(key_ids: list[int]) -> None:
    """Give back the keys a repeat claimed (one key was new, another taken: not a new post)."""
    if key_ids:
        db.session.connection().execute(sa.delete(IntakeKey).where(IntakeKey.id.in_(key_ids)))


def receipt_for(source: Source, keys: list[str], contact: str) -> str | None:
    """The receipt of an earlier post of this source that claimed one of these keys with
    the same contact details."""
    if not keys:
        return None
    return db.session.scalar(
        sa.select(IntakeKey.receipt)
        .where(
            IntakeKey.tenant_id == source.tenant_id,
            IntakeKey.source_id == source.id,
            IntakeKey.key.in_(keys),
            IntakeKey.contact == contact,
        )
        .limit(1)
        .execution_options(**ALL_TENANTS)
    )


def take_turns(source: Source, keys: list[str]) -> None:
    """Wait until no other transaction claims one of these keys of this source; held until
    commit. Taken in one order, so two posts never wait for each other crosswise. Posts
    naming the same key on a source without signatures take turns this way, so the claim
    that follows (a statement of its own, seeing what committed before) sees every claim
    of its keys with other details."""
    names = sorted({f"{source.id}:{key}" for key in keys})
    db.session.connection().execute(
        _locks(len(names)), {f"name{n}": name for n, name in enumerate(names)}
    )


@functools.cache
def _locks(count: int) -> sa.TextClause:
    return sa.text(
        "SELECT "
        + ", ".join(f"pg_advisory_xact_lock(hashtextextended(:name{n}, 0))" for n in range(count))
    )
