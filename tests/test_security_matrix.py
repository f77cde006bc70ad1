"""CSRF, rate limits, the password policy and security headers over every route of the app.

Every part is generated from ``app.url_map`` through tests/test_access_matrix.py's
``ROWS`` (which must name every route: role, URL rows and a well-formed body), so a new
route fails here until it is covered or listed below with the reason it is not:

* **CSRF**: every POST/PUT/PATCH/DELETE route, sent by a member whose role may use it
  (and, for public routes, by a signed-out visitor) with the matrix's well-formed body, is
  refused with 400 "The form expired" without a token, with a made-up token and with
  another visitor's token, and every row of the database stays as it was; with the
  session's own token the same request gets the matrix's answer. ``CSRF_EXEMPT`` lists the
  machine endpoints that are authenticated otherwise, and the app exempts nothing else.
* **Rate limits**: every public route (no sign-in) is in ``LIMITS`` (exceeding the limit
  answers 429 and does nothing; another address, account or source is unaffected), in
  ``LIMITED_ELSEWHERE``, or in ``UNLIMITED`` with the reason.
* **Passwords**: every form that stores a password (``PASSWORD_FORMS``; the CSRF test
  notices any route that hashes a password and is not listed) refuses short, overlong
  and common passwords next to the field, storing nothing, and takes 8, 64 and 128
  characters.
* **Headers**: every GET route (as the owner, signed out, with a made-up token) and the
  error pages carry the CSP, ``nosniff``, the referrer policy and ``frame-ancestors``;
  production cookies are Secure, HttpOnly and SameSite=Lax.

Login's limits (per account and per address) are tested in tests/test_auth.py; the
intake's per-source 429 with Retry-After and stored post in tests/test_intake.py.
"""

import hashlib
import hmac
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import has_request_context, request

from app import passwords
from app.auth import tokens
from app.config import load_config
from app.engine.content import unsubscribe_token
from app.extensions import db, limiter
from app.models import Invitation, Lead, PendingSignup, Role, SourceKind, User
from app.queue import get_queue
from app.sources import services as sources
from app.workspace.services import find_user_by_email
from tests import factories
from tests.test_access_matrix import (
    GET,
    MATRIX,
    NEW_PASSWORD,
    ROLES,
    ROWS,
    Row,
    _routes,
    _visits,
    build_world,
    changed_tables,
    database_fingerprint,
    url_for,
)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXPIRED = "The form expired. Reload the page and try again."
_numbers = itertools.count(1)


@pytest.fixture
def world(app, make, monkeypatch):
    return build_world(app, make, monkeypatch)


@pytest.fixture
def csrf_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def _read(response):
    """The response, read and closed (static files stream)."""
    response.get_data()
    response.close()
    return response


def _page_token(client, signed_in: bool) -> str:
    """The CSRF token a page gives this client's session (every page carries it for htmx)."""
    page = _read(client.get("/account" if signed_in else "/login"))
    assert page.status_code == 200, page.status_code
    return page.text.split('"X-CSRFToken": "')[1].split('"')[0]


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


# --- 1. CSRF on every mutating route -------------------------------------------------------

# Machine endpoints that take posts from outside a browser session, authenticated otherwise.
CSRF_EXEMPT = {
    "intake.receive": "lead intake: the source's secret address (and, for signed sources, a "
    "Standard Webhooks HMAC) authenticates the post; websites and the hosted form post "
    "cross-site without a session by design",
    "billing.webhook": "Stripe's events: each is verified by its Stripe-Signature over the raw "
    "body before anything is stored; Stripe has no session to hold a token",
    "engine.unsubscribe_now": "RFC 8058 one-click unsubscribe: mail clients post without a "
    "session; the signed token in the address names the member, and it only stops their mail",
    "telegram.webhook": "Telegram's updates: the X-Telegram-Bot-Api-Secret-Token header is "
    "checked in constant time before anything is stored; Telegram has no session",
}
_API_TOKEN = (
    "the public API: a bearer token authenticates every call and a session cookie never "
    "does (401), so a forged cross-site request has nothing to ride on"
)
CSRF_EXEMPT.update(
    dict.fromkeys(("api.create_lead", "api.update_lead", "api.log_touch"), _API_TOKEN)
)
CSRF_CHECKED = sorted(key for key in MATRIX if key[1] in MUTATING and key[0] not in CSRF_EXEMPT)


class HashSpy:
    """Wraps the password hasher and notes which endpoint hashed a new password."""

    def __init__(self, hasher):
        self.hasher = hasher
        self.endpoints: list[str | None] = []

    def hash(self, password, **kwargs):
        self.endpoints.append(request.endpoint if has_request_context() else None)
        return self.hasher.hash(password, **kwargs)

    def __getattr__(self, name):
        return getattr(self.hasher, name)


@pytest.fixture
def hash_spy(monkeypatch):
    spy = HashSpy(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", spy)
    return spy


def _actor(row: Row) -> Role:
    """Who sends a route's request: a member of a role the matrix allows, the owner last."""
    return next(role for role in (*ROLES[1:], Role.OWNER) if role in row.members)


def _sender(app, row: Row, scene) -> tuple[str, Callable[..., dict]]:
    """The URL (naming rows built now) and a maker of the request's keyword arguments."""
    url = url_for(app, row.endpoint, row.ids(scene) if row.ids else {})

    def body(token: str | None = None, headers: dict | None = None) -> dict:
        headers = dict(headers or {})
        if row.payload is not None:
            if token:
                headers["X-CSRFToken"] = token
            return {"json": row.payload, "headers": headers}
        form = row.form(scene) if callable(row.form) else dict(row.form or {})
        if token:
            form["csrf_token"] = token
        return {"data": form, "headers": headers}

    return url, body


def test_every_mutating_route_is_csrf_checked_or_exempt_by_design(app):
    mutating = {key for key in _routes(app) if key[1] in MUTATING}
    exempt = {key for key in mutating if key[0] in CSRF_EXEMPT}
    missing = sorted(mutating - exempt - set(CSRF_CHECKED))
    assert not missing, (
        f"add rows for {missing} to ROWS in tests/test_access_matrix.py "
        "(the CSRF test takes the role, URL rows and body from there)"
    )
    assert {endpoint for endpoint, _ in exempt} == set(CSRF_EXEMPT), "stale CSRF_EXEMPT entry"
    # The app exempts exactly these views and no blueprint, and checks by default.
    csrf = app.extensions["csrf"]
    views = (app.view_functions[endpoint] for endpoint in CSRF_EXEMPT)
    assert csrf._exempt_views == {f"{view.__module__}.{view.__name__}" for view in views}
    assert not csrf._exempt_blueprints
    assert app.config["WTF_CSRF_CHECK_DEFAULT"] and app.config["WTF_CSRF_METHODS"] >= MUTATING


@pytest.mark.parametrize("key", CSRF_CHECKED, ids=lambda key: f"{key[1]} {key[0]}")
def test_a_mutating_route_needs_the_csrf_token_of_the_session(
    app, world, hash_spy, monkeypatch, key
):
    row = MATRIX[key]
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    stranger = _page_token(app.test_client(), signed_in=False)  # a token, of another session
    actor = _actor(row)
    senders = [(actor, world.clients[actor], row.ok)]
    if row.public:
        senders.append((None, app.test_client(), row.public))
    problems = []
    for role, client, ok in senders:
        who = role.value if role else "signed out"
        url, body = _sender(app, row, world.scene(role))
        own_token = _page_token(client, signed_in=role is not None)
        forgeries = {
            "no token": body(),
            "a made-up token": body("made-up"),
            "another visitor's token": body(stranger),
            "another visitor's token in the htmx header": body(
                headers={"X-CSRFToken": stranger, "HX-Request": "true"}
            ),
        }
        before = database_fingerprint()
        for forgery, kwargs in forgeries.items():
            response = _read(client.open(url, method=row.method, **kwargs))
            if response.status_code != 400 or EXPIRED not in response.text:
                problems.append(f"{who} with {forgery}: answered {response.status_code}")
        changed = changed_tables(before, database_fingerprint())
        if changed:
            problems.append(f"{who}: refused requests changed rows in {changed}")

        hash_spy.endpoints.clear()
        response = _read(client.open(url, method=row.method, **body(own_token)))
        problem = ok.problem(response)
        if problem or EXPIRED in response.text:
            problems.append(f"{who} with the session's token: expected {ok}, {problem}")
        if row.endpoint in hash_spy.endpoints and row.endpoint not in PASSWORD_FORMS:
            problems.append(f"{row.endpoint} stores a password: add it to PASSWORD_FORMS")
    assert not problems, f"{key[1]} {url}:\n" + "\n".join(problems)


def test_the_intake_takes_posts_without_a_csrf_token_and_authenticates_them_otherwise(
    app, client, make, csrf_on
):
    tenant, _ = make.workspace_with_owner()
    source = make.source(tenant)
    created = client.post(f"/in/{source.intake_token}", json={"email": "anna@example.com"})
    assert created.status_code == 202 and created.json["status"] == "accepted"
    # The hosted form posts from the customer's site, with no session and no token (sent at
    # once, it counts as spam: kept in the inbox and thanked all the same).
    page = client.get(f"/in/{source.intake_token}/form").text
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    form = client.post(
        f"/in/{source.intake_token}", data={**hidden, "name": "Boris", "email": "b@example.com"}
    )
    assert form.status_code == 200 and EXPIRED not in form.text

    signed = sources.create_source(tenant, "Partner API", SourceKind.PARTNER, signed=True)
    leads = db.session.scalar(sa.select(sa.func.count(Lead.id)))
    before = database_fingerprint()
    unknown = client.post("/in/not-a-real-address", json={"email": "x@example.com"})
    assert unknown.status_code == 404 and unknown.is_json
    assert changed_tables(before, database_fingerprint()) == []
    unsigned = client.post(f"/in/{signed.intake_token}", json={"email": "x@example.com"})
    assert unsigned.status_code == 401 and unsigned.is_json
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == leads  # kept, not a lead


def test_the_stripe_webhook_takes_no_csrf_token_but_refuses_a_bad_signature(
    app, client, make, csrf_on, monkeypatch
):
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_conveyor")
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", "whsec_conveyor_test")
    make.workspace_with_owner()
    body = b'{"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}'
    before = database_fingerprint()
    now = int(time.time())
    wrong_secret = hmac.new(b"whsec_someone_else", f"{now}.".encode() + body, hashlib.sha256)
    for signature in (None, "garbage", "t=1,v1=00", f"t={now},v1={wrong_secret.hexdigest()}"):
        headers = {"Stripe-Signature": signature} if signature else {}
        response = client.post(
            "/billing/webhook", data=body, headers=headers, content_type="application/json"
        )
        # The view answered (JSON), not the CSRF check (the "form expired" page).
        assert response.status_code == 400
        assert response.json == {"error": "missing, bad or stale signature"}
    assert changed_tables(before, database_fingerprint()) == []


def test_one_click_unsubscribe_takes_no_csrf_token_and_needs_a_signed_link(client, make, csrf_on):
    tenant, owner = make.workspace_with_owner()
    membership = make.membership_of(tenant, owner)
    before = database_fingerprint()
    assert client.post("/unsubscribe/made-up-token").status_code == 404
    assert changed_tables(before, database_fingerprint()) == []
    assert client.post(f"/unsubscribe/{unsubscribe_token(membership)}").status_code == 200
    assert make.membership_of(tenant, owner).digest_opt_out is True


# --- 2. Rate limits on every public route ----------------------------------------------------

ADDRESS, OTHER_ADDRESS = "198.51.100.7", "203.0.113.9"


@dataclass
class Probe:
    """How to send a route's request many times, and once from somewhere else."""

    prepare: Callable[[int], Callable]  # i -> the i-th request, its rows built, ready to send
    elsewhere: Callable  # the same request from another address / account / source
    kept: tuple[str, ...] = ()  # tables a refused request still writes to, by design
    retry_after: bool = False  # the 429 says when to retry


@dataclass(frozen=True)
class Limit:
    endpoint: str
    method: str
    count: int  # requests allowed in the window
    per: str  # what the limit counts by
    probe: Callable  # (app, make) -> Probe

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint} per {self.per}"


def _signup(app, make) -> Probe:
    def prepare(i, address=ADDRESS):
        data = {
            "business_name": f"Bakery {i}",
            "name": "Nina",
            "email": f"limited{i}@example.com",
            "password": NEW_PASSWORD,
        }
        return lambda: app.test_client().post("/signup", data=data, **_from(address))

    return Probe(prepare, prepare(99, OTHER_ADDRESS))


def _signup_per_account(app, make) -> Probe:
    def prepare(i, email="wanted@example.com"):
        data = {"business_name": "Bakery", "name": "Nina", "email": email}
        data["password"] = NEW_PASSWORD
        return lambda: app.test_client().post("/signup", data=data, **_from(f"192.0.2.{i + 1}"))

    return Probe(prepare, prepare(99, "someone.else@example.com"))


def _confirm_signup(app, make) -> Probe:
    def prepare(i, address=ADDRESS):
        pending = PendingSignup(
            email=f"confirming{i}@example.com",
            name="Nina",
            business_name=f"Bakery {i}",
            password_hash=passwords.hash_password(NEW_PASSWORD),
            language="en",
        )
        db.session.add(pending)
        db.session.commit()
        url = f"/signup/confirm/{tokens.signup_token(pending)}"
        return lambda: app.test_client().post(url, **_from(address))

    return Probe(prepare, prepare(99, OTHER_ADDRESS))


FORGOT_PER_ADDRESS = 5


def _forgot_per_address(app, make) -> Probe:
    _, owner = make.workspace_with_owner()

    def prepare(i, address=ADDRESS, email=None):
        data = {"email": email or f"forgetful{i}@example.com"}
        return lambda: app.test_client().post("/password/forgot", data=data, **_from(address))

    # The refused request names a real account, so a refusal that still sent mail would show.
    return Probe(
        lambda i: prepare(i, email=owner.email if i == FORGOT_PER_ADDRESS else None),
        prepare(99, OTHER_ADDRESS, owner.email),
    )


def _forgot_per_account(app, make) -> Probe:
    tenant, owner = make.workspace_with_owner()
    other = make.member(tenant, Role.CLOSER)

    def prepare(i, email=owner.email):
        data = {"email": email}
        return lambda: app.test_client().post(
            "/password/forgot", data=data, **_from(f"192.0.2.{i + 1}")
        )

    return Probe(prepare, prepare(99, other.email))


def _reset(app, make) -> Probe:
    tenant, _ = make.workspace_with_owner()
    user = make.member(tenant, Role.CLOSER)

    def prepare(i, address=ADDRESS):
        token = tokens.password_reset_token(db.session.get(User, user.id))
        data = {"password": f"{NEW_PASSWORD} {i}", "confirm": f"{NEW_PASSWORD} {i}"}
        return lambda: app.test_client().post(
            f"/password/reset/{token}", data=data, **_from(address)
        )

    return Probe(prepare, lambda: prepare(99, OTHER_ADDRESS)())


def _invitation(app, make) -> Probe:
    tenant, owner = make.workspace_with_owner()

    def prepare(i, address=ADDRESS):
        invitation = Invitation(
            tenant_id=tenant.id,
            email=f"joiner{i}@example.com",
            role=Role.CLOSER,
            invited_by_id=owner.id,
        )
        db.session.add(invitation)
        db.session.commit()
        url = f"/invitations/{tokens.invitation_token(invitation)}"
        data = {"name": "Ivan", "password": NEW_PASSWORD}
        return lambda: app.test_client().post(url, data=data, **_from(address))

    return Probe(prepare, lambda: prepare(99, OTHER_ADDRESS)())


def _unsubscribe(app, make) -> Probe:
    tenant, _ = make.workspace_with_owner()

    def prepare(i, address=ADDRESS):
        membership = make.membership_of(tenant, make.member(tenant, Role.CLOSER))
        url = f"/unsubscribe/{unsubscribe_token(membership)}"
        return lambda: app.test_client().post(url, **_from(address))

    return Probe(prepare, lambda: prepare(99, OTHER_ADDRESS)())


def _intake(app, make) -> Probe:
    tenant, _ = make.workspace_with_owner()
    noisy = sources.create_source(tenant, "Noisy", SourceKind.AD, rate_limit_per_minute=5)
    calm = sources.create_source(tenant, "Calm", SourceKind.AD, rate_limit_per_minute=5)

    def prepare(i, source=noisy):
        # From a new address each time: the limit counts posts per source, not per sender.
        payload = {"email": f"lead{i}@example.com"}
        return lambda: app.test_client().post(
            f"/in/{source.intake_token}", json=payload, **_from(f"192.0.2.{i + 1}")
        )

    # A limited post is still kept in the source's inbox (README: "Lead intake"), and
    # counted in the source's minute (past the minute's cap it is only counted).
    return Probe(prepare, prepare(0, calm), kept=("inbox_item", "intake_minute"), retry_after=True)


def _hosted_form(app, make) -> Probe:
    tenant, _ = make.workspace_with_owner()
    url = f"/in/{make.source(tenant).intake_token}/form"
    return Probe(
        lambda i: lambda: app.test_client().get(url, **_from(ADDRESS)),
        lambda: app.test_client().get(url, **_from(OTHER_ADDRESS)),
    )


def _partner_report(app, make) -> Probe:
    tenant, _ = make.workspace_with_owner()
    source = make.source(tenant)
    source.partner_report_token = "partner-" + "x" * 24
    db.session.commit()
    url = f"/partner/{source.partner_report_token}"
    return Probe(
        lambda i: lambda: app.test_client().get(url, **_from(ADDRESS)),
        lambda: app.test_client().get(url, **_from(OTHER_ADDRESS)),
    )


LIMITS = [
    Limit("auth.signup", "POST", 10, "address", _signup),
    Limit("auth.signup", "POST", 3, "account", _signup_per_account),
    Limit("auth.confirm_signup", "POST", 10, "address", _confirm_signup),
    Limit("auth.forgot_password", "POST", FORGOT_PER_ADDRESS, "address", _forgot_per_address),
    Limit("auth.forgot_password", "POST", 3, "account", _forgot_per_account),
    Limit("auth.reset_password", "POST", 10, "address", _reset),
    Limit("auth.accept_invitation", "POST", 20, "address", _invitation),
    Limit("engine.unsubscribe_now", "POST", 30, "address", _unsubscribe),
    Limit("intake.receive", "POST", 5, "source (its own setting)", _intake),
    Limit("intake.hosted_form", "GET", 120, "address", _hosted_form),
    Limit("radar.partner_report", "GET", 60, "address", _partner_report),
]
LIMITED_ELSEWHERE = {
    ("auth.login", "POST"): "per account and per address: tests/test_auth.py",
}
_EMPTY_FORM = "shows an empty form: no lookup, nothing stored or sent"
_SIGNED_LINK = "checks the link's signature before any lookup and only shows a form"
UNLIMITED = {
    ("auth.login", "GET"): _EMPTY_FORM,
    ("auth.signup", "GET"): _EMPTY_FORM,
    ("auth.signup_sent", "GET"): "a fixed page: no lookup, nothing stored or sent",
    ("auth.confirm_signup", "GET"): _SIGNED_LINK + " (a button); a GET changes nothing",
    ("auth.forgot_password", "GET"): _EMPTY_FORM,
    ("auth.reset_password", "GET"): _SIGNED_LINK,
    ("auth.accept_invitation", "GET"): _SIGNED_LINK,
    ("engine.unsubscribe", "GET"): _SIGNED_LINK + " (a button); a GET changes nothing",
    ("auth.logout", "POST"): "ends the caller's own session: no lookup, nothing stored",
    ("auth.set_language", "POST"): "keeps the choice in the caller's own session "
    "(and a signed-in person's profile): no lookup, nothing sent",
    ("main.healthz", "GET"): "@limiter.exempt: load balancers and monitors poll it",
    ("main.dev_outbox", "GET"): "exists only in development with the local outbox (404 else)",
    ("static", "GET"): "the app's own CSS and JavaScript files: no lookup, nothing stored",
    ("api.openapi", "GET"): "@limiter.exempt: the API's description, built once; no lookup",
    ("api.docs", "GET"): "@limiter.exempt: the API's documentation page; no lookup",
    ("billing.webhook", "POST"): "@limiter.exempt: Stripe's deliveries, verified by signature "
    "before anything is stored; a 429 would only delay events Stripe retries",
    ("telegram.webhook", "POST"): "@limiter.exempt: Telegram's deliveries, checked by the "
    "secret header before anything is stored (404 while the bot is off); a 429 would only "
    "delay updates Telegram retries",
}


def test_every_public_route_is_rate_limited_or_says_why_not(app):
    routes = set(_routes(app))
    assert routes <= set(MATRIX), "tests/test_access_matrix.py must have a row for every route"
    public = {key for key in routes if MATRIX[key].public}
    limited = {(limit.endpoint, limit.method) for limit in LIMITS} | set(LIMITED_ELSEWHERE)
    assert not limited & set(UNLIMITED), "a route is both limited and unlimited"
    missing = sorted(public - limited - set(UNLIMITED))
    stale = sorted((limited | set(UNLIMITED)) - public)
    assert not missing, f"public routes with no limit and no reason: {missing}"
    assert not stale, f"listed but not public routes: {stale}"


@pytest.mark.parametrize("limit", LIMITS, ids=str)
def test_a_public_route_over_its_limit_answers_429_and_does_nothing(app, make, limit):
    probe = limit.probe(app, make)
    answers = [_read(probe.prepare(i)()).status_code for i in range(limit.count)]
    assert 429 not in answers, f"limited before {limit.count} requests: {answers}"

    send = probe.prepare(limit.count)
    before, queued = database_fingerprint(), get_queue().count
    refused = _read(send())
    assert refused.status_code == 429
    assert set(changed_tables(before, database_fingerprint())) <= set(probe.kept)
    assert get_queue().count == queued, "a refused request queued a job"
    if refused.is_json:
        assert "error" in refused.json
    else:
        assert "Too many attempts" in refused.text
        assert _header_problems(refused, frameable=False) == []
    if probe.retry_after:
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert _read(probe.elsewhere()).status_code != 429, f"not per {limit.per}"


# --- 3. The password policy on every form that sets a password ---------------------------------

COMMON_LIST = passwords._common_passwords()
TOO_SHORT = "Use at least 8 characters."
TOO_LONG = "Use at most 128 characters."
TOO_COMMON = "This password is too common; choose another."
REFUSED = [
    ("Zq7#mK2", TOO_SHORT),  # 7 characters
    ("Lq9!" * 32 + "z", TOO_LONG),  # 129
    *((common, TOO_COMMON) for common in ("password", "12345678", "qwerty123", "iloveyou")),
    ("1q2w3e4r", TOO_COMMON),
    ("PassWord1", TOO_COMMON),  # the list is read without case
]
ACCEPTED = [
    "tQ8!vb2z",  # exactly 8
    ("correct horse battery staple " * 3)[:64],
    ("Kx2$" + "a quite long passphrase, spaces welcome " * 4)[:128],
    "пароль с пробелами 2026",
]


class PasswordForm:
    """A form that stores a new password: ``prepare`` builds one attempt's rows."""

    field_id = "password"

    def __init__(self, app, make):
        self.app, self.make = app, make
        self.tenant, self.owner = make.workspace_with_owner()

    def prepare(self) -> None:
        pass

    def post(self, password: str):
        raise NotImplementedError

    def user(self):
        raise NotImplementedError

    def holds(self, password: str) -> bool:
        user = self.user()
        return user is not None and passwords.verify_password(user.password_hash, password)


class SignupForm(PasswordForm):
    def prepare(self):
        self.email = f"newcomer{next(_numbers)}@example.com"

    def post(self, password):
        data = {"business_name": "Bakery", "name": "Nina", "email": self.email}
        return self.app.test_client().post("/signup", data={**data, "password": password})

    def user(self):
        """The signup waiting for its link (it holds the password until then)."""
        return db.session.scalar(sa.select(PendingSignup).where(PendingSignup.email == self.email))


class InvitationForm(PasswordForm):
    def prepare(self):
        self.email = f"invitee{next(_numbers)}@example.com"
        invitation = Invitation(
            tenant_id=self.tenant.id,
            email=self.email,
            role=Role.CLOSER,
            invited_by_id=self.owner.id,
        )
        db.session.add(invitation)
        db.session.commit()
        self.url = f"/invitations/{tokens.invitation_token(invitation)}"

    def post(self, password):
        return self.app.test_client().post(self.url, data={"name": "Ivan", "password": password})

    def user(self):
        return find_user_by_email(self.email)


class ResetForm(PasswordForm):
    def __init__(self, app, make):
        super().__init__(app, make)
        self.member_id = make.member(self.tenant, Role.CLOSER).id

    def prepare(self):
        self.url = f"/password/reset/{tokens.password_reset_token(self.user())}"

    def post(self, password):
        data = {"password": password, "confirm": password}
        return self.app.test_client().post(self.url, data=data)

    def user(self):
        return db.session.get(User, self.member_id)


class ChangeForm(PasswordForm):
    field_id = "pw-new_password"

    def __init__(self, app, make):
        super().__init__(app, make)
        self.client, self.current = app.test_client(), factories.PASSWORD
        signed_in = self.client.post(
            "/login", data={"email": self.owner.email, "password": self.current}
        )
        assert signed_in.status_code == 302

    def post(self, password):
        data = {"pw-current_password": self.current, "pw-new_password": password}
        response = self.client.post("/account/password", data=data)
        if response.status_code == 302:
            self.current = password
        return response

    def user(self):
        return db.session.get(User, self.owner.id)


PASSWORD_FORMS = {
    "auth.signup": SignupForm,
    "auth.accept_invitation": InvitationForm,
    "auth.reset_password": ResetForm,
    "auth.change_password": ChangeForm,
}


def test_the_policy_examples_come_from_the_common_list():
    for password, message in REFUSED:
        assert (password.lower() in COMMON_LIST) == (message == TOO_COMMON), password
    assert not any(password.lower() in COMMON_LIST for password in ACCEPTED)
    assert [len(p) for p in ACCEPTED[:3]] == [8, 64, 128]


@pytest.mark.parametrize("endpoint", sorted(PASSWORD_FORMS))
def test_every_form_that_sets_a_password_applies_the_policy(app, make, endpoint):
    form = PASSWORD_FORMS[endpoint](app, make)
    error_id = f"{form.field_id}-error"
    problems = []
    for password, message in REFUSED:
        limiter.reset()  # the policy is under test here, not the rate limit
        form.prepare()
        before = database_fingerprint()
        response = form.post(password)
        beside = re.search(f'id="{error_id}"[^>]*>{re.escape(message)}</p>', response.text)
        # the field names its error (beside its hint, when it has one) for screen readers
        described = re.search(f'aria-describedby="([^"]* )?{error_id}"', response.text)
        if response.status_code not in (200, 422) or not beside or not described:
            problems.append(f"{password!r}: {response.status_code}, no {message!r} by the field")
        changed = changed_tables(before, database_fingerprint())
        if changed or form.holds(password):
            problems.append(f"{password!r} was refused yet changed rows in {changed}")
    for password in ACCEPTED:
        limiter.reset()
        form.prepare()
        response = form.post(password)
        if response.status_code != 302 or not form.holds(password):
            problems.append(f"{len(password)} characters: {response.status_code}, not stored")
    assert not problems, "\n".join(problems)


# --- 4. Security headers on every page, error pages, production cookies -------------------------

# Pages meant to be shown in a frame on other sites (they carry their own policy).
FRAMEABLE = {
    "intake.hosted_form": "the hosted lead form is framed on the customer's own site",
}


def _header_problems(response, frameable: bool) -> list[str]:
    problems = []
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if response.headers.get("Referrer-Policy") != "strict-origin-when-cross-origin":
        problems.append(f"Referrer-Policy {response.headers.get('Referrer-Policy')}")
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    if "unsafe-eval" in csp or "unsafe-inline" in csp:
        problems.append(f"CSP allows unsafe code: {csp}")
    for name, wanted in (("default-src", "'self'"), ("object-src", "'none'")):
        if directives.get(name) != [wanted]:
            problems.append(f"CSP {name} is {directives.get(name)}")
    if "base-uri" not in directives:
        problems.append("CSP without base-uri")
    if frameable:
        if "X-Frame-Options" in response.headers:
            problems.append("a frameable page says X-Frame-Options")
        if "frame-ancestors" not in directives:
            problems.append("CSP without frame-ancestors")
    else:
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"CSP frame-ancestors is {directives.get('frame-ancestors')}")
        if response.headers.get("X-Frame-Options") != "DENY":
            problems.append("no X-Frame-Options: DENY")
    return problems


def test_every_get_route_sends_the_security_headers(app, world):
    owner = world.clients[Role.OWNER]
    rows = [row for row in ROWS if row.method == GET]
    assert {row.endpoint for row in rows} == {e for e, m in _routes(app) if m == GET}
    problems, statuses = [], set()
    for row in rows:
        visits = _visits(app, row, owner, "owner", world.scene(Role.OWNER), row.ok)
        if row.public:
            signed_out = app.test_client()
            visits += _visits(app, row, signed_out, "signed out", world.scene(None), row.public)
        if row.forged:
            made_up = {"token": "made-up-token"}
            visits += _visits(app, row, app.test_client(), "made up", None, row.forged, made_up)
        for visit in visits:
            response = visit.send()
            statuses.add(response.status_code)
            frameable = row.endpoint in FRAMEABLE and response.status_code == 200
            for problem in _header_problems(response, frameable):
                problems.append(f"{visit}: {response.status_code} {problem}")
    assert not problems, "\n".join(problems)
    assert {200, 302, 404} <= statuses


def test_error_pages_send_the_security_headers(app, world, monkeypatch):
    owner, closer = world.clients[Role.OWNER], world.clients[Role.CLOSER]
    signed_out = app.test_client()

    def csrf_refusal():
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        try:
            return signed_out.post("/login", data={"email": "a@example.com", "password": "x"})
        finally:
            monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)

    def server_error():
        def broken():
            raise RuntimeError("boom")

        monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
        monkeypatch.setitem(app.view_functions, "main.healthz", broken)
        return signed_out.get("/healthz")

    cases = {
        "404 signed out": (404, lambda: signed_out.get("/no/such/page")),
        "404 as the owner": (404, lambda: owner.get("/no/such/page")),
        "404 beyond a role's wall": (404, lambda: closer.get("/settings")),
        "400 form expired": (400, csrf_refusal),
        "400 bad request": (400, lambda: owner.post("/account/language", data={"language": "xx"})),
        "405": (405, lambda: signed_out.get("/logout")),
        "500": (500, server_error),
    }
    problems = []
    for name, (status, send) in cases.items():
        response = _read(send())
        if response.status_code != status or f"<h1>{status}</h1>" not in response.text:
            problems.append(f"{name}: answered {response.status_code}")
        problems += [f"{name}: {p}" for p in _header_problems(response, frameable=False)]
    assert not problems, "\n".join(problems)


def test_production_cookies_are_secure_httponly_and_samesite_lax(app, make, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVEYOR_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    production = load_config(str(tmp_path))
    assert production.get("WTF_CSRF_ENABLED", True) and production["RATELIMIT_ENABLED"]
    for name, value in production.items():
        if name.startswith(("SESSION_COOKIE_", "REMEMBER_COOKIE_")):
            monkeypatch.setitem(app.config, name, value)
    _, owner = make.workspace_with_owner()
    client, https = app.test_client(), {"base_url": "https://conveyor.test"}
    credentials = {"email": owner.email, "password": factories.PASSWORD, "remember": "y"}
    responses = [
        client.get("/login", **https),
        client.post("/login", data=credentials, **https),
        client.post("/account/language", data={"language": "ru"}, **https),
        client.post("/logout", **https),
    ]
    cookies = [c for response in responses for c in response.headers.getlist("Set-Cookie")]
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert {"session", "remember_token"} <= names
    for cookie in cookies:
        flags = {flag.strip().split("=")[0]: flag.strip() for flag in cookie.split(";")[1:]}
        assert "Secure" in flags and "HttpOnly" in flags, cookie
        assert flags.get("SameSite") == "SameSite=Lax", cookie
