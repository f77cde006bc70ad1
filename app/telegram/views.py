"""The bot's webhook and the Account page's Telegram card (link, unlink, channels).

Without ``TELEGRAM_BOT_TOKEN`` every route here answers 404 and the card is not shown.
"""

import hmac
import json
from functools import wraps

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.extensions import csrf, limiter
from app.htmx import redirect_to
from app.mail import external_url
from app.queue import enqueue
from app.telegram import bot_api, linking, preferences, updates

bp = Blueprint("telegram", __name__, cli_group="telegram")


def bot_on(view):
    """404 while the feature is off (no bot token): the routes are not there."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not bot_api.enabled():
            abort(404)
        return view(*args, **kwargs)

    return wrapped


@bp.route("/telegram/webhook", methods=["POST"])
@csrf.exempt
@limiter.exempt
@bot_on
def webhook():
    """Telegram's POST: the secret header checked in constant time, the update stored
    once per ``update_id`` and answered at once; the worker acts on it."""
    expected = (current_app.config.get("TELEGRAM_WEBHOOK_SECRET") or "").encode()
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
    if not expected or not hmac.compare_digest(given, expected):
        return jsonify(error="forbidden"), 403
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
        return jsonify(error="not an update"), 400
    row_id = updates.receive(payload)
    if row_id is not None:
        try:
            enqueue("app.tasks.telegram.process_update", row_id)
        except Exception:  # noqa: BLE001 - stored; the worker's minute sweep takes it
            current_app.logger.warning("telegram: update %s waits for the sweep", row_id)
    return jsonify(ok=True)


@bp.route("/account/telegram/link", methods=["POST"])
@login_required
@bot_on
def link():
    """A fresh one-time deep link, shown once (its token is stored hashed)."""
    try:
        deep_link = linking.start_link(current_user)
    except bot_api.BotApiError as error:
        current_app.logger.warning("telegram: getMe failed: %s", error)
        flash(_("Telegram does not answer right now. Try again in a minute."), "error")
        return redirect_to(_account_url())
    return render_template(
        "telegram/link.html", deep_link=deep_link, minutes=int(linking.VALID_FOR.seconds / 60)
    )


@bp.route("/account/telegram/unlink", methods=["POST"])
@login_required
@bot_on
def unlink():
    linking.unlink(current_user)
    flash(_("Telegram is unlinked: everything comes by email."), "success")
    return redirect_to(_account_url())


@bp.route("/account/telegram/channels", methods=["POST"])
@login_required
@bot_on
def channels():
    """Email, Telegram or both for each kind of message, in the current workspace."""
    if g.get("membership") is None:
        abort(404)
    preferences.save(g.membership, request.form.to_dict())
    flash(_("Channels saved."), "success")
    return redirect_to(_account_url())


def _account_url() -> str:
    return url_for("auth.account")


@bp.app_context_processor
def _telegram_card() -> dict:
    """``telegram_card()`` for the Account page: None while the feature is off."""

    def card():
        if not bot_api.enabled() or not current_user.is_authenticated:
            return None
        membership = g.get("membership")
        link_row = linking.link_of(current_user)
        stored = preferences.choices(membership.tenant_id, membership.user_id) if membership else {}
        linked = link_row is not None and link_row.active
        topics = preferences.topics_for(membership) if membership else []
        return {
            "link": link_row,
            "topics": [
                (
                    topic,
                    preferences.TOPIC_LABELS[topic],
                    preferences.choice_for(stored, topic, linked),
                )
                for topic in topics
            ],
            "choices": preferences.CHOICE_LABELS,
        }

    return {"telegram_card": card}


@bp.cli.command("set-webhook")
def set_webhook():
    """Point the bot at this deployment's webhook (BASE_URL + /telegram/webhook)."""
    secret = current_app.config.get("TELEGRAM_WEBHOOK_SECRET")
    if not bot_api.enabled() or not secret:
        message = "set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET"
        click.echo(json.dumps({"error": message}), err=True)
        raise SystemExit(1)
    url = external_url("telegram.webhook")
    bot_api.set_webhook(url, secret)
    click.echo(json.dumps({"url": url, "bot": bot_api.bot_username()}))
