"""What each Telegram message says and which buttons it carries, in the member's language.

The digest's figures and whether a reminder still applies come from the engine's email
content (``app.engine.content``): one rule for both channels, said shorter here.
"""

from dataclasses import dataclass

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from app.auth.services import preferred_locale
from app.engine import content
from app.extensions import db
from app.formatting import format_date
from app.labels import label
from app.mail import external_url
from app.models import (
    Conflict,
    ConflictKind,
    Lead,
    Membership,
    MessageKind,
    OutboxMessage,
    Source,
    Tenant,
    User,
)
from app.tenancy import tenant_scope

REMINDER_KINDS = frozenset(
    {MessageKind.TOUCH_DUE, MessageKind.TOUCH_SCHEDULED, MessageKind.DECISION_WINDOW}
)
# Callback data (at most 64 bytes): "<r|a>:<outbox row id>:<action>".
CALLED, WROTE, TOMORROW, PAUSE = "called", "wrote", "tomorrow", "pause"


@dataclass
class Outgoing:
    text: str
    buttons: list
    locale: str
    notification: str = ""
    link: str = ""
    external_id: str | None = None


def open_button(link: str) -> dict:
    return {"text": _("Open"), "url": link}


def reminder_buttons(row_id: int, link: str) -> list:
    return [
        [
            {"text": _("Called ✓"), "callback_data": f"r:{row_id}:{CALLED}"},
            {"text": _("Wrote ✓"), "callback_data": f"r:{row_id}:{WROTE}"},
        ],
        [
            {"text": _("Tomorrow"), "callback_data": f"r:{row_id}:{TOMORROW}"},
            open_button(link),
        ],
    ]


def compose(
    row: OutboxMessage, tenant: Tenant, membership: Membership, user: User
) -> Outgoing | None:
    """The message for an outbox row, or None when it no longer applies."""
    locale = preferred_locale(user)
    with tenant_scope(tenant.id), force_locale(locale):
        if row.kind == MessageKind.DIGEST:
            return _digest(row, tenant, membership, user, locale)
        if row.kind == MessageKind.OWNER_ALERT:
            return _owner_alert(row, locale)
        return _reminder(row, locale)


def _digest(row, tenant, membership, user, locale) -> Outgoing:
    context = content._digest_context(tenant, membership, row)
    text = render_template("telegram/digest.txt", tenant=tenant, user=user, **context)
    notification = _(
        "Your morning digest for %(date)s is in Telegram.", date=format_date(row.local_date)
    )
    link = context["link"]
    return Outgoing(text.strip(), [[open_button(link)]], locale, notification, link)


def _reminder(row, locale) -> Outgoing | None:
    lead = db.session.get(Lead, row.subject_id)
    if lead is None or not content._still_applies(row, lead):
        return None
    link = external_url("conveyor.lead", lead_id=lead.id)
    name = lead.contact.name
    if row.kind == MessageKind.TOUCH_DUE:
        headline = _("Time to touch %(name)s.", name=name)
    elif row.kind == MessageKind.TOUCH_SCHEDULED:
        headline = _("It is time for the touch you planned with %(name)s.", name=name)
    else:
        headline = _(
            "%(name)s decides around %(date)s: be in touch.",
            name=name,
            date=format_date(lead.decision_date),
        )
    text = render_template("telegram/reminder.txt", headline=headline, lead=lead)
    return Outgoing(text.strip(), reminder_buttons(row.id, link), locale, headline, link)


def _owner_alert(row, locale) -> Outgoing | None:
    conflict = db.session.get(Conflict, row.subject_id)
    if conflict is None or conflict.tenant_id != row.tenant_id:
        return None
    link = external_url("radar.conflict", conflict_id=conflict.id)
    source = db.session.get(Source, conflict.source_id) if conflict.source_id else None
    lead = db.session.get(Lead, conflict.lead_id) if conflict.lead_id else None
    text = render_template(
        "telegram/owner_alert.txt",
        conflict=conflict,
        kind=label(conflict.kind, "conflict_kind"),
        source=source,
        lead=lead,
    )
    buttons = [open_button(link)]
    if conflict.kind == ConflictKind.SOURCE_QUALITY and source is not None and source.active:
        buttons.insert(0, {"text": _("Pause source"), "callback_data": f"a:{row.id}:{PAUSE}"})
    notification = label(conflict.kind, "conflict_kind")
    return Outgoing(text.strip(), [buttons], locale, notification, link)
