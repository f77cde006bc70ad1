"""Reading a sender's body into lead fields, and judging them.

Everything here is pure: bytes and strings in, fields and errors out.
"""

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import parse_form_data

MAX_BODY_BYTES = 64 * 1024
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
KNOWN_FIELDS = (
    "name",
    "email",
    "phone",
    "company",
    "message",
    "external_id",
    "decision_date",
    "budget",
    *UTM_FIELDS,
)
FIELD_LIMITS = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "company": 200,
    "message": 5000,
    "external_id": 200,
    "budget": 200,
}
# Fields of the embeddable form that steer intake and are not lead data.
FORM_CONTROL_FIELDS = ("_hp", "_ts", "_submission", "_form")
ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


class UnparseableBody(ValueError):
    """The body does not parse as its content type says."""


@dataclass
class Judgement:
    fields: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    decision_date: date | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def media_type(content_type: str) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(body: bytes, content_type: str) -> dict:
    """A flat dict of strings (first value wins) from a JSON object or a form body."""
    kind = media_type(content_type)
    if kind == "application/json":
        try:
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict):
                raise UnparseableBody("the JSON body must be an object")
            return {_clean(str(key)): _as_text(value) for key, value in data.items()}
        except (ValueError, RecursionError) as error:  # JSON, Unicode and digit-limit errors
            raise UnparseableBody(str(error)[:200] or type(error).__name__) from error
    if kind == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnparseableBody(str(error)) from error
        pairs = parse_qsl(text, keep_blank_values=True)
        return _first_values(MultiDict(pairs))
    if kind == "multipart/form-data":
        environ = {
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": content_type,
            "REQUEST_METHOD": "POST",
        }
        try:
            _, form, _files = parse_form_data(environ, silent=False)
        except ValueError as error:
            raise UnparseableBody(str(error)) from error
        return _first_values(form)
    raise UnparseableBody(f"unsupported content type {kind!r}")


def _first_values(multi: MultiDict) -> dict:
    return {_clean(key or ""): _clean(multi.get(key) or "") for key in multi}


def _clean(text: str) -> str:
    """What a text column can store; the raw body keeps the original.

    PostgreSQL refuses NUL, and a lone surrogate (JSON may escape one: ``"\\ud800"``)
    cannot be encoded at all: it becomes "?".
    """
    text = text.replace("\x00", "")
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return _clean(json.dumps(value, ensure_ascii=False))


def judge(data: dict, default_region: str) -> Judgement:
    """Split known fields from extra data and check what must be right.

    Error messages stay lazy: they are translated (``str``) only when a post is
    rejected, in the language of the request that stores the rejection.
    """
    judgement = Judgement()
    known = {}
    extra = {}
    for key, value in data.items():
        if key in FORM_CONTROL_FIELDS:
            continue
        cleaned = value.strip() if isinstance(value, str) else value
        if key in KNOWN_FIELDS:
            known[key] = cleaned
        else:
            extra[key[:100]] = cleaned[:2000] if isinstance(cleaned, str) else cleaned
    errors = judgement.errors
    for name, limit in FIELD_LIMITS.items():
        if len(known.get(name) or "") > limit:
            errors[name] = _l("Too long: at most %(count)d characters.", count=limit)

    email = known.get("email") or ""
    if email and "email" not in errors:
        try:
            judgement.email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            errors["email"] = _l("This is not a valid email address.")

    phone = known.get("phone") or ""
    if phone and "phone" not in errors:
        judgement.phone = normalise_phone(phone, default_region)
        if judgement.phone is None:
            errors["phone"] = _l("This is not a valid phone number.")

    if not email and not phone:
        errors["contact"] = _l("Give an email or a phone number to reach the person.")

    decision = known.get("decision_date") or ""
    if decision:
        try:
            judgement.decision_date = date.fromisoformat(decision)
        except ValueError:
            errors["decision_date"] = _l("Use an ISO date such as 2026-12-31.")

    judgement.fields = {**known, "extra": extra}
    return judgement


def contact_details(judgement: Judgement) -> str:
    """What makes a repeated idempotency key the same post on a source without signatures:
    a digest of the post's email (normalised, lower-cased) and phone (E.164).

    Written differently, the same address or number is the same; a field given but
    invalid counts as written; an absent field matches only an absent one. The name,
    the company and everything else may differ.
    """
    email = judgement.email or (judgement.fields.get("email") or "")
    phone = judgement.phone or (judgement.fields.get("phone") or "")
    return hashlib.sha256(f"{email}\n{phone}".encode("utf-8", "replace")).hexdigest()


def normalise_phone(raw: str, default_region: str) -> str | None:
    """E.164 form of a phone number, or None when it is not a possible number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None
