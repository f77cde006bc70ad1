"""Words for stored codes (statuses, reasons, channels, posted field names), so pages
never show raw values."""

import json
from datetime import date

from flask_babel import lazy_gettext as _l

from app.formatting import format_date

LABELS = {
    "role": {
        "owner": _l("Owner"),
        "lead_generator": _l("Lead generator"),
        "closer": _l("Closer"),
        "account_manager": _l("Account manager"),
    },
    "lost_reason": {
        "no_problem": _l("No problem to solve"),
        "no_money": _l("No money"),
        "bad_timing": _l("Bad timing"),
        "unreachable": _l("Unreachable"),
        "junk": _l("Junk or fake"),
        "competitor": _l("Chose a competitor"),
        "other": _l("Other"),
    },
    "churn_reason": {
        "no_longer_needed": _l("No longer needs it"),
        "price": _l("The price"),
        "competitor": _l("Went to a competitor"),
        "service": _l("Unhappy with the service"),
        "closed": _l("Closed or moved away"),
        "other": _l("Other"),
    },
    "channel": {
        "call": _l("Call"),
        "message": _l("Message"),
        "email": _l("Email"),
        "meeting": _l("Meeting"),
        "visit": _l("Visit"),
    },
    "promise_status": {
        "pending": _l("waiting"),
        "accepted": _l("accepted"),
        "flagged": _l("flagged"),
    },
    # What a sender may post (app.intake.fields.KNOWN_FIELDS), as a person calls it.
    "post_field": {
        "name": _l("Name"),
        "email": _l("Email"),
        "phone": _l("Phone"),
        "company": _l("Company"),
        "message": _l("Message"),
        "external_id": _l("Sender's reference"),
        "decision_date": _l("Decision date"),
        "budget": _l("Budget"),
        "utm_source": _l("Campaign source"),
        "utm_medium": _l("Campaign medium"),
        "utm_campaign": _l("Campaign"),
        "utm_term": _l("Campaign keyword"),
        "utm_content": _l("Campaign ad"),
    },
    "person_field": {
        "name": _l("name"),
        "email": _l("email"),
        "phone": _l("phone"),
        "company": _l("company"),
    },
    "inbox_status": {
        "received": _l("received"),
        "pending": _l("waiting to become a lead"),
        "accepted": _l("accepted"),
        "duplicate": _l("duplicate"),
        "rejected": _l("rejected"),
        "spam": _l("spam"),
    },
    "message_kind": {
        "digest": _l("Morning digest"),
        "touch_due": _l("Touch reminder"),
        "decision_window": _l("Decision-window reminder"),
        "touch_scheduled": _l("Planned touch"),
    },
    "conflict_kind": {
        "source_quality": _l("Lead quality dropped"),
        "promise_flagged": _l("Promise flagged by the account manager"),
        "promise_beyond_authority": _l("Promise beyond the closer's authority"),
        "cadence_missed": _l("Client missed their cadence"),
        "lead_untouched": _l("New lead untouched for 24 hours"),
    },
    "conflict_status": {
        "open": _l("open"),
        "acknowledged": _l("acknowledged"),
        "resolved": _l("resolved"),
    },
}


def label(value, kind: str) -> str:
    """The translated word for a stored code; the code itself if it has none."""
    if value is None:
        return ""
    code = getattr(value, "value", value)
    return str(LABELS[kind].get(code, code))


def field_label(name: str) -> str:
    """A posted field as a person calls it: "Campaign source" for ``utm_source``; a field
    the sender named itself reads as its name in words ("delivery_city": "Delivery city")."""
    known = LABELS["post_field"].get(name)
    if known is not None:
        return str(known)
    words = " ".join(name.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:] if words else name


def readable_fields(fields: dict | None) -> list[tuple[str, str]]:
    """A post's fields as (label, value) lines: known fields first in their usual order,
    then the sender's own; empty ones left out, dates in the reader's format, and values
    the sender nested (JSON) written out as words, never as braces."""
    fields = dict(fields or {})
    extra = fields.pop("extra", None) or {}
    known = LABELS["post_field"]
    lines = [(name, fields[name]) for name in known if fields.get(name)]
    lines += [(name, value) for name, value in fields.items() if name not in known and value]
    lines += [(name, value) for name, value in extra.items() if value not in ("", None)]
    return [(field_label(name), _readable(name, value)) for name, value in lines]


def _readable(name: str, value) -> str:
    if name == "decision_date" and isinstance(value, str):
        try:
            return format_date(date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return _flat(value)


def _flat(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{field_label(str(k))}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(value)
