"""The OpenAPI 3.1 document, generated from the views and their pydantic models.

spectree validates each view's query and body against its models and builds the
document by walking the app's URL map; it is a plugin on the existing Flask app (no
app subclass, no error handlers of its own), so the rest of Conveyor is untouched.
Its own documentation routes are not registered: ``/api/v1/openapi.json`` and the
documentation page are ours, with every summary and description translated.
"""

import copy

from flask import abort
from flask_babel import lazy_gettext as _l
from spectree import Response, SpecTree

from app.api import schemas
from app.api.problems import from_validation

API_VERSION = "1.0.0"
# Summary and description of each operation, by operationId, in the reader's language.
OPERATIONS: dict[str, tuple] = {}


def _refuse_invalid(request, response, error, instance, *_rest) -> None:
    """A query or body that does not validate: a problem document with field errors."""
    if error is not None:
        abort(from_validation(error.errors()))


spec = SpecTree(
    "flask",
    mode="strict",
    path="_spectree",  # its own pages stay unregistered; any prefix but /api/v1 will do
    title="Conveyor API",
    version=API_VERSION,
    before=_refuse_invalid,
    validation_error_status=422,
    validation_error_model=schemas.Problem,
)


def operation(operation_id: str, summary, description, json=None, query=None, resp=None, tag=""):
    """Validate and document a view: its models, and its words in both languages."""
    OPERATIONS[operation_id] = (summary, description, tag)
    return spec.validate(
        json=json,
        query=query,
        resp=resp or Response(HTTP_200=None),
        tags=[tag] if tag else (),
        operation_id=operation_id,
        security={"token": []},
    )


def _errors(*codes: int) -> dict:
    return {f"HTTP_{code}": schemas.Problem for code in codes}


def responds(ok_status: int, model=None, *errors: int) -> Response:
    return Response(**{f"HTTP_{ok_status}": model}, **_errors(401, 429, *errors))


TAGS = {
    "leads": _l("Leads and deals: one record from first contact to client."),
    "people": _l("The people behind leads."),
    "clients": _l("Leads in account management: next touch and cadence."),
    "touches": _l("Calls, messages and meetings."),
    "promises": _l("Promises made when a deal was won."),
    "conflicts": _l("Problems between stages (the owner's)."),
    "pipeline": _l("Stages and sources."),
}


def document() -> dict:
    """The document in the current language (the structure is built once and cached)."""
    built = copy.deepcopy(spec.spec)
    built["info"]["description"] = str(
        _l(
            "Conveyor's REST API. Authenticate with a token from Settings → API and webhooks: "
            "Authorization: Bearer <token>. Lists are paged with cursor and limit; every "
            "create takes an Idempotency-Key header; errors are application/problem+json."
        )
    )
    built["servers"] = [{"url": "/"}]
    built.setdefault("components", {})["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer", "description": str(_l("An API token."))}
    }
    built["tags"] = [{"name": name, "description": str(text)} for name, text in TAGS.items()]
    for methods in built["paths"].values():
        for details in methods.values():
            summary, description, _tag = OPERATIONS[details["operationId"]]
            details["summary"] = str(summary)
            details["description"] = str(description)
    return built
