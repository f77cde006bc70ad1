"""Errors as ``application/problem+json`` (RFC 9457), in the caller's language.

Every refusal of the API comes through ``problem``: a status, a title, a detail and,
for a body that does not validate, ``errors`` with one entry per field.
"""

from flask import Response, current_app, json
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException


class Problem(HTTPException):
    """Raised anywhere in an API view; answered as a problem document."""

    def __init__(self, status: int, detail: str, errors: dict | None = None, headers=None):
        super().__init__(description=detail)
        self.code = status
        self.detail = detail
        self.errors = errors
        self.extra_headers = headers or {}

    def get_response(self, environ=None, scope=None) -> Response:
        return problem(self.code, self.detail, self.errors, self.extra_headers)


def _titles() -> dict[int, str]:
    return {
        400: _("Bad request"),
        401: _("Not authenticated"),
        402: _("Payment required"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Too large"),
        415: _("Unsupported media type"),
        422: _("Invalid request"),
        429: _("Too many requests"),
        500: _("Server error"),
    }


SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    402: "read-only-workspace",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "rate-limited",
    500: "server-error",
}


def problem(status: int, detail: str | None = None, errors: dict | None = None, headers=None):
    slug = SLUGS.get(status, "error")
    body = {
        "type": f"{current_app.config['BASE_URL']}/api/v1/docs#problem-{slug}",
        "title": _titles().get(status, _("Error")),
        "status": status,
    }
    if detail:
        body["detail"] = str(detail)
    if errors:
        body["errors"] = {name: [str(m) for m in messages] for name, messages in errors.items()}
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_http_error(error: HTTPException) -> Response:
    """Werkzeug's own errors (404 from a lookup, 405 from routing) as problems."""
    if isinstance(error, Problem):
        return error.get_response()
    details = {
        404: _("There is nothing here, or your token may not see it."),
        405: _("This address does not accept that method."),
        413: _("The request body is too large."),
    }
    response = problem(error.code or 500, details.get(error.code))
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def from_validation(errors: list[dict]) -> Response:
    """Pydantic's errors as field errors: ``{"decision_date": ["..."]}``."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        fields.setdefault(".".join(location) or "body", []).append(error.get("msg", ""))
    return problem(422, _("Some fields are not valid."), fields)
