"""/api/v1: thin views. Each authenticates its token (``api_call``), validates and
documents itself (``operation``), and asks ``records`` or a service inside the walls."""

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from app.api import ids, records, schemas
from app.api import leads as lead_service
from app.api.auth import api_call, rate_headers
from app.api.idempotency import idempotent
from app.api.problems import from_http_error
from app.api.records import as_json, need, page
from app.api.spec import document, operation, responds
from app.conveyor import services as conveyor
from app.extensions import csrf, db, limiter
from app.models import Conflict, Contact, Lead, Promise, Source, Stage, Touch, TouchChannel

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, from_http_error)
# The app's pages answer these codes with HTML; Flask asks a handler for the code before
# one for the class, so the API names each code again for its own views.
for _code in (400, 404, 405, 413, 429, 500):
    bp.register_error_handler(_code, from_http_error)


@bp.before_app_request
def _routing_problem():
    """An unknown address or method under /api/v1 is a problem document too.

    Routing fails before a blueprint is chosen, so the blueprint's handlers never see it.
    """
    error = request.routing_exception
    under_api = request.path.startswith(bp.url_prefix + "/")
    if under_api and isinstance(error, HTTPException) and (error.code or 0) >= 400:
        return from_http_error(error)
    return None


@bp.after_request
def _rate_headers(response):
    response.headers.update(rate_headers())
    return response


def _page(rows, cursor, record) -> dict:
    return {"data": [as_json(record(row)) for row in rows], "next_cursor": cursor}


# --- Leads and deals -------------------------------------------------------------------------


@bp.get("/leads")
@api_call
@operation(
    "listLeads",
    _l("List leads and deals"),
    _l(
        "Filter by phase, stage, owner, source, status or qualification; updated_since "
        "gives what changed since a moment."
    ),
    query=schemas.LeadQuery,
    resp=responds(200, schemas.LeadPage, 422),
    tag="leads",
)
def list_leads():
    args = request.context.query
    query = records.leads_query(g.membership)
    if args.phase:
        query = query.where(Stage.phase == args.phase)
    if args.stage_id:
        query = query.where(Lead.stage_id == records.filter_id("stage", args.stage_id, "stage_id"))
    if args.owner_id:
        query = query.where(Lead.owner_id == records.filter_id("user", args.owner_id, "owner_id"))
    if args.source_id:
        source_id = records.filter_id("source", args.source_id, "source_id")
        query = query.where(Lead.source_id == source_id)
    if args.qualified is not None:
        query = query.where(Lead.qualified_at.is_not(None) == args.qualified)
    if args.status:
        query = query.where(_status_condition(args.status))
    rows, cursor = page(query, Lead, "lead", args, Lead.last_activity_at)
    return _page(rows, cursor, lambda lead: records.lead_record(lead, g.tenant))


def _status_condition(status: str):
    return {
        "churned": Lead.churned_at.is_not(None),
        "lost": Stage.is_lost.is_(True),
        "won": sa.and_(Lead.won_at.is_not(None), Lead.churned_at.is_(None)),
        "open": sa.and_(Stage.is_lost.is_(False), Stage.is_won.is_(False), Lead.won_at.is_(None)),
    }[status]


@bp.post("/leads")
@api_call
@idempotent
@operation(
    "createLead",
    _l("Create a lead"),
    _l(
        "Built by the same lead builder as intake: merged with the person it names, routed "
        "to a lead generator. Give an email or a phone. Send an Idempotency-Key to retry "
        "safely."
    ),
    json=schemas.NewLead,
    resp=responds(201, schemas.Lead, 403, 409, 422),
    tag="leads",
)
def create_lead():
    lead_id = lead_service.create_lead(g.membership, g.tenant, request.context.json)
    lead = records.visible_lead_or_404(g.membership, lead_id)
    record = as_json(records.lead_record(lead, g.tenant))
    return record, 201, {"Location": url_for("api.get_lead", lead_id=record["id"])}


@bp.get("/leads/<lead_id>")
@api_call
@operation(
    "getLead",
    _l("Get a lead"),
    _l("One lead, deal or client."),
    resp=responds(200, schemas.Lead, 404),
    tag="leads",
)
def get_lead(lead_id: str):
    lead = records.visible_lead_or_404(g.membership, records.id_or_404("lead", lead_id))
    return as_json(records.lead_record(lead, g.tenant))


@bp.patch("/leads/<lead_id>")
@api_call
@operation(
    "updateLead",
    _l("Update a lead"),
    _l(
        "Record the three conditions (problem, money, decision date) and the value, move "
        "it to a stage, or close it as lost. Moves obey the board's gates: a refused move "
        "answers 409 with the reason. 204 when the change took the lead beyond your "
        "token's view."
    ),
    json=schemas.LeadChange,
    resp=responds(200, schemas.Lead, 403, 404, 409, 422),
    tag="leads",
)
def update_lead(lead_id: str):
    number = records.id_or_404("lead", lead_id)
    lead = lead_service.change_lead(g.membership, number, request.context.json)
    if lead is None:
        return "", 204
    return as_json(records.lead_record(lead, g.tenant))


# --- Clients -----------------------------------------------------------------------------------


@bp.get("/clients")
@api_call
@operation(
    "listClients",
    _l("List clients"),
    _l(
        "Leads in account management, with the next touch and cadence; due_by lists those "
        "due on or before a date."
    ),
    query=schemas.ClientQuery,
    resp=responds(200, schemas.LeadPage, 422),
    tag="clients",
)
def list_clients():
    args = request.context.query
    query = records.leads_query(g.membership, clients_only=True)
    if args.owner_id:
        query = query.where(Lead.owner_id == records.filter_id("user", args.owner_id, "owner_id"))
    if args.due_by:
        query = query.where(Lead.next_touch_on <= args.due_by)
    if args.churned is not None:
        query = query.where(Lead.churned_at.is_not(None) == args.churned)
    rows, cursor = page(query, Lead, "lead", args, Lead.last_activity_at)
    return _page(rows, cursor, lambda lead: records.lead_record(lead, g.tenant))


@bp.get("/clients/<lead_id>")
@api_call
@operation(
    "getClient",
    _l("Get a client"),
    _l("One client (a lead in account management)."),
    resp=responds(200, schemas.Lead, 404),
    tag="clients",
)
def get_client(lead_id: str):
    number = records.id_or_404("lead", lead_id)
    lead = records.visible_lead_or_404(g.membership, number, clients_only=True)
    return as_json(records.lead_record(lead, g.tenant))


# --- People ------------------------------------------------------------------------------------


@bp.get("/people")
@api_call
@operation(
    "listPeople",
    _l("List people"),
    _l("The people behind the leads your token may see."),
    query=schemas.Page,
    resp=responds(200, schemas.PersonPage, 422),
    tag="people",
)
def list_people():
    args = request.context.query
    rows, cursor = page(
        records.people_query(g.membership), Contact, "person", args, Contact.created_at
    )
    return _page(rows, cursor, records.person_record)


@bp.get("/people/<person_id>")
@api_call
@operation(
    "getPerson",
    _l("Get a person"),
    _l("One person behind a lead your token may see."),
    resp=responds(200, schemas.Person, 404),
    tag="people",
)
def get_person(person_id: str):
    number = records.id_or_404("person", person_id)
    contact = db.session.scalar(records.people_query(g.membership).where(Contact.id == number))
    if contact is None:
        records.id_or_404("person", "")
    return as_json(records.person_record(contact))


# --- Stages and sources ------------------------------------------------------------------------


@bp.get("/stages")
@api_call
@operation(
    "listStages",
    _l("List stages"),
    _l("The board's stages in the phases your token works in, in board order."),
    resp=responds(200, schemas.StageList),
    tag="pipeline",
)
def list_stages():
    query = records.stages_query(g.membership).order_by(Stage.position, Stage.id)
    return {
        "data": [records.stage_record(s) for s in db.session.scalars(query)],
        "next_cursor": None,
    }


@bp.get("/sources")
@api_call
@operation(
    "listSources",
    _l("List sources"),
    _l("Where leads come from (for the owner and lead generators)."),
    query=schemas.Page,
    resp=responds(200, schemas.SourcePage, 403, 422),
    tag="pipeline",
)
def list_sources():
    need(g.membership, "sources.manage")
    query = sa.select(Source).where(Source.tenant_id == g.tenant_id)
    rows, cursor = page(query, Source, "source", request.context.query, Source.created_at)
    return _page(rows, cursor, records.source_record)


# --- Touches, promises, conflicts --------------------------------------------------------------


@bp.get("/touches")
@api_call
@operation(
    "listTouches",
    _l("List touches"),
    _l("Calls, messages and meetings logged on the leads your token may see."),
    query=schemas.TouchQuery,
    resp=responds(200, schemas.TouchPage, 422),
    tag="touches",
)
def list_touches():
    args = request.context.query
    query = records.touches_query(g.membership)
    if args.lead_id:
        query = query.where(Touch.lead_id == records.filter_id("lead", args.lead_id, "lead_id"))
    rows, cursor = page(query, Touch, "touch", args, Touch.happened_at)
    return _page(rows, cursor, records.touch_record)


@bp.post("/touches")
@api_call
@idempotent
@operation(
    "logTouch",
    _l("Log a touch"),
    _l("As on the lead's page: for a client it moves the next touch on by the cadence."),
    json=schemas.NewTouch,
    resp=responds(201, schemas.Touch, 403, 404, 422),
    tag="touches",
)
def log_touch():
    body = request.context.json
    lead = records.visible_lead_or_404(
        g.membership, records.filter_id("lead", body.lead_id, "lead_id")
    )
    touch = conveyor.log_touch(
        g.membership, lead, TouchChannel(body.channel), body.outcome, body.note or ""
    )
    return as_json(records.touch_record(touch)), 201


@bp.get("/promises")
@api_call
@operation(
    "listPromises",
    _l("List promises"),
    _l("Promises made to the clients your token may see."),
    query=schemas.PromiseQuery,
    resp=responds(200, schemas.PromisePage, 422),
    tag="promises",
)
def list_promises():
    args = request.context.query
    query = records.promises_query(g.membership)
    if args.lead_id:
        query = query.where(Promise.lead_id == records.filter_id("lead", args.lead_id, "lead_id"))
    if args.status:
        query = query.where(Promise.status == args.status)
    updated = sa.func.coalesce(Promise.decided_at, Promise.created_at)
    rows, cursor = page(query, Promise, "promise", args, updated)
    return _page(rows, cursor, records.promise_record)


@bp.get("/conflicts")
@api_call
@operation(
    "listConflicts",
    _l("List conflicts"),
    _l("Problems between stages, for tokens with the owner's walls."),
    query=schemas.ConflictQuery,
    resp=responds(200, schemas.ConflictPage, 403, 422),
    tag="conflicts",
)
def list_conflicts():
    need(g.membership, "radar.view")
    args = request.context.query
    query = sa.select(Conflict).where(Conflict.tenant_id == g.tenant_id)
    if args.status:
        query = query.where(Conflict.status == args.status)
    if args.kind:
        query = query.where(Conflict.kind == args.kind)
    updated = sa.func.coalesce(Conflict.resolved_at, Conflict.created_at)
    rows, cursor = page(query, Conflict, "conflict", args, updated)
    return _page(rows, cursor, records.conflict_record)


# --- The document and its page -----------------------------------------------------------------


@bp.get("/openapi.json")
@limiter.exempt
def openapi():
    return jsonify(document())


@bp.get("/docs")
@limiter.exempt
def docs():
    return render_template("api/docs.html", document=document(), ids=ids)


for _view in (create_lead, update_lead, log_touch):
    csrf.exempt(_view)
