"""Lead intake: verify and judge a post, claim its keys and store it, then answer.

The inbox row and the post's keys are written in the one transaction whose commit
decides the answer: nothing is answered 2xx that was not stored. An accepted post
waits in the inbox (``pending``) for the lead builder (``app.builder``), woken
once the transaction has committed.
"""

import functools
import secrets
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import parse as parse_limit
from sqlalchemy.exc import SQLAlchemyError

from app import clock
from app.billing.access import is_read_only
from app.builder.wake import wake
from app.extensions import db, limiter
from app.intake import cap, keys, signing
from app.intake import fields as intake_fields
from app.models import InboxItem, InboxStatus, Source, Tenant
from app.tenancy import ALL_TENANTS

KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "Idempotency-Key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "Origin",
    "Referer",
    "X-Forwarded-For",
)
MIN_FILL_SECONDS = 3


@dataclass(frozen=True, slots=True)
class IntakeSource:
    """What intake reads of a source and its workspace: one row, no ORM objects."""

    id: int
    tenant_id: int
    active: bool
    signing_secret: str | None
    thank_you_url: str | None
    rate_limit_per_minute: int
    country: str  # the workspace's (``phone_region``)


@dataclass(frozen=True, slots=True)
class Claim:
    """The keys an accepted post claims, with its contact details (empty when signed)."""

    source: IntakeSource
    keys: list[str]
    contact: str


@dataclass
class IntakeResult:
    http_status: int
    payload: dict
    item: InboxItem
    from_form: bool = False
    # An accepted post's keys, claimed when it is stored (``_claim``): the claim decides
    # whether it is new (202) or a repeat (200, the first post's receipt).
    claim: Claim | None = field(default=None, repr=False)


@functools.cache
def _source_by(column: str) -> sa.Select:
    """The source whose ``column`` is ``:value``, with its workspace's country (built once)."""
    source, tenant = Source.__table__.c, Tenant.__table__.c
    return (
        sa.select(
            source.id,
            source.tenant_id,
            source.active,
            source.signing_secret,
            source.thank_you_url,
            source.rate_limit_per_minute,
            tenant.country,
        )
        .join_from(Source.__table__, Tenant.__table__, tenant.id == source.tenant_id)
        .where(source[column] == sa.bindparam("value"))
    )


def find_source(token: str) -> IntakeSource | None:
    """The source behind a secret address, with its workspace's country (one query)."""
    if not token or len(token) > 64:
        return None
    return _one_source("intake_token", token)


def _one_source(column: str, value) -> IntakeSource | None:
    row = db.session.connection().execute(_source_by(column), {"value": value}).first()
    return IntakeSource(*row) if row is not None else None


def kept_headers(headers) -> dict:
    return {name: headers[name][:500] for name in KEPT_HEADERS if headers.get(name)}


def raw_item(
    source: IntakeSource, body: bytes, content_type: str, headers, truncated: bool
) -> InboxItem:
    """What the sender posted, as the inbox row the answer's transaction will write."""
    return InboxItem(
        tenant_id=source.tenant_id,
        source_id=source.id,
        content_type=content_type.replace("\x00", "")[:200],
        headers=kept_headers(headers),
        body=body,
        body_truncated=truncated,
        status=InboxStatus.RECEIVED,
    )


def reject(
    item: InboxItem, http_status: int, reason: str, message: str, errors=None
) -> IntakeResult:
    errors = {name: str(text) for name, text in (errors or {}).items()}
    item.status = InboxStatus.REJECTED
    item.reason = reason
    item.errors = errors
    item.http_status = http_status
    payload = {"error": message}
    if errors:
        payload["fields"] = errors
    return IntakeResult(http_status, payload, item)


def receive(
    source: IntakeSource, body: bytes, content_type: str, headers, truncated: bool
) -> IntakeResult:
    """Store and judge one post; a good one waits for the lead builder. Commits.

    The inbox row joins the session last, so that it is inserted once, with its
    verdict, by the commit that decides the answer (and never without it). A post
    intake fails to judge (a bug) is kept all the same, answered 400, to be corrected
    and re-processed: whatever the input, the answer leaves its trace.
    """
    item = raw_item(source, body, content_type, headers, truncated)
    try:
        result = _judge(source, item, headers)
    except SQLAlchemyError:
        raise
    except Exception:  # noqa: BLE001 - logged; the post is kept, not lost in a 500
        current_app.logger.exception("intake could not judge a post; it is kept unjudged")
        db.session.rollback()  # whatever the judgement wrote (keys) goes
        item = raw_item(source, body, content_type, headers, truncated)
        result = reject(item, 400, "not_judged", "the post could not be read")
    return _store(item, result)


def record_rate_limited(
    source: IntakeSource, body: bytes, content_type: str, headers, truncated: bool
):
    item = raw_item(source, body, content_type, headers, truncated)
    return _store(item, reject(item, 429, "rate_limited", "too many requests for this source"))


def _store(item: InboxItem, result: IntakeResult) -> IntakeResult:
    """Write the judged post (or, past the minute's cap of refusals, only count it) and
    commit; wake the builder for a good one.

    An accepted post is claimed and inserted by one statement (``_store_claimed``); any
    other is one INSERT. No ORM object joins the session, so nothing is read back."""
    item.http_status = result.http_status
    if result.claim is not None:
        result = _claim(result, _store_claimed(), _row_values(item))
        item.http_status = result.http_status
    elif not (cap.is_refused(item) and cap.only_count(item)):
        db.session.connection().execute(_insert_item(), _row_values(item))
    db.session.commit()
    if item.status == InboxStatus.PENDING:
        wake()
    return result


_ROW_COLUMNS = (
    "tenant_id",
    "source_id",
    "received_at",
    "content_type",
    "headers",
    "body",
    "body_truncated",
    "status",
    "http_status",
    "reason",
    "errors",
    "fields",
    "lead_id",
    "receipt",
    "flagged",
)


def _row_values(item: InboxItem) -> dict:
    values = {name: getattr(item, name) for name in _ROW_COLUMNS}
    values["received_at"] = values["received_at"] or clock.now()
    values["flagged"] = bool(values["flagged"])
    for name in ("headers", "errors", "fields"):
        values[name] = values[name] or {}
    return values


@functools.cache
def _insert_item() -> sa.Insert:
    return sa.insert(InboxItem.__table__)


@functools.cache
def _store_claimed() -> sa.TextClause:
    """The claim and its verdict, then the inbox row with that verdict (one statement)."""
    columns = InboxItem.__table__.c
    return keys.claim_and(
        """, stored AS (
    INSERT INTO inbox_item (tenant_id, source_id, received_at, content_type, headers, body,
        body_truncated, status, http_status, reason, errors, fields, lead_id, receipt, flagged)
    SELECT :tenant_id, :source_id, :received_at, :content_type, CAST(:headers AS json), :body,
        :body_truncated, verdict.status, verdict.http_status, verdict.reason,
        CAST(:errors AS json), CAST(:fields AS json), verdict.lead_id, verdict.receipt,
        verdict.flagged
    FROM verdict
    RETURNING id
)
SELECT stored.id, verdict.* FROM stored, verdict"""
    ).bindparams(
        sa.bindparam("received_at", type_=columns.received_at.type),
        sa.bindparam("headers", type_=columns.headers.type),
        sa.bindparam("errors", type_=columns.errors.type),
        sa.bindparam("fields", type_=columns.fields.type),
        sa.bindparam("body", type_=columns.body.type),
    )


@functools.cache
def _verdict_only() -> sa.TextClause:
    """The claim and its verdict for a post re-processed in place (the ORM writes its row)."""
    return keys.claim_and(" SELECT NULL AS id, verdict.* FROM verdict")


def _claim(result: IntakeResult, statement: sa.TextClause, values: dict) -> IntakeResult:
    """Claim an accepted post's keys and take the verdict: new (pending, 202) or a repeat
    of the post holding a key (duplicate, 200, its receipt and its lead once built)."""
    item, claim = result.item, result.claim
    if claim.contact and claim.keys:
        keys.take_turns(claim.source, claim.keys)
    params = keys.claim_params(claim.source, claim.keys, claim.contact, item.receipt, item.flagged)
    verdict = db.session.connection().execute(statement, {**values, **params}).one()
    keys.unclaim(verdict.unclaim)
    item.id = verdict.id if verdict.id is not None else item.id
    item.status = InboxStatus(verdict.status)
    item.receipt = verdict.receipt
    item.reason = verdict.reason
    item.lead_id = verdict.lead_id
    item.flagged = verdict.flagged
    word = "accepted" if item.status == InboxStatus.PENDING else "duplicate"
    return IntakeResult(
        verdict.http_status, {"id": verdict.receipt, "status": word}, item, result.from_form
    )


def _judge(source: IntakeSource, item: InboxItem, headers) -> IntakeResult:
    if item.body_truncated:
        return reject(item, 413, "too_large", "the body is larger than 64 KB")
    if source.signing_secret:
        problem = signing.verify(source.signing_secret, headers, item.body)
        if problem:
            return reject(item, 401, problem, "missing, bad or stale signature")
    if intake_fields.media_type(item.content_type) not in intake_fields.ACCEPTED_TYPES:
        return reject(item, 415, "unsupported_type", "send application/json or a form")
    try:
        data = intake_fields.parse_body(item.body, item.content_type)
    except intake_fields.UnparseableBody as error:
        return reject(item, 400, "unparseable", f"the body could not be read: {error}")
    from_form = "_form" in data
    if from_form and _looks_like_a_bot(data):
        item.status = InboxStatus.SPAM
        item.reason = "bot"
        item.fields = {"raw": {k: v[:200] for k, v in data.items()}}
        return IntakeResult(200, {"status": "received"}, item, from_form=True)
    result = _accept(source, item, data, keys.idempotency_keys(headers, data))
    result.from_form = from_form
    return result


# A source's posts are counted in Redis, shared by every worker. A busy source with a
# high limit takes its count in leases: one Redis call claims a few posts at once
# (a 6,000th of the minute's limit, so a limit under 12,000 a minute leases one post:
# exact), and this process spends them for at most a second and never after the
# minute's window ends. Posts leased and not spent stay counted, and so does a lease
# refused at the end of a window: the limit is never exceeded, only reached early.
LEASE_SHARE = 6000
LEASE_SECONDS = 1.0


class _Leases:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_source: dict[int, list] = {}  # source id -> [good until (monotonic), posts left]

    def spend(self, source_id: int) -> bool:
        with self.lock:
            lease = self.by_source.get(source_id)
            if lease and lease[1] > 0 and lease[0] > time.monotonic():
                lease[1] -= 1
                return True
        return False

    def keep(self, source_id: int, posts: int, seconds: float) -> None:
        with self.lock:
            self.by_source[source_id] = [time.monotonic() + seconds, posts]


_leases = _Leases()


def seconds_until_allowed(source_id: int, per_minute: int) -> int | None:
    """None while the source is within its per-minute limit; else seconds to wait."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return None
    if _leases.spend(source_id):
        return None
    limit = _per_minute(per_minute)
    lease = max(1, per_minute // LEASE_SHARE)
    try:
        if limiter.limiter.hit(limit, "intake", str(source_id), cost=lease):
            if lease > 1:
                window_ends, _ = limiter.limiter.get_window_stats(limit, "intake", str(source_id))
                _leases.keep(source_id, lease - 1, min(LEASE_SECONDS, window_ends - time.time()))
            return None
        reset_at, _ = limiter.limiter.get_window_stats(limit, "intake", str(source_id))
    except Exception:  # noqa: BLE001 - Redis down: a lead matters more than a rate limit
        current_app.logger.warning(
            "intake rate limit unavailable; accepting the post", exc_info=True
        )
        return None
    return max(1, int(reset_at - time.time()) + 1)


@functools.lru_cache(maxsize=64)
def _per_minute(count: int):
    return parse_limit(f"{count}/minute")


def form_timestamp_token(submission: str) -> str:
    """Signed render time of one hosted form, bound to its submission id: posts faster than
    a person are bots, and a token copied onto other posts names the same submission (so
    they are one post, never more leads)."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="form-ts").dumps(
        [clock.now().timestamp(), submission]
    )


def _looks_like_a_bot(data: dict) -> bool:
    if (data.get("_hp") or "").strip():
        return True
    token = data.get("_ts")
    if not token:
        # The hosted form always sends its timing with its submission id; only the static
        # snippet (honeypot only) sends neither.
        return bool(data.get("_submission"))
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="form-ts")
    try:
        rendered_at, submission = serializer.loads(token, max_age=7 * 24 * 3600)
    except (BadSignature, SignatureExpired, TypeError, ValueError):
        return True
    if submission != data.get("_submission"):
        return True  # a timing token taken from another form
    return clock.now().timestamp() - float(rendered_at) < MIN_FILL_SECONDS


def phone_region(tenant: Tenant | IntakeSource) -> str:
    """Where phone numbers written without a country code are read: the workspace's
    country (not its currency: a British shop may price in euros). Intake's source
    carries its workspace's country."""
    return tenant.country


def new_receipt() -> str:
    """What an accepted post is answered with: random, so it says nothing of other posts."""
    return "r" + secrets.token_hex(15)


def _accept(
    source: IntakeSource, item: InboxItem, data: dict, post_keys: list[str]
) -> IntakeResult:
    """Judge the fields; a good post is to claim its keys (``_claim``) and wait in the inbox
    for the builder."""
    judgement = intake_fields.judge(data, phone_region(source))
    item.fields = judgement.fields
    # A signed source's keys are strict; others' are the same post only with the same details.
    contact = "" if source.signing_secret else intake_fields.contact_details(judgement)
    if not judgement.ok:
        seen = keys.receipt_for(source, post_keys, contact)
        if seen is not None:
            return _duplicate(item, seen)
        return reject(
            item, 422, "invalid_fields", "some fields are missing or invalid", judgement.errors
        )
    item.status = InboxStatus.PENDING
    item.receipt = item.receipt or new_receipt()
    item.reason = None
    item.flagged = not source.active or is_read_only(source.tenant_id)
    return IntakeResult(
        202,
        {"id": item.receipt, "status": "accepted"},
        item,
        claim=Claim(source, post_keys, contact),
    )


def _duplicate(item: InboxItem, receipt: str) -> IntakeResult:
    """A repeat: the same receipt, and the lead when its post has been built already."""
    item.status = InboxStatus.DUPLICATE
    item.receipt = receipt
    item.reason = None
    item.lead_id = db.session.scalar(
        sa.select(InboxItem.lead_id)
        .where(
            InboxItem.tenant_id == item.tenant_id,
            InboxItem.receipt == receipt,
            InboxItem.status == InboxStatus.ACCEPTED,
        )
        .limit(1)
        .execution_options(**ALL_TENANTS)
    )
    return IntakeResult(200, {"id": receipt, "status": "duplicate"}, item)


def reprocess(item: InboxItem, corrected: dict) -> IntakeResult | None:
    """Judge a rejected post again with the owner's corrections; a good one waits for the
    lead builder. Commits, then wakes the builder.

    None when the post is no longer rejected: the row is locked and read again first, so
    of several re-processings at once (or one racing the builder) only one takes it.
    """
    db.session.refresh(item, with_for_update=True)
    if item.status != InboxStatus.REJECTED:
        db.session.rollback()
        return None
    source = _one_source("id", item.source_id)
    data = {k: v for k, v in corrected.items() if isinstance(v, str)}
    result = _accept(source, item, data, keys.idempotency_keys(item.headers, data))
    if result.claim is not None:
        result = _claim(result, _verdict_only(), {})
    if item.status != InboxStatus.REJECTED:
        item.errors = {}
    # Kept either way: the corrections are never lost, even when still invalid.
    db.session.commit()
    if item.status == InboxStatus.PENDING:
        wake()
    return result
