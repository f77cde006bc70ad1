"""The intake hot path on PostgreSQL: a good post stored in one SQL statement.

``POST /in/<token>`` is the one route machines hit in bulk, so on PostgreSQL it is
served below Flask by a small WSGI layer. A post that will become a lead (a JSON or
urlencoded body that reads and judges well, within its source's rate limit) costs:

1. the source, its workspace's country and its subscription, from a few seconds' cache
   in this process (else one ``SELECT``);
2. the rate limit, counted in Redis (a busy source in leases, see
   ``services.seconds_until_allowed``);
3. one autocommit statement that first checks the cached source is still what the
   database holds (the address not rotated, the same signing secret, the same paused
   state and billing state: else the post is served again from a fresh lookup), then
   claims the post's keys, finds or makes the contact, stamps the next lead generator,
   inserts the lead, its timeline line and the inbox row with the raw body — all or
   nothing, so the answer is never 2xx for something that was not stored.

A repeat of a key is answered with the lead that key names (one more statement).
Everything else — unknown or rotated tokens, bad signatures, bodies that do not read
or judge well, the rate limit, the embeddable form, SQLite — is handed unchanged to
the Flask view (``app.intake.views.receive``), which stores and answers it through
the ORM. Both paths share the judging code (``app.intake.fields``, ``services``);
the intake tests run against this path whenever the suite runs on PostgreSQL.
"""

import io
import json
import logging
import os
import select
import threading
import time
import weakref
from types import SimpleNamespace

import psycopg
import sqlalchemy as sa

from app.billing.access import Access, access_for
from app.billing.stripe_client import billing_enabled
from app.intake import fields as intake_fields
from app.intake import services, signing
from app.models import EventKind, InboxStatus, Phase, Role, utcnow

log = logging.getLogger(__name__)

PREFIX = "/in/"
FAST_TYPES = ("application/json", "application/x-www-form-urlencoded")
# Set by this layer once a post is counted against its source's rate limit (None: within
# it; else the seconds to wait): the view, when handed the post, does not count it twice.
RATE_LIMITED_KEY = "conveyor.intake.retry_after"

SOURCE_SQL = """
SELECT s.id, s.tenant_id, s.active, s.signing_secret, s.rate_limit_per_minute,
       t.currency, t.language, sub.status, sub.trial_ends_at, sub.stripe_subscription_id
FROM source AS s
JOIN tenant AS t ON t.id = s.tenant_id
LEFT JOIN subscription AS sub ON sub.tenant_id = s.tenant_id
WHERE s.intake_token = %(token)s
"""

# The inbox row of a post that became a lead or repeated one (its lead id follows).
INBOX_ROW = """
INSERT INTO inbox_item (
    tenant_id, source_id, received_at, content_type, headers, body, body_truncated,
    status, http_status, reason, errors, fields, lead_id
)
SELECT %(tenant)s, %(source)s, %(now)s, %(content_type)s, %(headers)s::json, %(body)s,
       false, %(inbox_status)s, %(inbox_http)s, NULL, '{}'::json, %(fields)s::json
"""

# Mirrors services.create_lead / _claim_keys / next_assignee / find_or_create_contact.
# The sub-statements of one statement cannot see each other's rows, so the lead's id
# is taken from its sequence first and the keys name it from the start; when a key
# was taken (``fresh`` false) nothing else is written, and a key row that did get in
# names a lead that was never inserted, which fails the statement as a whole.
# A known contact is only written when the post fills a gap in it, and before the lead
# generator's row is locked (``free_pick`` reads ``patched``), in the ORM path's order.
ACCEPT_SQL = """
WITH still AS MATERIALIZED (
    SELECT s.name
    FROM source AS s
    LEFT JOIN subscription AS sub ON sub.tenant_id = s.tenant_id
    WHERE s.id = %(source)s AND s.intake_token = %(token)s
      AND s.signing_secret IS NOT DISTINCT FROM %(signing_secret)s
      AND s.active = %(active)s
      AND sub.status IS NOT DISTINCT FROM %(sub_status)s
      AND sub.trial_ends_at IS NOT DISTINCT FROM %(trial_ends_at)s
      AND sub.stripe_subscription_id IS NOT DISTINCT FROM %(stripe_id)s
),
ids AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('lead', 'id')) AS lead_id
),
claim AS (
    INSERT INTO intake_key (tenant_id, source_id, key, created_at, lead_id)
    SELECT %(tenant)s, %(source)s, k, %(now)s, (SELECT lead_id FROM ids)
    FROM unnest(%(keys)s::varchar[]) AS k
    WHERE EXISTS (SELECT 1 FROM still)
    ON CONFLICT (tenant_id, source_id, key) DO NOTHING
    RETURNING id
),
go AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM still) AND (SELECT count(*) FROM claim) = %(key_count)s
        AS fresh
),
found AS MATERIALIZED (
    SELECT id FROM (
        SELECT id FROM contact WHERE tenant_id = %(tenant)s AND email = %(email)s
        UNION ALL
        SELECT id FROM contact WHERE tenant_id = %(tenant)s AND phone = %(phone)s
    ) AS person
    WHERE (SELECT fresh FROM go)
    ORDER BY id LIMIT 1
),
patched AS (
    UPDATE contact
    SET email = coalesce(nullif(email, ''), %(email)s),
        phone = coalesce(nullif(phone, ''), %(phone)s),
        company = coalesce(nullif(company, ''), %(company)s)
    WHERE id = (SELECT id FROM found)
      AND ((nullif(email, '') IS NULL AND %(email)s::text IS NOT NULL)
           OR (nullif(phone, '') IS NULL AND %(phone)s::text IS NOT NULL)
           OR (nullif(company, '') IS NULL AND %(company)s::text IS NOT NULL))
    RETURNING id
),
made AS (
    INSERT INTO contact (tenant_id, name, email, phone, company, created_at)
    SELECT %(tenant)s, %(contact_name)s, %(email)s, %(phone)s, %(company)s, %(now)s
    WHERE (SELECT fresh FROM go) AND NOT EXISTS (SELECT 1 FROM found)
    RETURNING id
),
free_pick AS MATERIALIZED (
    SELECT id FROM membership
    WHERE tenant_id = %(tenant)s AND role = %(generator)s AND active
      AND (SELECT fresh FROM go)
      AND (SELECT count(*) FROM patched) >= 0
    ORDER BY last_assigned_at ASC NULLS FIRST, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
free_gen AS (
    UPDATE membership SET last_assigned_at = %(now)s
    WHERE id = (SELECT id FROM free_pick)
    RETURNING user_id
),
busy_gen AS (
    UPDATE membership SET last_assigned_at = %(now)s
    WHERE id = (
        SELECT id FROM membership
        WHERE tenant_id = %(tenant)s AND role = %(generator)s AND active
        ORDER BY last_assigned_at ASC NULLS FIRST, id
        LIMIT 1
    )
      AND (SELECT fresh FROM go) AND NOT EXISTS (SELECT 1 FROM free_gen)
    RETURNING user_id
),
new_lead AS (
    INSERT INTO lead (
        id, tenant_id, contact_id, source_id, stage_id, owner_id, title, value_minor,
        message, budget, external_id, decision_date, utm, extra, flagged,
        created_at, last_activity_at, stage_entered_at
    )
    SELECT
        (SELECT lead_id FROM ids), %(tenant)s,
        coalesce((SELECT id FROM found), (SELECT id FROM made)), %(source)s,
        (SELECT id FROM stage
         WHERE tenant_id = %(tenant)s AND phase = %(phase)s AND NOT is_won AND NOT is_lost
         ORDER BY position LIMIT 1),
        coalesce(
            (SELECT user_id FROM free_gen),
            (SELECT user_id FROM busy_gen),
            (SELECT user_id FROM membership
             WHERE tenant_id = %(tenant)s AND role = %(owner)s AND active
             ORDER BY id LIMIT 1)
        ),
        %(title)s, 0, %(message)s, %(budget)s, %(external_id)s, %(decision_date)s,
        %(utm)s::json, %(extra)s::json, %(flagged)s, %(now)s, %(now)s, %(now)s
    WHERE (SELECT fresh FROM go)
    RETURNING id, tenant_id
),
timeline AS (
    INSERT INTO lead_event (tenant_id, lead_id, kind, data, created_at)
    SELECT tenant_id, id, %(event_kind)s, json_build_object('source', (SELECT name FROM still)),
           %(now)s
    FROM new_lead
),
inbox AS (
    {INBOX_ROW}, id FROM new_lead
)
SELECT EXISTS (SELECT 1 FROM still), (SELECT fresh FROM go), (SELECT id FROM new_lead)
"""

DUPLICATE_SQL = """
WITH prior AS MATERIALIZED (
    SELECT lead_id FROM intake_key
    WHERE tenant_id = %(tenant)s AND source_id = %(source)s AND key = ANY(%(keys)s::varchar[])
      AND lead_id IS NOT NULL
    LIMIT 1
)
{INBOX_ROW}, lead_id FROM prior
RETURNING lead_id
"""

STALE = object()  # the cached source no longer matches the database
SOURCE_CACHE_SECONDS = 5.0
SOURCE_CACHE_SIZE = 1024

UNAVAILABLE = (
    "503 SERVICE UNAVAILABLE",
    {"error": "temporarily unavailable, retry later"},
    [("Retry-After", "5")],
)


def _compact(sql: str) -> str:
    """The statement on one line: psycopg parses the placeholders of a statement once and
    keeps the result only for statements up to 4,096 bytes (else again on every post)."""
    compact = " ".join(sql.split())
    if len(compact.encode()) > 4096:
        raise AssertionError(f"{len(compact.encode())} bytes: over psycopg's cache limit")
    return compact


SOURCE_SQL, ACCEPT_SQL, DUPLICATE_SQL = (
    _compact(sql.replace("{INBOX_ROW}", INBOX_ROW))
    for sql in (SOURCE_SQL, ACCEPT_SQL, DUPLICATE_SQL)
)


class FastIntake:
    """WSGI layer in front of the Flask app for ``POST /in/<token>`` on PostgreSQL."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.idle: list[psycopg.Connection] = []  # autocommit connections between posts
        self.lock = threading.Lock()
        self.pid = os.getpid()
        # Closed when the app goes away (tests make many apps), not left to the GC.
        weakref.finalize(self, _close_all, self.idle)
        self.sources: dict[str, tuple[float, tuple]] = {}  # token -> (good until, row)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PREFIX):
            return self.wsgi_app(environ, start_response)
        token = path[len(PREFIX) :]
        content_type = environ.get("CONTENT_TYPE", "")
        length = environ.get("CONTENT_LENGTH", "")
        if (
            not token
            or len(token) > 64
            or "/" in token
            or intake_fields.media_type(content_type) not in FAST_TYPES
            or not length.isdigit()
            or int(length) > intake_fields.MAX_BODY_BYTES
        ):
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)  # the view reads it again when handed over
        answer = self._serve(environ, token, body, content_type, cached=True)
        if answer is STALE:  # the source changed since it was cached: look it up again
            answer = self._serve(environ, token, body, content_type, cached=False)
            if answer is STALE:  # changed again meanwhile: the view reads it all afresh
                answer = None
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, payload, extra_headers = answer
        data = json.dumps(payload).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            *extra_headers,
        ]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response(status, headers)
        return [data]

    # -- the decision -------------------------------------------------------------

    def _serve(self, environ, token: str, body: bytes, content_type: str, cached: bool):
        source = self._cached(token) if cached else None
        try:
            if source is None:
                connection, source = self._source(token)
                self._remember(token, source)
            else:
                connection = self._take()
        except psycopg.Error:
            log.warning("intake could not reach the database", exc_info=True)
            return UNAVAILABLE
        try:
            with self.app.app_context():
                answer = self._answer(connection, source, environ, token, body, content_type)
        finally:
            self._give_back(connection)
        if answer is STALE:
            self._forget(token)
        return answer

    def _answer(self, connection, row, environ, token: str, body: bytes, content_type: str):
        """(status line, JSON payload, headers), or None to hand the post to the view."""
        if row is None:
            return None
        (source_id, tenant_id, active, signing_secret, per_minute) = row[:5]
        currency, language, sub_status, trial_ends_at, stripe_id = row[5:]
        headers = _Headers(environ)
        if signing_secret and signing.verify(signing_secret, headers, body):
            return None
        if RATE_LIMITED_KEY in environ:  # served again after a stale source: counted once
            wait = environ[RATE_LIMITED_KEY]
        else:
            wait = services.seconds_until_allowed(source_id, per_minute)
            environ[RATE_LIMITED_KEY] = wait
        if wait is not None:
            return None
        try:
            data = intake_fields.parse_body(body, content_type)
        except intake_fields.UnparseableBody:
            return None
        if "_form" in data:
            return None
        judgement = intake_fields.judge(data, services.region_for(currency, language))
        if not judgement.ok:
            return None
        subscription = None
        if sub_status is not None:
            subscription = SimpleNamespace(
                status=sub_status, trial_ends_at=trial_ends_at, stripe_subscription_id=stripe_id
            )
        read_only = billing_enabled() and access_for(subscription) == Access.READ_ONLY
        keys = services.idempotency_keys(headers, data)
        values = judgement.fields
        now = utcnow()
        common = {
            "token": token,
            "tenant": tenant_id,
            "source": source_id,
            "keys": keys,
            "now": now,
            "content_type": content_type.replace("\x00", "")[:200],
            "headers": json.dumps(services.kept_headers(headers)),
            "body": body,
            "fields": json.dumps(values),
        }
        title = values.get("company") or values.get("name") or judgement.email or judgement.phone
        params = {
            **common,
            "key_count": len(keys),
            "email": judgement.email,
            "phone": judgement.phone,
            "company": values.get("company") or None,
            "contact_name": values.get("name") or judgement.email or judgement.phone or "?",
            "generator": Role.LEAD_GENERATOR.value,
            "owner": Role.OWNER.value,
            "phase": Phase.GENERATION.value,
            "title": title[:200],
            "message": values.get("message") or None,
            "budget": values.get("budget") or None,
            "external_id": values.get("external_id") or None,
            "decision_date": judgement.decision_date,
            "utm": json.dumps({k: values[k] for k in intake_fields.UTM_FIELDS if values.get(k)}),
            "extra": json.dumps(values.get("extra") or {}),
            "flagged": not active or read_only,
            "event_kind": EventKind.INTAKE.value,
            "signing_secret": signing_secret,
            "active": active,
            "sub_status": sub_status,
            "trial_ends_at": trial_ends_at,
            "stripe_id": stripe_id,
            "inbox_status": InboxStatus.ACCEPTED.value,
            "inbox_http": 201,
        }
        try:
            try:
                still, fresh, lead_id = connection.execute(ACCEPT_SQL, params).fetchone()
            except psycopg.errors.ForeignKeyViolation:
                still, fresh, lead_id = True, False, None  # one key new, another taken
            if not still:
                return STALE
            if fresh:
                return "201 CREATED", {"id": lead_id, "status": "created"}, []
            prior = connection.execute(
                DUPLICATE_SQL,
                {**common, "inbox_status": InboxStatus.DUPLICATE.value, "inbox_http": 200},
            ).fetchone()
        except psycopg.Error:
            return self._unavailable(connection)
        if prior is None:  # taken by a post whose lead is gone: let the sender retry
            return UNAVAILABLE
        return "200 OK", {"id": prior[0], "status": "duplicate"}, []

    # -- connections -------------------------------------------------------------

    def _cached(self, token: str) -> tuple | None:
        hit = self.sources.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _remember(self, token: str, row: tuple | None) -> None:
        if row is None:
            return  # wrong tokens are never cached: each one costs the same lookup
        if len(self.sources) >= SOURCE_CACHE_SIZE:
            self.sources.clear()
        self.sources[token] = (time.monotonic() + SOURCE_CACHE_SECONDS, row)

    def _forget(self, token: str) -> None:
        self.sources.pop(token, None)

    def _source(self, token: str) -> tuple[psycopg.Connection, tuple | None]:
        """A connection and the source row behind the token (None when there is none).

        An idle connection may have died with a PostgreSQL restart: nothing has been
        written yet, so the lookup is tried once more on a new connection.
        """
        connection = self._take()
        try:
            return connection, connection.execute(SOURCE_SQL, {"token": token}).fetchone()
        except psycopg.OperationalError:
            connection.close()
        connection = self._connect()
        try:
            return connection, connection.execute(SOURCE_SQL, {"token": token}).fetchone()
        except psycopg.Error:
            connection.close()
            raise

    def _take(self) -> psycopg.Connection:
        """An idle connection of this process that is still open, or a new one.

        An idle connection has nothing to read unless the server closed it (a restart,
        a failover, an administrator): such a one is dropped before it is written to.
        """
        while True:
            with self.lock:
                if self.pid != os.getpid():  # forked (gunicorn): the parent's are not ours
                    self.idle.clear()
                    self.pid = os.getpid()
                if not self.idle:
                    break
                connection = self.idle.pop()
            poller = select.poll()  # not select(): file numbers may pass 1023
            poller.register(connection.fileno(), select.POLLIN)
            if not poller.poll(0):
                return connection
            connection.close()
        return self._connect()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)

    def _give_back(self, connection: psycopg.Connection) -> None:
        if connection.closed:
            return
        with self.lock:
            self.idle.append(connection)

    def close(self) -> None:
        """Close the idle connections (new ones are opened as posts come)."""
        with self.lock:
            _close_all(self.idle)

    def _unavailable(self, connection):
        log.warning("intake could not store a post", exc_info=True)
        connection.close()  # a fresh one next time: this one may be broken
        return UNAVAILABLE


def _close_all(connections: list) -> None:
    while connections:
        connections.pop().close()


class _Headers:
    """The request headers the judging code reads, straight from the WSGI environ."""

    def __init__(self, environ):
        self.environ = environ

    def get(self, name: str, default=None):
        key = "CONTENT_TYPE" if name.lower() == "content-type" else None
        key = key or "HTTP_" + name.upper().replace("-", "_")
        return self.environ.get(key, default)

    def __getitem__(self, name: str):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value


def install(app) -> None:
    """Put the hot path in front of the app when its database is PostgreSQL."""
    if sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "postgresql":
        app.wsgi_app = app.extensions["fast_intake"] = FastIntake(app, app.wsgi_app)
