"""The few Bot API methods Conveyor calls, over plain HTTPS with ``requests``.

Why not a client library: the app is synchronous Flask + RQ and needs six methods, a
configurable address (``TELEGRAM_API_BASE``, the tests' stand-in) and Telegram's
answers turned into the outbox's decisions — 429 with ``retry_after`` and 403 for a
blocked bot. pyTelegramBotAPI would bring polling, handler registries and threads we do
not use, and hide those answers behind its own exceptions; ``requests`` is already here
(the Stripe library uses it).
"""

from datetime import timedelta

import requests
from flask import current_app

TIMEOUT_SECONDS = 10
_bot_usernames: dict[tuple[str, str], str] = {}


class BotApiError(Exception):
    """Telegram answered ``ok: false`` (or not at all)."""

    def __init__(self, status: int, description: str):
        super().__init__(f"Telegram {status}: {description}")
        self.status = status
        self.description = description


class FloodControl(BotApiError):
    """429: Telegram asks us to wait ``retry_after`` before sending again."""

    def __init__(self, status: int, description: str, retry_after: int):
        super().__init__(status, description)
        self.retry_after = timedelta(seconds=max(1, retry_after))


class Blocked(BotApiError):
    """403: the person blocked the bot (or deleted the chat); nothing more can go there."""


def enabled() -> bool:
    """The feature is on only with a bot token; without it Telegram is invisible."""
    return bool(current_app.config.get("TELEGRAM_BOT_TOKEN"))


def call(method: str, **params) -> dict | bool:
    """Call a Bot API method with a JSON body; returns its ``result``."""
    config = current_app.config
    url = f"{config['TELEGRAM_API_BASE']}/bot{config['TELEGRAM_BOT_TOKEN']}/{method}"
    try:
        response = requests.post(url, json=params, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise BotApiError(0, type(error).__name__) from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.ok and body.get("ok"):
        return body["result"]
    description = str(body.get("description") or response.reason)[:300]
    if response.status_code == 429:
        retry_after = (body.get("parameters") or {}).get("retry_after", 30)
        raise FloodControl(429, description, int(retry_after))
    if response.status_code == 403:
        raise Blocked(403, description)
    raise BotApiError(response.status_code, description)


def bot_username() -> str:
    """The bot's @username from getMe, asked once per process and token."""
    config = current_app.config
    key = (config["TELEGRAM_API_BASE"], config["TELEGRAM_BOT_TOKEN"])
    if key not in _bot_usernames:
        _bot_usernames[key] = call("getMe")["username"]
    return _bot_usernames[key]


def send_message(chat_id: int, text: str, buttons: list | None = None) -> dict:
    params = {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}
    if buttons:
        params["reply_markup"] = {"inline_keyboard": buttons}
    return call("sendMessage", **params)


def edit_message_text(chat_id: int, message_id: int, text: str, buttons: list | None = None):
    params = {"chat_id": chat_id, "message_id": message_id, "text": text}
    params["reply_markup"] = {"inline_keyboard": buttons or []}
    return call("editMessageText", **params)


def edit_message_buttons(chat_id: int, message_id: int, buttons: list | None = None):
    return call(
        "editMessageReplyMarkup",
        chat_id=chat_id,
        message_id=message_id,
        reply_markup={"inline_keyboard": buttons or []},
    )


def answer_callback(callback_query_id: str, text: str = "", alert: bool = False):
    return call(
        "answerCallbackQuery", callback_query_id=callback_query_id, text=text, show_alert=alert
    )


def set_webhook(url: str, secret_token: str) -> bool:
    return call(
        "setWebhook",
        url=url,
        secret_token=secret_token,
        allowed_updates=["message", "callback_query"],
    )
