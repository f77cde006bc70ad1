"""Who gets what: every route, as every role, on its own rows, on another workspace's, signed out.

``ROWS`` below is Conveyor's access contract written out, one row per (endpoint,
method) of ``app.url_map``; a route missing from it fails
``test_every_route_has_a_row_in_the_matrix``, so a new route cannot ship without
saying who may use it. For each row the test sends a well-formed request

* as each of the four roles, naming rows of their own workspace that the role works
  on (a closer's own deal in conversion, an account manager's own client): a role in
  ``members`` gets the row's ``ok`` answer, every other role 404 (roles are walls);
* as each role, naming the same kind of row in another workspace (routes taking an
  ``*_id``): 404 for everyone, the owner included;
* signed out: the sign-in page, unless the route is ``public`` (then that answer);
* with a made-up token, for the token links (``forged``).

Every refused request (404, sign-in bounce, made-up token) must leave every row of
the database as it was. ``htmx=True`` marks pages that answer htmx with a fragment.
"""

import hashlib
import io
import itertools
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app import clock
from app.api import ids
from app.auth import tokens
from app.engine.content import unsubscribe_token
from app.extensions import db
from app.imports.reading import IMPORT_FIELDS
from app.models import (
    Contact,
    InboxItem,
    InboxStatus,
    Invitation,
    Lead,
    PendingSignup,
    Promise,
    Role,
    SourceKind,
    Stage,
    Tenant,
    TokenAccess,
    User,
)
from app.passwords import hash_password
from app.sources import services as sources
from tests import api_helpers, factories
from tests.api_helpers import bearer
from tests.test_tenancy import (
    _conflict,
    _delivery,
    _endpoint,
    _import_job,
    _invitation,
    _member_with_work,
    _membership,
    _stage_of,
    _token,
)

GET, POST = "GET", "POST"
ROLES = (Role.OWNER, Role.LEAD_GENERATOR, Role.CLOSER, Role.ACCOUNT_MANAGER)
EVERYONE = frozenset(ROLES)
OWNER = frozenset({Role.OWNER})
LEAD_GENERATION = OWNER | {Role.LEAD_GENERATOR}
CLOSING = OWNER | {Role.CLOSER}
ACCOUNTS = OWNER | {Role.ACCOUNT_MANAGER}
NEW_PASSWORD = "a sturdy new passphrase 42"


# --- Answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    kind: str  # page | fragment | csv | css | json | redirect | login | any

    def __str__(self) -> str:
        return f"{self.status} {self.kind}"

    def problem(self, response) -> str | None:
        """Why ``response`` is not this answer (None when it is)."""
        got = f"{response.status_code} {response.mimetype}"
        if response.status_code != self.status:
            return f"got {got}"
        body = response.get_data()
        location = urlsplit(response.headers.get("Location", ""))
        checks = {
            "page": response.mimetype == "text/html" and b"<html" in body,
            "fragment": response.mimetype == "text/html" and b"<html" not in body,
            "csv": response.mimetype == "text/csv"
            and response.headers.get("Content-Disposition", "").startswith("attachment"),
            "css": response.mimetype == "text/css",
            "json": response.is_json,
            "redirect": location.netloc in ("", "localhost") and location.path != "/login",
            "login": location.path == "/login",
            "htmx-login": urlsplit(response.headers.get("HX-Redirect", "")).path == "/login",
            "htmx-redirect": response.headers.get("HX-Redirect", "").startswith("/")
            and urlsplit(response.headers["HX-Redirect"]).path != "/login",
            "problem": response.mimetype == "application/problem+json",
            "any": True,
        }
        if not checks[self.kind]:
            return f"got {got}" + (f" to {location.path}" if location.path else "")
        return None


PAGE = Answer(200, "page")  # a full HTML page
FRAGMENT = Answer(200, "fragment")  # a piece of HTML that htmx swaps in
CSV = Answer(200, "csv")  # a download
CSS = Answer(200, "css")
REDIRECT = Answer(302, "redirect")  # done (or refused with a message): on to a page of the app
LOGIN = Answer(302, "login")  # to the sign-in page
HTMX_LOGIN = Answer(204, "htmx-login")  # htmx is told to load the sign-in page whole
HTMX_REDIRECT = Answer(204, "htmx-redirect")  # htmx is told to load the next page whole
HIDDEN = Answer(404, "any")  # as if there were nothing here
NO_CONTENT = Answer(204, "any")  # an htmx poll with nothing to swap


def json_answer(status: int) -> Answer:
    return Answer(status, "json")


def problem(status: int) -> Answer:
    """An API refusal: application/problem+json (RFC 9457)."""
    return Answer(status, "problem")


# --- The rows a request names -----------------------------------------------------------

_numbers = itertools.count(1)


@dataclass
class Scene:
    """The workspace a request's rows are built in, and who sends it."""

    tenant: Tenant
    owner: User  # the workspace's owner
    team: dict  # Role -> User of this workspace
    actor: User | None  # who sends the request (None: signed out)
    role: Role | None
    n: int  # unique per scene, for names and emails


Builder = Callable[[Scene], dict]

# Where each role works: the rows built for it are ones it may see if its role allows.
ROLE_STAGE = {Role.LEAD_GENERATOR: "New", Role.CLOSER: "Proposal", Role.ACCOUNT_MANAGER: "Client"}
NEXT_STAGE = {"New": "Contacted", "Proposal": "Negotiation", "Client": "Client"}


def _working_stage(scene: Scene, owners_stage: str) -> str:
    return ROLE_STAGE.get(scene.role, owners_stage)


def _stage(tenant: Tenant, name: str) -> Stage:
    return db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.name == name)
        .execution_options(all_tenants=True)
    )


def _lead_in(owners_stage: str) -> Builder:
    """A deal the actor works on: in their role's phase, owned by them."""

    def build(scene: Scene) -> dict:
        stage = _working_stage(scene, owners_stage)
        lead = factories.lead(scene.tenant, stage, owner=scene.actor or scene.owner)
        return {"lead_id": lead.id}

    return build


_deal = _lead_in("New")
_deal_in_conversion = _lead_in("Proposal")
_client = _lead_in("Client")


PERSON_KEEPERS = OWNER | {Role.CLOSER, Role.ACCOUNT_MANAGER}


def _person_of(deal: Builder) -> Builder:
    """The person of a deal the actor works on."""
    return lambda scene: {"contact_id": db.session.get(Lead, deal(scene)["lead_id"]).contact_id}


def _hand_entry_sources(scene: Scene) -> dict:
    """Nothing to make: quick add's built-in sources are made by the first quick add."""
    return {}


def _quick_add_form(scene: Scene) -> dict:
    return {"qa-name": "Walk In", "qa-phone": "+12025550123", "qa-source": "walk_in"}


def _person_and_a_double(scene: Scene) -> dict:
    """A person the owner works on, and another record that may be them."""
    double = factories.lead(scene.tenant, "New")
    double.contact.name = f"Double {scene.n}"
    db.session.commit()
    return _person_of(_deal)(scene)


def _merge_form(scene: Scene) -> dict:
    double = db.session.scalar(
        sa.select(Contact.id)
        .where(Contact.tenant_id == scene.tenant.id, Contact.name == f"Double {scene.n}")
        .execution_options(all_tenants=True)
    )
    return {"other": str(double)}


def _qualified_deal(scene: Scene) -> dict:
    values = _deal(scene)
    lead = db.session.get(Lead, values["lead_id"])
    lead.problem, lead.money = "Slow deliveries", "confirmed"
    lead.decision_date, lead.qualified_at = date(2030, 1, 15), clock.now()
    db.session.commit()
    return values


def _promise(scene: Scene) -> dict:
    promise = Promise(
        tenant_id=scene.tenant.id, lead_id=_client(scene)["lead_id"], text="Free delivery"
    )
    db.session.add(promise)
    db.session.commit()
    return {"promise_id": promise.id}


def _board_column(scene: Scene) -> dict:
    stage = _stage(scene.tenant, _working_stage(scene, "New"))
    return {"stage_id": stage.id, "after": "2026-01-01T00:00:00+00:00|1"}


def _new_source(scene: Scene, kind: SourceKind = SourceKind.PARTNER):
    return sources.create_source(scene.tenant, f"Source {scene.n}", kind)


def _source(scene: Scene) -> dict:
    return {"source_id": _new_source(scene).id}


def _rejected_post(scene: Scene) -> dict:
    item = InboxItem(
        tenant_id=scene.tenant.id,
        source_id=_new_source(scene, SourceKind.SITE_FORM).id,
        body=b'{"name": "Anna"}',
        content_type="application/json",
        status=InboxStatus.REJECTED,
        reason="invalid_fields",
    )
    db.session.add(item)
    db.session.commit()
    return {"item_id": item.id}


def _intake_address(scene: Scene) -> dict:
    return {"token": _new_source(scene, SourceKind.SITE_FORM).intake_token}


def _partner_report(scene: Scene) -> dict:
    source = _new_source(scene)
    source.partner_report_token = secrets.token_urlsafe(24)
    db.session.commit()
    return {"token": source.partner_report_token}


def _unsubscribe_link(scene: Scene) -> dict:
    membership = factories.membership_of(scene.tenant, scene.actor or scene.owner)
    return {"token": unsubscribe_token(membership)}


def _reset_link(scene: Scene) -> dict:
    return {"token": tokens.password_reset_token(factories.member(scene.tenant, Role.CLOSER))}


def _signup_link(scene: Scene) -> dict:
    pending = PendingSignup(
        email=f"newcomer{scene.n}@example.com",
        name="Nina",
        business_name=f"Bakery {scene.n}",
        password_hash=hash_password(factories.PASSWORD),
        language="en",
    )
    db.session.add(pending)
    db.session.commit()
    return {"token": tokens.signup_token(pending)}


def _invitation_link(scene: Scene) -> dict:
    invitation = Invitation(
        tenant_id=scene.tenant.id,
        email=f"invitee{scene.n}@example.com",
        role=Role.CLOSER,
        invited_by_id=scene.owner.id,
    )
    db.session.add(invitation)
    db.session.commit()
    return {"token": tokens.invitation_token(invitation)}


def _tenancy(builder) -> Builder:
    """One of tests/test_tenancy.py's builders (rows the owner's tools act on)."""
    return lambda scene: builder(scene.tenant, scene.owner, factories)


def _workspace(scene: Scene) -> dict:
    return {"tenant_id": scene.tenant.id}


def _stylesheet(scene: Scene) -> dict:
    return {"filename": "css/app.css"}


# --- Well-formed bodies -------------------------------------------------------------------


def _move_form(scene: Scene) -> dict:
    target = NEXT_STAGE[_working_stage(scene, "New")]
    return {"stage_id": str(_stage(scene.tenant, target).id)}


def _upload_form(scene: Scene) -> dict:
    return {"file": (io.BytesIO(b"Name,Email\nAnna,anna@example.com\n"), "clients.csv")}


MAPPING_FORM = {
    **{f"map_{name}": "" for name in IMPORT_FIELDS},
    "map_name": "0",
    "map_email": "1",
    "mode": "leads",
    "default_account_manager": "",
}


def _handover_form(scene: Scene) -> dict:
    closer = scene.team.get(Role.CLOSER)
    return {"recipients": str(closer.id) if closer else ""}


# --- The matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    endpoint: str
    method: str
    members: frozenset  # roles that get `ok`; every other member gets 404
    ok: Answer
    ids: Builder | None = None  # builds the rows the URL names
    form: dict | Callable[[Scene], dict] | None = None  # a well-formed form body
    payload: dict | None = None  # a well-formed JSON body
    public: Answer | None = None  # what a signed-out visitor gets (None: the sign-in page)
    htmx: bool = False  # a page that answers htmx with a fragment
    forged: Answer | None = None  # the answer to a made-up token
    # An API route: sent with API tokens instead of sessions (see ``plan_api``); roles
    # outside ``members`` get ``denied`` (404 for a row, 403 for a whole list or action).
    api: bool = False
    denied: Answer = HIDDEN

    @property
    def signed_out(self) -> Answer:
        return self.public or LOGIN


# --- The API: tokens, not sessions -------------------------------------------------------


def _opaque(builder: Builder, kind: str = "lead") -> Builder:
    """A builder's row, named by the API's opaque id."""

    def build(scene: Scene) -> dict:
        return {name: ids.encode(kind, value) for name, value in builder(scene).items()}

    return build


def _person(scene: Scene) -> dict:
    lead = db.session.get(Lead, _deal(scene)["lead_id"])
    return {"person_id": ids.encode("person", lead.contact_id)}


def _move_payload(scene: Scene) -> dict:
    target = NEXT_STAGE[_working_stage(scene, "New")]
    return {"stage_id": ids.encode("stage", _stage(scene.tenant, target).id)}


def _touch_payload(scene: Scene) -> dict:
    return {"lead_id": ids.encode("lead", _deal(scene)["lead_id"]), "channel": "call"}


API_OK, API_CREATED = json_answer(200), json_answer(201)
API_ROWS = [
    Row("api.list_leads", GET, EVERYONE, API_OK, api=True),
    Row(
        "api.create_lead",
        POST,
        LEAD_GENERATION,
        API_CREATED,
        payload={"name": "Anna", "email": "anna@example.com"},
        api=True,
        denied=problem(403),
    ),
    Row("api.get_lead", GET, EVERYONE, API_OK, _opaque(_deal), api=True),
    Row(
        "api.update_lead",
        "PATCH",
        EVERYONE,
        API_OK,
        _opaque(_deal),
        payload=_move_payload,
        api=True,
    ),
    Row("api.list_clients", GET, EVERYONE, API_OK, api=True),
    Row("api.get_client", GET, ACCOUNTS, API_OK, _opaque(_client), api=True),
    Row("api.list_people", GET, EVERYONE, API_OK, api=True),
    Row("api.get_person", GET, EVERYONE, API_OK, _person, api=True),
    Row("api.list_stages", GET, EVERYONE, API_OK, api=True),
    Row("api.list_sources", GET, LEAD_GENERATION, API_OK, api=True, denied=problem(403)),
    Row("api.list_touches", GET, EVERYONE, API_OK, api=True),
    Row("api.log_touch", POST, EVERYONE, API_CREATED, payload=_touch_payload, api=True),
    Row("api.list_promises", GET, EVERYONE, API_OK, api=True),
    Row("api.list_conflicts", GET, OWNER, API_OK, api=True, denied=problem(403)),
    # Settings → API and webhooks: the owner.
    Row("integrations.index", GET, OWNER, PAGE),
    Row(
        "integrations.create_token",
        POST,
        OWNER,
        PAGE,  # the secret is shown on this answer, once
        form=lambda s: {
            "token-name": "Zapier",
            "token-access": "read",
            "token-membership_id": str(factories.membership_of(s.tenant, s.owner).id),
        },
    ),
    Row("integrations.revoke_token", POST, OWNER, REDIRECT, _tenancy(_token)),
    Row(
        "integrations.create_endpoint",
        POST,
        OWNER,
        REDIRECT,
        form={"endpoint-url": "http://127.0.0.1:9/in", "endpoint-events": "lead.created"},
    ),
    Row("integrations.endpoint", GET, OWNER, PAGE, _tenancy(_endpoint)),
    Row(
        "integrations.endpoint",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_endpoint),
        form={"endpoint-url": "http://127.0.0.1:9/in", "endpoint-events": "deal.won"},
    ),
    Row("integrations.rotate_secret", POST, OWNER, REDIRECT, _tenancy(_endpoint)),
    Row("integrations.enable", POST, OWNER, REDIRECT, _tenancy(_endpoint)),
    Row("integrations.disable", POST, OWNER, REDIRECT, _tenancy(_endpoint)),
    Row("integrations.delete", POST, OWNER, REDIRECT, _tenancy(_endpoint)),
    Row("integrations.redeliver", POST, OWNER, REDIRECT, _tenancy(_delivery)),
    # The document and its page are public: they describe the API, they hold no data.
    Row("api.openapi", GET, EVERYONE, API_OK, public=API_OK),
    Row("api.docs", GET, EVERYONE, PAGE, public=PAGE),
]

ROWS = [
    # Signing in and up, password reset, invitations: public pages.
    Row("auth.login", GET, EVERYONE, REDIRECT, public=PAGE, htmx=True),
    Row(
        "auth.login",
        POST,
        EVERYONE,
        REDIRECT,
        form=lambda s: {"email": s.owner.email, "password": factories.PASSWORD},
        public=REDIRECT,
    ),
    Row("auth.logout", POST, EVERYONE, LOGIN, public=LOGIN),
    Row("auth.signup", GET, EVERYONE, PAGE, public=PAGE, htmx=True),
    Row(
        "auth.signup",
        POST,
        EVERYONE,
        REDIRECT,
        form=lambda s: {
            "business_name": f"Bakery {s.n}",
            "name": "Nina",
            "email": f"signup{s.n}@example.com",
            "password": NEW_PASSWORD,
        },
        public=REDIRECT,
    ),
    # The same page for every address; the emailed link opens the workspace (its button).
    Row("auth.signup_sent", GET, EVERYONE, PAGE, public=PAGE),
    Row("auth.confirm_signup", GET, EVERYONE, PAGE, _signup_link, public=PAGE, forged=LOGIN),
    Row(
        "auth.confirm_signup",
        POST,
        EVERYONE,
        REDIRECT,
        _signup_link,
        public=REDIRECT,
        forged=LOGIN,
    ),
    Row("auth.forgot_password", GET, EVERYONE, PAGE, public=PAGE),
    Row(
        "auth.forgot_password",
        POST,
        EVERYONE,
        LOGIN,
        form=lambda s: {"email": f"forgetful{s.n}@example.com"},
        public=LOGIN,
    ),
    Row("auth.reset_password", GET, EVERYONE, PAGE, _reset_link, public=PAGE, forged=REDIRECT),
    Row(
        "auth.reset_password",
        POST,
        EVERYONE,
        LOGIN,
        _reset_link,
        form={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        public=LOGIN,
        forged=REDIRECT,
    ),
    Row(
        "auth.accept_invitation",
        GET,
        EVERYONE,
        PAGE,
        _invitation_link,
        public=PAGE,
        forged=HIDDEN,
    ),
    Row(
        "auth.accept_invitation",
        POST,
        EVERYONE,
        REDIRECT,
        _invitation_link,
        form={"name": "Ivan", "password": NEW_PASSWORD},
        public=REDIRECT,
        forged=HIDDEN,
    ),
    Row("auth.set_language", POST, EVERYONE, REDIRECT, form={"language": "en"}, public=REDIRECT),
    # One's own account: every signed-in person.
    Row("auth.account", GET, EVERYONE, PAGE),
    Row(
        "auth.change_email",
        POST,
        EVERYONE,
        REDIRECT,
        form=lambda s: {
            "email-new_email": f"renamed{s.n}@example.com",
            "email-current_password": factories.PASSWORD,
        },
    ),
    Row(
        "auth.change_password",
        POST,
        EVERYONE,
        REDIRECT,
        form={"pw-current_password": factories.PASSWORD, "pw-new_password": NEW_PASSWORD},
    ),
    Row("auth.set_digest", POST, EVERYONE, REDIRECT, form={"digest": "on"}),
    Row("auth.no_workspace", GET, EVERYONE, PAGE),
    # Home, health, development outbox, static files.
    Row("main.dashboard", GET, EVERYONE, PAGE),
    Row("main.healthz", GET, EVERYONE, json_answer(200), public=json_answer(200)),
    # Only with the development mail outbox; the tests send over SMTP.
    Row("main.dev_outbox", GET, EVERYONE, HIDDEN, public=HIDDEN),
    Row("static", GET, EVERYONE, CSS, _stylesheet, public=CSS),
    # Workspace settings, team, rules: the owner.
    Row("workspace.settings", GET, OWNER, PAGE),
    Row(
        "workspace.settings",
        POST,
        OWNER,
        REDIRECT,
        form={
            "name": "Renamed bakery",
            "timezone": "Europe/Berlin",
            "language": "en",
            "currency": "EUR",
            "touch_cadence_days": "7",
            "queue_size": "20",
            "digest_hour": "8",
        },
    ),
    Row("workspace.team", GET, OWNER, PAGE, htmx=True),
    Row(
        "workspace.invite",
        POST,
        OWNER,
        REDIRECT,
        form=lambda s: {"email": f"newcomer{s.n}@example.com", "role": "closer"},
    ),
    Row("workspace.resend_invitation", POST, OWNER, REDIRECT, _tenancy(_invitation)),
    Row("workspace.revoke_invitation", POST, OWNER, REDIRECT, _tenancy(_invitation)),
    Row("workspace.deactivate_member", POST, OWNER, REDIRECT, _tenancy(_membership)),
    Row("workspace.reactivate_member", POST, OWNER, REDIRECT, _tenancy(_membership)),
    Row(
        "workspace.change_role",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_membership),
        form={"role": "lead_generator"},
    ),
    Row("workspace.handover", GET, OWNER, PAGE, _tenancy(_member_with_work)),
    Row(
        "workspace.handover",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_member_with_work),
        form=_handover_form,
    ),
    Row("workspace.rules", GET, OWNER, PAGE),
    Row(
        "workspace.rules",
        POST,
        OWNER,
        REDIRECT,
        form={
            "max_discount_percent": "15",
            "closer_daily_capacity": "25",
            "queue_size": "20",
            "touch_cadence_days": "7",
            "assignment_mode": "round_robin",
        },
    ),
    Row(
        "workspace.update_stage",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_stage_of),
        form={"name": "First call", "rot_days": "2"},
    ),
    Row(
        "workspace.move_stage",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_stage_of),
        form={"direction": "down"},
    ),
    # Any signed-in person may open a workspace and switch to one they have a seat in.
    Row("workspace.new_workspace", GET, EVERYONE, PAGE),
    Row(
        "workspace.new_workspace",
        POST,
        EVERYONE,
        REDIRECT,
        form=lambda s: {"name": f"Side business {s.n}"},
    ),
    Row("workspace.switch", POST, EVERYONE, REDIRECT, _workspace),
    # Lead sources, the inbox, incoming leads: owner and lead generators.
    Row("sources.index", GET, LEAD_GENERATION, PAGE),
    Row("sources.new", GET, LEAD_GENERATION, PAGE),
    Row(
        "sources.new",
        POST,
        LEAD_GENERATION,
        REDIRECT,
        form=lambda s: {
            "name": f"Fair {s.n}",
            "kind": "ad",
            "cost": "12.50",
            "rate_limit_per_minute": "600",
        },
    ),
    Row("sources.edit", GET, LEAD_GENERATION, PAGE, _source),
    Row(
        "sources.edit",
        POST,
        LEAD_GENERATION,
        REDIRECT,
        _source,
        form=lambda s: {
            "name": f"Renamed {s.n}",
            "kind": "partner",
            "cost": "3",
            "rate_limit_per_minute": "60",
        },
    ),
    Row("sources.connect", GET, LEAD_GENERATION, PAGE, _source),
    Row("sources.pause", POST, LEAD_GENERATION, REDIRECT, _source),
    Row("sources.resume", POST, LEAD_GENERATION, REDIRECT, _source),
    Row("sources.rotate_token", POST, LEAD_GENERATION, REDIRECT, _source),
    Row("sources.rotate_signing", POST, LEAD_GENERATION, REDIRECT, _source),
    Row("sources.disable_signing", POST, LEAD_GENERATION, REDIRECT, _source),
    Row("sources.inbox", GET, LEAD_GENERATION, PAGE, htmx=True),
    Row("sources.inbox_item", GET, LEAD_GENERATION, PAGE, _rejected_post),
    Row(
        "sources.inbox_item",
        POST,
        LEAD_GENERATION,
        REDIRECT,
        _rejected_post,
        form={"name": "Anna", "email": "anna@example.com"},
    ),
    Row("leads.incoming", GET, LEAD_GENERATION, PAGE, htmx=True),
    # Public intake: the secret address, its hosted form, the partner's report.
    Row(
        "intake.receive",
        POST,
        EVERYONE,
        json_answer(202),
        _intake_address,
        payload={"name": "Anna", "email": "anna@example.com"},
        public=json_answer(202),
        forged=json_answer(404),
    ),
    Row(
        "intake.hosted_form",
        GET,
        EVERYONE,
        PAGE,
        _intake_address,
        public=PAGE,
        forged=json_answer(404),
    ),
    Row(
        "radar.partner_report",
        GET,
        EVERYONE,
        PAGE,
        _partner_report,
        public=PAGE,
        forged=HIDDEN,
    ),
    # The board and deals: everyone, each on the deals of their own phase.
    Row("conveyor.board", GET, EVERYONE, PAGE, htmx=True),
    Row("conveyor.board_pulse", GET, EVERYONE, NO_CONTENT, htmx=True),
    Row("conveyor.more_cards", GET, EVERYONE, FRAGMENT, _board_column),
    Row("conveyor.lead", GET, EVERYONE, PAGE, _deal),
    Row("conveyor.move", POST, EVERYONE, REDIRECT, _deal, form=_move_form),
    Row(
        "conveyor.add_note",
        POST,
        EVERYONE,
        REDIRECT,
        _deal,
        form={"text": "Called, they will call back"},
    ),
    Row(
        "conveyor.log_touch",
        POST,
        EVERYONE,
        REDIRECT,
        _deal,
        form={"channel": "call", "outcome": "Reached"},
    ),
    Row(
        "conveyor.schedule_touch",
        POST,
        EVERYONE,
        REDIRECT,
        _deal,
        form={"at": "2030-01-15T10:30"},
    ),
    # A deal is lost by whoever works on deals; a client is never lost (churned instead).
    Row(
        "conveyor.lose",
        POST,
        LEAD_GENERATION | CLOSING,
        REDIRECT,
        _deal,
        form={"reason": "no_money"},
    ),
    Row(
        "conveyor.qualify",
        POST,
        LEAD_GENERATION,
        REDIRECT,
        _deal,
        form={
            "problem": "Slow deliveries",
            "money": "confirmed",
            "decision_date": "2030-01-15",
            "value": "1200",
        },
    ),
    Row("conveyor.convert", POST, LEAD_GENERATION, REDIRECT, _qualified_deal),
    Row("conveyor.today_queue", GET, CLOSING, PAGE),
    Row("conveyor.win", GET, CLOSING, PAGE, _deal_in_conversion),
    Row(
        "conveyor.win",
        POST,
        CLOSING,
        REDIRECT,
        _deal_in_conversion,
        form={"value": "2500", "account_manager_id": "0"},
    ),
    # Clients and hand-offs: owner and account managers; the export: the owner.
    Row("clients.index", GET, ACCOUNTS, PAGE),
    Row("clients.handoffs", GET, ACCOUNTS, PAGE),
    Row("clients.accept_promise", POST, ACCOUNTS, REDIRECT, _promise),
    Row(
        "clients.flag_promise",
        POST,
        ACCOUNTS,
        REDIRECT,
        _promise,
        form={"reason": "Out of stock until March"},
    ),
    Row("clients.new_sale", POST, ACCOUNTS, REDIRECT, _client),
    Row("clients.churn", POST, ACCOUNTS, REDIRECT, _client, form={"reason": "price"}),
    Row("conveyor.set_cadence", POST, ACCOUNTS, REDIRECT, _client, form={"cadence_days": "3"}),
    Row("clients.export", GET, OWNER, CSV),
    # People, quick add and search (issue 16).
    Row("people.add", GET, EVERYONE, PAGE),
    Row("people.add", POST, EVERYONE, REDIRECT, _hand_entry_sources, form=_quick_add_form),
    Row("people.matches", GET, EVERYONE, FRAGMENT),
    Row("search.results", GET, EVERYONE, PAGE, htmx=True),
    Row("people.person", GET, PERSON_KEEPERS, PAGE, _person_of(_deal)),
    Row("people.person", POST, PERSON_KEEPERS, REDIRECT, _person_of(_deal), form={"name": "Re"}),
    Row("people.merge", POST, OWNER, REDIRECT, _person_and_a_double, form=_merge_form),
    # Importing a client base: the owner.
    Row("imports.index", GET, OWNER, PAGE),
    Row("imports.new", GET, OWNER, PAGE),
    Row("imports.new", POST, OWNER, REDIRECT, form=_upload_form),
    Row("imports.mapping", GET, OWNER, PAGE, _tenancy(_import_job)),
    Row("imports.mapping", POST, OWNER, REDIRECT, _tenancy(_import_job), form=MAPPING_FORM),
    Row("imports.start", POST, OWNER, REDIRECT, _tenancy(_import_job)),
    Row("imports.show", GET, OWNER, PAGE, _tenancy(_import_job), htmx=True),
    Row("imports.progress", GET, OWNER, PAGE, _tenancy(_import_job), htmx=True),
    Row("imports.rejected_report", GET, OWNER, CSV, _tenancy(_import_job)),
    # Radar: source quality, conflicts, partner links: the owner.
    Row("radar.sources", GET, OWNER, PAGE),
    Row("radar.funnel", GET, OWNER, PAGE, htmx=True),
    Row("radar.sources_csv", GET, OWNER, CSV),
    Row("radar.conflict_list", GET, OWNER, PAGE),
    Row("radar.conflicts_monthly", GET, OWNER, PAGE),
    Row("radar.conflict", GET, OWNER, PAGE, _tenancy(_conflict)),
    Row(
        "radar.conflict",
        POST,
        OWNER,
        REDIRECT,
        _tenancy(_conflict),
        form={"status": "resolved", "note": "Called the client"},
    ),
    Row("radar.partner_link", POST, OWNER, REDIRECT, _source),
    Row("radar.revoke_partner_link", POST, OWNER, REDIRECT, _source),
    # Notifications for everyone; failed deliveries for the owner; one-click unsubscribe.
    Row("engine.bell", GET, EVERYONE, FRAGMENT),
    Row("engine.notifications", GET, EVERYONE, PAGE),
    Row("engine.outbox", GET, OWNER, PAGE),
    Row(
        "engine.unsubscribe",
        GET,
        EVERYONE,
        PAGE,
        _unsubscribe_link,
        public=PAGE,
        forged=HIDDEN,
    ),
    Row(
        "engine.unsubscribe_now",
        POST,
        EVERYONE,
        PAGE,
        _unsubscribe_link,
        public=PAGE,
        forged=HIDDEN,
    ),
    # Billing: the owner; Stripe's webhook is public (400 while billing is off).
    Row("billing.index", GET, OWNER, PAGE),
    Row("billing.checkout", POST, OWNER, REDIRECT, form={"plan": "starter"}),
    Row("billing.portal", POST, OWNER, REDIRECT),
    Row(
        "billing.webhook",
        POST,
        EVERYONE,
        json_answer(400),
        payload={"id": "evt_1", "type": "invoice.paid"},
        public=json_answer(400),
    ),
    # Telegram: off without a bot token, so not there for anyone (tests/test_telegram.py
    # walks these rows again with the bot on).
    Row("telegram.webhook", POST, EVERYONE, HIDDEN, payload={"update_id": 1}, public=HIDDEN),
    Row("telegram.link", POST, EVERYONE, HIDDEN),
    Row("telegram.unlink", POST, EVERYONE, HIDDEN),
    Row("telegram.channels", POST, EVERYONE, HIDDEN, form={"digest": "email"}),
    *API_ROWS,
]
MATRIX = {(row.endpoint, row.method): row for row in ROWS}
# An API token notes when it was last used, whatever the answer.
TOUCHED_BY_READS = ("api_token.last_used_at",)


def _routes(app) -> dict:
    """(endpoint, method) -> rule, for every route the app serves."""
    return {
        (rule.endpoint, method): rule
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def _takes_ids(rule) -> bool:
    return any(name.endswith("_id") for name in rule.arguments)


# --- The database, every row of it ------------------------------------------------------


def database_fingerprint(ignore: Collection[str] = ()) -> dict[str, tuple[int, str]]:
    """Each table's row count and a hash of all its rows in primary-key order.

    ``ignore`` names columns ("table.column") left out of the hash.
    """
    prints = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if f"{table.name}.{c.name}" not in ignore]
            rows = conn.execute(sa.select(*columns).order_by(*table.primary_key.columns)).all()
            prints[table.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return prints


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


# --- A workspace with one member of each role, and another workspace -----------------------


@dataclass
class World:
    home: Tenant
    team: dict  # Role -> User
    clients: dict  # Role -> signed-in test client
    other: Tenant
    other_owner: User

    def scene(self, role: Role | None) -> Scene:
        """Rows in the member's own workspace (``None``: for a signed-out visitor)."""
        actor = self.team[role] if role else None
        owner = self.team[Role.OWNER]
        return Scene(self.home, owner, self.team, actor, role, next(_numbers))

    def foreign_scene(self, role: Role) -> Scene:
        """The same kind of rows, in the other workspace (deals still owned by the member)."""
        team = {Role.OWNER: self.other_owner}
        return Scene(self.other, self.other_owner, team, self.team[role], role, next(_numbers))


def build_world(app, make, monkeypatch) -> World:
    """A workspace with one signed-in member of each role, and another workspace."""
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", None)  # billing off: one answer
    home, owner = make.workspace_with_owner(name="Home bakery")
    team = {Role.OWNER: owner}
    for role in ROLES[1:]:
        team[role] = make.member(home, role)
    other, other_owner = make.workspace_with_owner(name="Other bakery")
    clients = {}
    for role, user in team.items():
        clients[role] = app.test_client()
        response = clients[role].post(
            "/login", data={"email": user.email, "password": factories.PASSWORD}
        )
        assert response.status_code == 302, response.text
    return World(home, team, clients, other, other_owner)


@pytest.fixture
def world(app, make, monkeypatch):
    return build_world(app, make, monkeypatch)


# --- Sending requests -----------------------------------------------------------------------


@dataclass
class Visit:
    who: str
    client: object
    method: str
    url: str
    body: dict
    expected: Answer
    htmx: bool = False
    headers: dict | None = None

    def send(self):
        headers = {"HX-Request": "true"} if self.htmx else {}
        headers.update(self.headers or {})
        body = {k: v() if callable(v) else v for k, v in self.body.items()}
        response = self.client.open(self.url, method=self.method, headers=headers, **body)
        response.get_data()
        response.close()
        return response

    def __str__(self) -> str:
        return f"{self.who}: {self.method} {self.url}{' (htmx)' if self.htmx else ''}"


def url_for(app, endpoint: str, values: dict) -> str:
    with app.test_request_context():
        return app.url_for(endpoint, **values)


def _visits(app, row: Row, client, who: str, scene: Scene | None, expected: Answer, values=None):
    """The request (and its htmx twin for pages that have one) for one context."""
    if values is None:
        values = row.ids(scene) if row.ids else {}
    body = {}
    if row.method == POST and row.form is not None:
        form = row.form
        body["data"] = (lambda: form(scene)) if callable(form) else form
    if row.method == POST and row.payload is not None:
        body["json"] = row.payload
    url = url_for(app, row.endpoint, values)
    visits = [Visit(who, client, row.method, url, body, expected)]
    if row.htmx and row.method == GET:
        twin = {PAGE: FRAGMENT, LOGIN: HTMX_LOGIN, REDIRECT: HTMX_REDIRECT}.get(expected, expected)
        visits.append(Visit(who, client, row.method, url, body, twin, htmx=True))
    return visits


def plan(app, world: World, row: Row) -> tuple[list[Visit], list[Visit]]:
    """(refused, allowed): every request the row's contract speaks about."""
    if row.api:
        return plan_api(app, world, row, _routes(app)[(row.endpoint, row.method)])
    refused, allowed = [], []
    for role in ROLES:
        client = world.clients[role]
        if role in row.members:
            allowed += _visits(app, row, client, role.value, world.scene(role), row.ok)
        else:
            refused += _visits(app, row, client, role.value, world.scene(role), HIDDEN)
    rule = _routes(app)[(row.endpoint, row.method)]
    if _takes_ids(rule):
        for role in ROLES:
            who = f"{role.value} naming another workspace's row"
            scene = world.foreign_scene(role)
            refused += _visits(app, row, world.clients[role], who, scene, HIDDEN)
    signed_out = _visits(
        app, row, app.test_client(), "signed out", world.scene(None), row.signed_out
    )
    (allowed if row.public else refused).extend(signed_out)
    if row.forged:
        made_up = {"token": "forged" + secrets.token_urlsafe(16)}
        refused += _visits(app, row, app.test_client(), "made-up token", None, row.forged, made_up)
    return refused, allowed


def plan_api(app, world: World, row: Row, rule) -> tuple[list[Visit], list[Visit]]:
    """An API row: a read-write token acting for each role, the owner's read-only token,
    each role's token naming another workspace's row, and no token (a session cookie,
    nothing, a made-up token): 401. Payloads are built now, before anything is compared."""
    refused, allowed = [], []
    mutating = row.method != GET
    unauthenticated = problem(401)

    def visits(who, client, scene, expected, headers, values=None):
        if values is None:
            values = row.ids(scene) if row.ids else {}
        body = {}
        if row.payload is not None:
            body["json"] = row.payload(scene) if callable(row.payload) else row.payload
        url = url_for(app, row.endpoint, values)
        return [Visit(who, client, row.method, url, body, expected, headers=headers)]

    anonymous = app.test_client()
    for role in ROLES:
        user = world.team[role]
        secret = api_helpers.token_for(world.home, world.team[Role.OWNER], user)
        expected = row.ok if role in row.members else row.denied
        scene = world.scene(role)
        (allowed if role in row.members else refused).extend(
            visits(f"{role.value}'s token", anonymous, scene, expected, bearer(secret))
        )
        if _takes_ids(rule):
            foreign = world.foreign_scene(role)
            refused += visits(
                f"{role.value}'s token naming another workspace's row",
                anonymous,
                foreign,
                HIDDEN,
                bearer(secret),
            )
    owner = world.team[Role.OWNER]
    read_only = api_helpers.token_for(world.home, owner, access=TokenAccess.READ)
    scene = world.scene(Role.OWNER)
    if mutating:
        refused += visits(
            "owner's read-only token", anonymous, scene, problem(403), bearer(read_only)
        )
    else:
        allowed += visits("owner's read-only token", anonymous, scene, row.ok, bearer(read_only))
    cookie = world.clients[Role.OWNER]
    refused += visits("owner's session, no token", cookie, scene, unauthenticated, {})
    refused += visits("no token", anonymous, scene, unauthenticated, {})
    refused += visits(
        "made-up token",
        anonymous,
        scene,
        unauthenticated,
        bearer("cvk_" + secrets.token_urlsafe(32)),
    )
    return refused, allowed


# --- Tests ----------------------------------------------------------------------------------


def test_every_route_has_a_row_in_the_matrix(app):
    routes = set(_routes(app))
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"add these (endpoint, method) rows to ROWS: {missing}"
    assert not stale, f"these ROWS name no route: {stale}"
    assert len(MATRIX) == len(ROWS), "a row is listed twice"


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda key: f"{key[1]} {key[0]}")
def test_the_route_answers_each_role_and_context_as_the_matrix_says(app, world, key):
    refused, allowed = plan(app, world, MATRIX[key])
    mismatches = []

    before = database_fingerprint(TOUCHED_BY_READS)
    for visit in refused:
        problem = visit.expected.problem(visit.send())
        if problem:
            mismatches.append(f"{visit}: expected {visit.expected}, {problem}")
    changed = changed_tables(before, database_fingerprint(TOUCHED_BY_READS))
    if changed:
        mismatches.append(f"refused requests changed rows in {changed}")

    for visit in allowed:
        problem = visit.expected.problem(visit.send())
        if problem:
            mismatches.append(f"{visit}: expected {visit.expected}, {problem}")
    assert not mismatches, "\n".join(mismatches)


def _any_values(rule) -> dict:
    values = {name: 1 for name in rule.arguments}
    if "token" in values:
        values["token"] = "whatever"
    if "filename" in values:
        values["filename"] = "css/app.css"
    return values


def test_every_route_refuses_the_methods_it_does_not_take_with_405(app, world):
    """GET on a form's target, POST on a page, PUT and DELETE anywhere: 405, signed in or not."""
    adapter = app.url_map.bind("conveyor.test")
    mismatches = []
    for rule in app.url_map.iter_rules():
        url = url_for(app, rule.endpoint, _any_values(rule))
        taken = set(adapter.allowed_methods(url))
        for method in sorted({GET, POST, "PUT", "DELETE"} - taken):
            for who, client in (
                ("signed out", app.test_client()),
                ("owner", world.clients[Role.OWNER]),
            ):
                response = client.open(url, method=method)
                response.close()
                if response.status_code != 405:
                    mismatches.append(f"{who}: {method} {url} answered {response.status_code}")
    assert not mismatches, "\n".join(mismatches)
