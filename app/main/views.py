"""Home page, health check, and the development mail outbox."""

import os
from email import message_from_binary_file, policy

from flask import abort, current_app, g, jsonify, render_template, request
from flask_login import current_user

from app import clock
from app.conveyor import today as today_queue
from app.extensions import limiter, login_manager
from app.htmx import render
from app.main import bp, services
from app.main.compliance import cadence_compliance
from app.policy import can, requires
from app.queue import get_redis


@bp.route("/")
@requires("workspace.view")
def dashboard():
    today = clock.workspace_today(g.tenant)
    summary = services.conveyor_summary(g.membership, today)
    compliance = None
    if can("home.compliance"):
        compliance = cadence_compliance(g.tenant, g.membership, today)
    planned = today_queue.planned_touches(g.tenant, g.membership, clock.now())
    return render(
        "main/dashboard.html",
        summary=summary,
        user=current_user,
        compliance=compliance,
        planned=planned,
    )


@bp.route("/healthz")
@limiter.exempt
def healthz():
    database = services.database_ok()
    try:
        redis_ok = bool(get_redis().ping())
    except Exception:
        redis_ok = False
    healthy = database and redis_ok
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok" if database else "down",
        "redis": "ok" if redis_ok else "down",
    }
    return jsonify(body), 200 if healthy else 503


def _outbox_messages() -> list[dict]:
    folder = current_app.config["MAIL_OUTBOX_DIR"]
    if not os.path.isdir(folder):
        return []
    messages = []
    for name in sorted(os.listdir(folder), reverse=True)[:50]:
        with open(os.path.join(folder, name), "rb") as handle:
            message = message_from_binary_file(handle, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        messages.append(
            {
                "to": message["To"],
                "subject": message["Subject"],
                "body": text.get_content() if text else "",
            }
        )
    return messages


LOOPBACK_ADDRESSES = {"127.0.0.1", "::1"}


@bp.route("/dev/outbox")
def dev_outbox():
    """Mail the development server 'sent' (only when mail is kept locally).

    It holds every workspace's reset and invitation links, so it answers only a
    signed-in person browsing from the machine the development server runs on.
    """
    if (
        not current_app.config["DEV_OUTBOX_ROUTE"]
        or current_app.config["MAIL_TRANSPORT"] != "outbox"
        or request.remote_addr not in LOOPBACK_ADDRESSES
    ):
        abort(404)
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return render_template("main/outbox.html", messages=_outbox_messages())
