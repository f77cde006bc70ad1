"""Rendering and delivering email.

Every message has a text and an HTML part rendered in the recipient's language.
Production sends over SMTP (Flask-Mail's settings); development without
``MAIL_SERVER`` writes each message to ``instance/outbox`` where ``/dev/outbox``
shows it.
"""

import os
import time
from email import policy
from email.message import EmailMessage

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_mail import Message

from app.extensions import mail


def external_url(endpoint: str, **values) -> str:
    """An absolute link into the app built from ``BASE_URL`` (works in jobs too)."""
    base_url = current_app.config["BASE_URL"]
    with current_app.test_request_context(base_url=base_url):
        return url_for(endpoint, _external=True, **values)


def render_email(template: str, locale: str, **context) -> tuple[str, str, str]:
    """Render ``emails/<template>.txt`` and ``.html``; the first text line is the subject."""
    with force_locale(locale):
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n"), html


def send_email(to: str, template: str, locale: str, headers: dict | None = None, **context) -> None:
    """Render and deliver one message now (call from a worker job)."""
    subject, text, html = render_email(template, locale, **context)
    if current_app.config["MAIL_TRANSPORT"] == "outbox":
        _write_to_outbox(to, subject, text, html, headers or {})
        return
    message = Message(subject=subject, recipients=[to], body=text, html=html)
    message.extra_headers = headers or {}
    mail.send(message)


def _write_to_outbox(to: str, subject: str, text: str, html: str, headers: dict) -> None:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    folder = current_app.config["MAIL_OUTBOX_DIR"]
    os.makedirs(folder, exist_ok=True)
    name = f"{time.time_ns()}.eml"
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(message.as_bytes())
