"""Lead intake: store the raw post first, then judge it, deduplicate and route it.

The inbox row and the lead are written in the one transaction whose commit
decides the answer: nothing is answered 2xx that was not stored.
"""

import functools
import hashlib
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import parse as parse_limit
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import contains_eager

from app.billing.access import is_read_only
from app.extensions import db, limiter
from app.intake import fields as intake_fields
from app.intake import signing
from app.models import (
    Contact,
    EventKind,
    InboxItem,
    InboxStatus,
    IntakeKey,
    Lead,
    LeadEvent,
    Membership,
    Phase,
    Role,
    Source,
    Tenant,
    utcnow,
)
from app.pipeline import first_stage
from app.tenancy import ALL_TENANTS, active_members

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
# Phone numbers written without a country code are read in the workspace's country,
# guessed from its currency (then its language).
REGION_BY_CURRENCY = {
    "RUB": "RU",
    "KZT": "KZ",
    "UAH": "UA",
    "BYN": "BY",
    "GBP": "GB",
    "USD": "US",
    "CAD": "CA",
    "AUD": "AU",
    "INR": "IN",
    "CHF": "CH",
    "PLN": "PL",
}
REGION_BY_LANGUAGE = {"ru": "RU", "en": "US"}


@dataclass
class IntakeResult:
    http_status: int
    payload: dict
    item: InboxItem
    lead: Lead | None = None
    from_form: bool = False

    @property
    def stored_lead(self) -> bool:
        return self.item.status in (InboxStatus.ACCEPTED, InboxStatus.DUPLICATE)


def find_source(token: str) -> Source | None:
    """The source behind a secret address; its workspace comes in the same query."""
    if not token or len(token) > 64:
        return None
    return db.session.scalar(
        sa.select(Source)
        .join(Source.tenant)
        .options(contains_eager(Source.tenant))
        .where(Source.intake_token == token)
        .execution_options(**ALL_TENANTS)
    )


def kept_headers(headers) -> dict:
    return {name: headers[name][:500] for name in KEPT_HEADERS if headers.get(name)}


def raw_item(source: Source, body: bytes, content_type: str, headers, truncated: bool) -> InboxItem:
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
    source: Source, body: bytes, content_type: str, headers, truncated: bool
) -> IntakeResult:
    """Store, judge and (when it is good) turn one post into a lead. Commits.

    The inbox row joins the session last, so that it is inserted once, with its
    verdict, by the commit that decides the answer (and never without it).
    """
    item = raw_item(source, body, content_type, headers, truncated)
    result = _judge(source, item, headers)
    item.http_status = result.http_status
    db.session.add(item)
    db.session.commit()
    return result


def record_rate_limited(source: Source, body: bytes, content_type: str, headers, truncated: bool):
    item = raw_item(source, body, content_type, headers, truncated)
    result = reject(item, 429, "rate_limited", "too many requests for this source")
    db.session.add(item)
    db.session.commit()
    return result


def _judge(source: Source, item: InboxItem, headers) -> IntakeResult:
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
    result = _accept(source, item, data, idempotency_keys(headers, data))
    result.from_form = from_form
    return result


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


def form_timestamp_token() -> str:
    """Signed render time for the hosted form: posts faster than a person are bots."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="form-ts").dumps(
        time.time()
    )


def _looks_like_a_bot(data: dict) -> bool:
    if (data.get("_hp") or "").strip():
        return True
    token = data.get("_ts")
    if not token:
        return False
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="form-ts")
    try:
        rendered_at = serializer.loads(token, max_age=7 * 24 * 3600)
    except (BadSignature, SignatureExpired):
        return True
    return time.time() - float(rendered_at) < MIN_FILL_SECONDS


def phone_region(tenant: Tenant) -> str:
    """Where phone numbers written without a country code are read."""
    return region_for(tenant.currency, tenant.language)


def region_for(currency: str, language: str) -> str:
    return REGION_BY_CURRENCY.get(currency) or REGION_BY_LANGUAGE.get(language, "US")


def _accept(source: Source, item: InboxItem, data: dict, keys: list[str]) -> IntakeResult:
    judgement = intake_fields.judge(data, phone_region(source.tenant))
    item.fields = judgement.fields
    if not judgement.ok:
        existing = _existing_lead_for(source, keys)
        if existing is not None:
            return _duplicate(item, existing)
        return reject(
            item, 422, "invalid_fields", "some fields are missing or invalid", judgement.errors
        )
    claimed = _claim_keys(source, keys)
    if claimed is None:
        # Seen before (or an identical post committed meanwhile): answer with its lead.
        existing = _existing_lead_for(source, keys)
        if existing is None:
            raise IntakeKeyConflict(keys)
        return _duplicate(item, existing)
    lead = create_lead(source, judgement)
    if claimed:
        db.session.execute(
            sa.update(IntakeKey).where(IntakeKey.id.in_(claimed)).values(lead_id=lead.id)
        )
    item.status = InboxStatus.ACCEPTED
    item.lead_id = lead.id
    return IntakeResult(201, {"id": lead.id, "status": "created"}, item, lead)


class IntakeKeyConflict(SQLAlchemyError):
    """A key is taken but names no lead: the sender is told to retry (503)."""


def _claim_keys(source: Source, keys: list[str]) -> list[int] | None:
    """Insert the post's keys in one statement; their ids, or None when any was taken.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent identical post to commit or
    roll back, so exactly one of them claims the keys and the other sees its lead.
    """
    if not keys:
        return []
    insert = (postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(
        IntakeKey
    )
    now = utcnow()
    claimed = db.session.scalars(
        insert.values(
            [
                {
                    "tenant_id": source.tenant_id,
                    "source_id": source.id,
                    "key": key,
                    "created_at": now,
                }
                for key in keys
            ]
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "source_id", "key"])
        .returning(IntakeKey.id)
    ).all()
    if len(claimed) == len(keys):
        return list(claimed)
    if claimed:  # one key was new, another taken: this post is not new after all
        db.session.execute(sa.delete(IntakeKey).where(IntakeKey.id.in_(claimed)))
    return None


def _duplicate(item: InboxItem, lead_id: int) -> IntakeResult:
    item.status = InboxStatus.DUPLICATE
    item.lead_id = lead_id
    return IntakeResult(200, {"id": lead_id, "status": "duplicate"}, item)


def _existing_lead_for(source: Source, keys: list[str]) -> int | None:
    if not keys:
        return None
    return db.session.scalar(
        sa.select(IntakeKey.lead_id)
        .where(
            IntakeKey.tenant_id == source.tenant_id,
            IntakeKey.source_id == source.id,
            IntakeKey.key.in_(keys),
            IntakeKey.lead_id.is_not(None),
        )
        .limit(1)
        .execution_options(**ALL_TENANTS)
    )


def find_or_create_contact(
    tenant_id: int, name: str, email: str | None, phone: str | None, company: str | None
) -> Contact:
    """The workspace's contact with this email or phone, or a new one."""
    conditions = []
    if email:
        conditions.append(Contact.email == email)
    if phone:
        conditions.append(Contact.phone == phone)
    contact = None
    if conditions:
        contact = db.session.scalar(
            sa.select(Contact)
            .where(Contact.tenant_id == tenant_id, sa.or_(*conditions))
            .order_by(Contact.id)
            .limit(1)
            .execution_options(**ALL_TENANTS)
        )
    if contact is None:
        contact = Contact(
            tenant_id=tenant_id,
            name=name or email or phone or "?",
            email=email,
            phone=phone,
            company=company or None,
        )
        db.session.add(contact)
        db.session.flush()
    else:
        contact.email = contact.email or email
        contact.phone = contact.phone or phone
        contact.company = contact.company or company or None
    return contact


def next_assignee(tenant_id: int) -> int | None:
    """Round robin over active lead generators; the first active owner when there are none.

    The common case is one statement: the generator assigned longest ago (skipping
    ones a concurrent post holds) is stamped and named at once.
    """
    generators = (
        sa.select(Membership.id)
        .where(
            Membership.tenant_id == tenant_id,
            Membership.role == Role.LEAD_GENERATOR,
            Membership.active.is_(True),
        )
        .order_by(Membership.last_assigned_at.asc().nulls_first(), Membership.id)
        .limit(1)
    )
    now = utcnow()
    user_id = db.session.scalar(
        sa.update(Membership)
        .where(Membership.id == generators.with_for_update(skip_locked=True).scalar_subquery())
        .values(last_assigned_at=now)
        .returning(Membership.user_id)
        .execution_options(synchronize_session=False)
    )
    if user_id is not None:
        return user_id
    # Every generator is busy with a concurrent post (wait for one), or there are none.
    membership_id = db.session.scalar(generators.execution_options(**ALL_TENANTS))
    if membership_id is not None:
        return db.session.scalar(
            sa.update(Membership)
            .where(Membership.id == membership_id)
            .values(last_assigned_at=now)
            .returning(Membership.user_id)
            .execution_options(synchronize_session=False)
        )
    owners = active_members(tenant_id, Role.OWNER)
    return owners[0].user_id if owners else None


def create_lead(source: Source, judgement: intake_fields.Judgement) -> Lead:
    values = judgement.fields
    contact = find_or_create_contact(
        source.tenant_id,
        values.get("name") or "",
        judgement.email,
        judgement.phone,
        values.get("company"),
    )
    title = values.get("company") or values.get("name") or judgement.email or judgement.phone
    lead = Lead(
        tenant_id=source.tenant_id,
        contact_id=contact.id,
        source_id=source.id,
        stage_id=first_stage(source.tenant_id, Phase.GENERATION).id,
        owner_id=next_assignee(source.tenant_id),
        title=title[:200],
        message=values.get("message") or None,
        budget=values.get("budget") or None,
        external_id=values.get("external_id") or None,
        decision_date=judgement.decision_date,
        utm={k: values[k] for k in intake_fields.UTM_FIELDS if values.get(k)},
        extra=values.get("extra") or {},
        flagged=not source.active or is_read_only(source.tenant_id),
    )
    db.session.add(lead)
    db.session.flush()
    db.session.add(
        LeadEvent(
            tenant_id=lead.tenant_id,
            lead_id=lead.id,
            kind=EventKind.INTAKE,
            data={"source": source.name},
        )
    )
    return lead


def reprocess(item: InboxItem, corrected: dict) -> IntakeResult:
    """Judge a rejected post again with the owner's corrections. Commits."""
    source = db.session.get(Source, item.source_id)
    data = {k: v for k, v in corrected.items() if isinstance(v, str)}
    keys = idempotency_keys(item.headers, data)
    result = _accept(source, item, data, keys)
    if item.status != InboxStatus.REJECTED:
        item.reason = None
        item.errors = {}
    # Kept either way: the corrections are never lost, even when still invalid.
    db.session.commit()
    return result
