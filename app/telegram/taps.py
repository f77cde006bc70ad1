"""A tap on a reminder's button, or a reply to it: acted on as that member, within the
same walls as the web (a closer only on their deals, an account manager only on their
clients), through the same services the web uses."""

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from app.auth.services import preferred_locale
from app.conveyor import services as conveyor
from app.extensions import db
from app.formatting import format_date
from app.mail import external_url
from app.models import (
    Channel,
    Conflict,
    Lead,
    Membership,
    MessageKind,
    OutboxMessage,
    Phase,
    Source,
    Tenant,
    TouchChannel,
    User,
)
from app.policy import allows, may_see_lead
from app.sources import services as sources
from app.telegram import bot_api, linking
from app.telegram.linking import sender_locale
from app.telegram.messages import (
    CALLED,
    PAUSE,
    REMINDER_KINDS,
    TOMORROW,
    WROTE,
    open_button,
)
from app.tenancy import ALL_TENANTS, tenant_scope


def _sent_row(user: User, **where) -> OutboxMessage | None:
    """A Telegram message the bot sent this person (never anyone else's)."""
    query = sa.select(OutboxMessage).where(
        OutboxMessage.user_id == user.id, OutboxMessage.channel == Channel.TELEGRAM
    )
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return db.session.scalar(query.execution_options(**ALL_TENANTS))


def _seat(row: OutboxMessage) -> Membership | None:
    membership = db.session.scalar(
        sa.select(Membership)
        .where(Membership.tenant_id == row.tenant_id, Membership.user_id == row.user_id)
        .execution_options(**ALL_TENANTS)
    )
    return membership if membership is not None and membership.active else None


def _lead_within_walls(membership: Membership, row: OutboxMessage) -> Lead | None:
    """The reminder's deal or client, if the member may still work on it (as on the web)."""
    if row.kind not in REMINDER_KINDS or not allows(membership, "board.view"):
        return None
    lead = db.session.scalar(
        sa.select(Lead).where(Lead.id == row.subject_id, Lead.tenant_id == row.tenant_id)
    )
    if lead is None or not may_see_lead(membership, lead, lead.stage):
        return None
    return lead


def on_callback(query: dict, now: datetime) -> None:
    message = query.get("message") or {}
    chat_id = (message.get("chat") or {}).get("id")
    user = linking.linked_user(chat_id) if chat_id else None
    if user is None:
        with force_locale(sender_locale(query.get("from") or {})):
            _answer(query["id"], _("This chat is not linked to Conveyor."))
        return
    with force_locale(preferred_locale(user)):
        done = _act(user, str(query.get("data") or ""), now)
        if done is None:
            _answer(query["id"], _("Nothing was done: this is not yours to act on."), alert=True)
            _edit_buttons(chat_id, message.get("message_id"), [])
            return
        text, link = done
        _answer(query["id"], text)
        _edit_text(chat_id, message, text, link)


def _act(user: User, data: str, now: datetime) -> tuple[str, str] | None:
    """Do what the button says; (what was done, the page to open), or None if refused."""
    prefix, _sep, rest = data.partition(":")
    row_id, _sep, action = rest.partition(":")
    if not row_id.isdigit():
        return None
    row = _sent_row(user, id=int(row_id))
    membership = _seat(row) if row is not None else None
    if membership is None:
        return None
    with tenant_scope(row.tenant_id):
        if prefix == "r" and action in (CALLED, WROTE, TOMORROW):
            lead = _lead_within_walls(membership, row)
            return _on_reminder(membership, lead, action, now) if lead else None
        if prefix == "a" and action == PAUSE and row.kind == MessageKind.OWNER_ALERT:
            return _pause_source(membership, row)
    return None


def _on_reminder(membership: Membership, lead: Lead, action: str, now: datetime):
    tenant = db.session.get(Tenant, lead.tenant_id)
    link = external_url("conveyor.lead", lead_id=lead.id)
    if action == TOMORROW:
        tomorrow = conveyor.local_today(tenant) + timedelta(days=1)
        conveyor.schedule_touch(
            membership, lead, datetime.combine(tomorrow, time(tenant.digest_hour))
        )
        return _("I will remind you tomorrow at %(hour)02d:00.", hour=tenant.digest_hour), link
    if action == CALLED:
        conveyor.log_touch(membership, lead, TouchChannel.CALL, _("Called"))
        text = _("Called ✓ — the touch is logged.")
    else:
        conveyor.log_touch(membership, lead, TouchChannel.MESSAGE, _("Wrote"))
        text = _("Wrote ✓ — the touch is logged.")
    if lead.stage.phase == Phase.ACCOUNT and lead.next_touch_on:
        text += " " + _("Next touch on %(date)s.", date=format_date(lead.next_touch_on))
    return text, link


def _pause_source(membership: Membership, row: OutboxMessage):
    """The owner's "Pause source" under a quality alert (the web's wall: sources.manage)."""
    if not (allows(membership, "alerts.receive") and allows(membership, "sources.manage")):
        return None
    conflict = db.session.get(Conflict, row.subject_id)
    if conflict is None or conflict.tenant_id != row.tenant_id or conflict.source_id is None:
        return None
    source = db.session.get(Source, conflict.source_id)
    sources.set_active(source, False)
    link = external_url("radar.conflict", conflict_id=conflict.id)
    return _("%(name)s is paused: its leads are still captured, flagged.", name=source.name), link


def on_reply(user: User, message_id: int, text: str) -> bool:
    """A text reply to a reminder logs a touch with that text as its note."""
    row = _sent_row(user, external_id=str(message_id))
    membership = _seat(row) if row is not None else None
    if membership is None:
        return False
    with tenant_scope(row.tenant_id):
        lead = _lead_within_walls(membership, row)
        if lead is None:
            return False
        conveyor.log_touch(membership, lead, TouchChannel.CALL, _("Noted in Telegram"), text)
    return True


def _answer(callback_id: str, text: str, alert: bool = False) -> None:
    try:
        bot_api.answer_callback(callback_id, text, alert)
    except bot_api.BotApiError as error:
        current_app.logger.warning("telegram: could not answer a tap: %s", error)


def _edit_text(chat_id: int, message: dict, done: str, link: str) -> None:
    """The reminder now says it is done; only "Open" stays under it."""
    try:
        bot_api.edit_message_text(
            chat_id,
            message["message_id"],
            f"{message.get('text', '')}\n\n{done}",
            [[open_button(link)]],
        )
    except (bot_api.BotApiError, KeyError) as error:
        current_app.logger.warning("telegram: could not edit a message: %s", error)


def _edit_buttons(chat_id: int, message_id: int | None, buttons: list) -> None:
    if message_id is None:
        return
    try:
        bot_api.edit_message_buttons(chat_id, message_id, buttons)
    except bot_api.BotApiError as error:
        current_app.logger.warning("telegram: could not edit buttons: %s", error)
