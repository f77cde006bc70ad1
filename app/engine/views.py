"""Unsubscribing (one-click POST; a GET only asks), the bell, and failed deliveries."""

import sqlalchemy as sa
from flask import abort, g, render_template
from flask_login import current_user

from app import clock
from app.engine import bp, content
from app.extensions import csrf, db, limiter
from app.htmx import render
from app.models import MessageStatus, Notification, OutboxMessage
from app.policy import requires


@bp.route("/unsubscribe/<token>", methods=["GET"])
def unsubscribe(token: str):
    """Mail scanners follow links: a GET only shows the button."""
    if content.read_unsubscribe_token(token) is None:
        abort(404)
    return render_template("engine/unsubscribe.html", done=False)


@bp.route("/unsubscribe/<token>", methods=["POST"])
@csrf.exempt
@limiter.limit("30/minute")
def unsubscribe_now(token: str):
    """RFC 8058 one-click: the mail client posts, the member stops getting engine mail."""
    if content.unsubscribe(token) is None:
        abort(404)
    return render_template("engine/unsubscribe.html", done=True)


def _unread_count() -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(
            Notification.tenant_id == g.tenant.id,
            Notification.user_id == current_user.id,
            Notification.read_at.is_(None),
        )
    )


@bp.route("/notifications/bell")
@requires("workspace.view")
def bell():
    return render("engine/_bell.html", unread=_unread_count())


@bp.route("/notifications")
@requires("workspace.view")
def notifications():
    rows = list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.tenant_id == g.tenant.id, Notification.user_id == current_user.id)
            .order_by(Notification.created_at.desc())
            .limit(100)
        )
    )
    page = render("engine/notifications.html", notifications=rows)
    for row in rows:
        row.read_at = row.read_at or clock.now()
    db.session.commit()
    return page


@bp.route("/outbox")
@requires("team.manage")
def outbox():
    failed = list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == g.tenant.id, OutboxMessage.status == MessageStatus.FAILED
            )
            .order_by(OutboxMessage.created_at.desc())
            .limit(200)
        )
    )
    return render("engine/outbox.html", failed=failed)
