"""The public intake endpoint (its secret URL names the source) and the hosted form."""

import secrets

from flask import current_app, g, jsonify, redirect, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from app.extensions import csrf, db, limiter
from app.intake import bp, services
from app.intake.fields import MAX_BODY_BYTES
from app.models import InboxStatus


def _read_body() -> tuple[bytes, bool]:
    """At most 64 KB of the body, and whether there was more.

    A body declared larger than the server takes (``MAX_CONTENT_LENGTH``) is refused by
    Werkzeug before it is read; its first 64 KB are still the inbox's trace of it.
    """
    try:
        stream = request.stream
    except RequestEntityTooLarge:
        stream = get_input_stream(request.environ, max_content_length=None)
    body = stream.read(MAX_BODY_BYTES + 1)
    return body[:MAX_BODY_BYTES], len(body) > MAX_BODY_BYTES


def _unavailable():
    db.session.rollback()
    current_app.logger.exception("intake could not store a post")
    response = jsonify({"error": "temporarily unavailable, retry later"})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def _unknown_address():
    return jsonify({"error": "unknown intake address"}), 404


@limiter.request_filter
def _counted_by_intake() -> bool:
    """Posts are counted per source by intake itself (``services.seconds_until_allowed``)
    and exempt from the address-wide limits: the limiter skips them before resolving any."""
    return request.endpoint == "intake.receive"


@bp.route("/in/<token>", methods=["POST"])
@csrf.exempt
@limiter.exempt
def receive(token: str):
    try:
        source = services.find_source(token)
        if source is None:
            return _unknown_address()
        body, truncated = _read_body()
        content_type = request.headers.get("Content-Type", "")
        wait = services.seconds_until_allowed(source.id, source.rate_limit_per_minute)
        if wait is not None:
            result = services.record_rate_limited(
                source, body, content_type, request.headers, truncated
            )
        else:
            result = services.receive(source, body, content_type, request.headers, truncated)
    except SQLAlchemyError:
        return _unavailable()
    if result.from_form:
        return _form_answer(source, result)
    response = jsonify(result.payload)
    response.status_code = result.http_status
    if result.http_status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


def _form_answer(source, result):
    """People posting the embeddable form get a page (or the owner's thank-you URL)."""
    if result.item.status in (InboxStatus.PENDING, InboxStatus.DUPLICATE, InboxStatus.SPAM):
        if source.thank_you_url:
            return redirect(source.thank_you_url, code=303)
        return _frameable(render_template("intake/thanks.html"), 200)
    errors = result.payload.get("fields", {})
    return _frameable(render_template("intake/form_error.html", errors=errors), result.http_status)


def _frameable(html: str, status: int):
    """Form pages may be shown in a frame on the customer's own site."""
    response = current_app.make_response((html, status))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; form-action 'self' https: http:; "
        "frame-ancestors *; object-src 'none'; base-uri 'none'"
    )
    g.frameable = True
    return response


@bp.route("/in/<token>/form", methods=["GET"])
@limiter.limit("120/minute")
def hosted_form(token: str):
    """A ready form page for sites that link to or frame it (no JavaScript needed)."""
    source = services.find_source(token)
    if source is None:
        return _unknown_address()
    submission = secrets.token_urlsafe(16)
    html = render_template(
        "intake/hosted_form.html",
        source=source,
        token=token,
        timestamp=services.form_timestamp_token(submission),
        submission=submission,
    )
    return _frameable(html, 200)
