"""Language and timezone choice; the formatting helpers (app.formatting) as Jinja filters."""

from datetime import date, datetime

from flask import current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_timezone
from flask_login import current_user

from app.formatting import format_date, format_datetime


def current_language() -> str:
    """The user's choice, then this session's pick, then the workspace's, then the browser's.

    A program calling the API names its language in ``Accept-Language``: that comes first
    there (the seat's own choice is for pages)."""
    languages = current_app.config["LANGUAGES"]
    api = has_request_context() and request.blueprint == "api"
    if api and request.headers.get("Accept-Language"):
        asked = request.accept_languages.best_match(list(languages))
        if asked:
            return asked
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("language") in languages:
        return session["language"]
    tenant = g.get("tenant")
    if tenant is not None and tenant.language in languages:
        return tenant.language
    return request.accept_languages.best_match(list(languages)) or "en"


def current_timezone() -> str:
    tenant = g.get("tenant")
    return tenant.timezone if tenant is not None else "UTC"


def register_template_helpers(app) -> None:
    from app import formatting
    from app.labels import field_label, label, readable_fields

    app.jinja_env.filters.update(
        label=label,
        field_label=field_label,
        iso_date=iso_date,
        iso_moment=iso_moment,
        date=formatting.format_date,
        datetime=formatting.format_datetime,
        day_month=formatting.day_month,
        relative_day=formatting.relative_day,
        number=formatting.number,
        percent=formatting.percent,
        money=formatting.money,
        phone=formatting.phone,
        phone_text=formatting.phone_text,
    )
    app.jinja_env.globals.update(
        money=formatting.money,
        format_date=formatting.format_date,
        format_datetime=formatting.format_datetime,
        on_workspace_today=formatting.on_workspace_today,
        readable_fields=readable_fields,
        get_locale=get_locale,
        get_timezone=get_timezone,
    )


def iso_date(value: str | None) -> str:
    """A date stored as ISO text (in event data), formatted for the reader."""
    if not value:
        return ""
    try:
        return format_date(date.fromisoformat(value))
    except ValueError:
        return value


def iso_moment(value: str | None) -> str:
    """A moment stored as ISO text with its offset (in event data), on the workspace's clock."""
    if not value:
        return ""
    try:
        return format_datetime(datetime.fromisoformat(value))
    except ValueError:
        return value
