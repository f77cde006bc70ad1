"""Rendering and delivering email.

Every message has a text and an HTML part rendered in the recipient's language.
Production sends over SMTP (configured with Flask-Mail's setting names);
development without ``MAIL_SERVER`` writes each message to ``instance/outbox``
where ``/dev/outbox`` shows it.
"""

import os
import re
import smtplib
import time
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app, has_request_context, render_template, url_for
from flask_babel import force_locale

# Long lines are allowed up to RFC 5322's hard limit: folding a long non-ASCII
# subject with Python's default policy loses the space at the fold.
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)


# Line breaks of every kind (and other control characters) that may hide in a name
# someone else typed: a lead's, a source's, a workspace's.
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def header_value(value: str) -> str:
    """One header line: any run of line breaks or control characters becomes a space.

    Every header goes through here, so a name like ``"Eve\\rBcc: x@y"`` stays text
    in the subject instead of adding a header or failing the message for good.
    """
    return _HEADER_BREAKS.sub(" ", str(value)).strip()


def external_url(endpoint: str, **values) -> str:
    """An absolute link into the app built from ``BASE_URL`` (in requests and in jobs).

    Inside a request the path comes from the request's own URL map adapter: pushing
    a second request context here would run teardown hooks that clear ``g``.
    """
    base_url = current_app.config["BASE_URL"]
    if has_request_context():
        return base_url + url_for(endpoint, **values)
    with current_app.test_request_context(base_url=base_url):
        return url_for(endpoint, _external=True, **values)


def render_email(template: str, locale: str, **context) -> tuple[str, str, str]:
    """Render ``emails/<template>.txt`` and ``.html``; the first text line is the subject."""
    with force_locale(locale):
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n"), html


def build_message(to: str, subject: str, text: str, html: str, headers: dict) -> EmailMessage:
    config = current_app.config
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = header_value(config["MAIL_DEFAULT_SENDER"])
    message["To"] = header_value(to)
    message["Subject"] = header_value(subject)
    # A caller may fix the Message-ID (a retried outbox row keeps its own), so that a
    # message sent twice after a crash is recognisably the same message.
    message["Message-ID"] = header_value(headers.get("Message-ID") or make_msgid(domain="conveyor"))
    for name, value in headers.items():
        if name != "Message-ID":
            message[name] = header_value(value)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_email(to: str, template: str, locale: str, headers: dict | None = None, **context):
    """Render and deliver one message now (call from a worker job)."""
    subject, text, html = render_email(template, locale, **context)
    message = build_message(to, subject, text, html, headers or {})
    if current_app.config["MAIL_TRANSPORT"] == "outbox":
        _write_to_outbox(message)
    else:
        _send_over_smtp(message)
    return message


def _send_over_smtp(message: EmailMessage) -> None:
    config = current_app.config
    smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)


def _write_to_outbox(message: EmailMessage) -> None:
    folder = current_app.config["MAIL_OUTBOX_DIR"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{time.time_ns()}.eml"), "wb") as handle:
        handle.write(message.as_bytes())
