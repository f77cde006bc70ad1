"""What became of a post, in the words an owner reads in the inbox: "Accepted", "Missing
phone or email", "Wrong signature". The HTTP answer the sender got is for whoever wires
the sender, and stays in the post's technical details."""

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.labels import field_label
from app.models import InboxItem, InboxStatus

STATUS_WORDS = {
    InboxStatus.RECEIVED: _l("Received"),
    InboxStatus.PENDING: _l("Accepted"),
    InboxStatus.ACCEPTED: _l("Accepted"),
    InboxStatus.DUPLICATE: _l("Duplicate"),
    InboxStatus.REJECTED: _l("Rejected"),
    InboxStatus.SPAM: _l("Spam"),
}
REASON_WORDS = {
    "too_large": _l("Too large (over 64 KB)"),
    "signature_missing": _l("Missing signature"),
    "signature_bad_timestamp": _l("Wrong signature time"),
    "signature_stale": _l("Signature too old"),
    "signature_mismatch": _l("Wrong signature"),
    "unsupported_type": _l("Neither JSON nor a form"),
    "unparseable": _l("Unreadable post"),
    "not_judged": _l("Unreadable post"),
    "rate_limited": _l("Too many posts a minute"),
    "bot": _l("Spam: a bot filled in the form"),
    "build_failed": _l("Could not become a lead"),
    "reused_key": _l("Accepted; reused key: another post sent it with other contact details"),
}
# Fields intake judges (app.intake.fields.judge); any other field can only be too long.
FIELD_PROBLEMS = {
    "contact": _l("Missing phone or email"),
    "email": _l("Wrong email"),
    "phone": _l("Wrong phone number"),
    "decision_date": _l("Wrong decision date"),
}
# What a refused post that was only counted (app.intake.cap) had been answered.
ANSWER_WORDS = {
    "400": REASON_WORDS["unparseable"],
    "401": REASON_WORDS["signature_mismatch"],
    "413": REASON_WORDS["too_large"],
    "415": REASON_WORDS["unsupported_type"],
    "429": REASON_WORDS["rate_limited"],
}


def field_problems(errors: dict | None) -> list[str]:
    """Each field a post got wrong, named: "Wrong email", "Too long: Message"."""
    return [
        str(FIELD_PROBLEMS[name])
        if name in FIELD_PROBLEMS
        else _("Too long: %(field)s", field=field_label(name))
        for name in (errors or {})
    ]


def verdict(item: InboxItem) -> str:
    """The post's fate in a few words; a rejected post names what was missing or wrong."""
    if item.status == InboxStatus.REJECTED and item.reason == "invalid_fields" and item.errors:
        return "; ".join(field_problems(item.errors))
    if item.reason in REASON_WORDS:
        return str(REASON_WORDS[item.reason])
    return str(STATUS_WORDS.get(item.status, item.status))


def answer_words(http_status: str | int) -> str:
    """A counted refusal by what it was refused for."""
    return str(ANSWER_WORDS.get(str(http_status), STATUS_WORDS[InboxStatus.REJECTED]))
