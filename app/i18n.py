"""Language and timezone choice, and locale-aware formatting helpers for templates."""

from datetime import date

from flask import current_app, g, request, session
from flask_babel import format_currency, format_date, format_datetime, get_locale, get_timezone
from flask_login import current_user


def current_language() -> str:
    """The user's choice, then this session's pick, then the workspace's, then the browser's."""
    languages = current_app.config["LANGUAGES"]
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


def money(minor_units: int, currency: str | None = None) -> str:
    """Format integer minor units in the workspace currency and locale."""
    tenant = g.get("tenant")
    code = (currency or (tenant.currency if tenant is not None else "USD")).upper()
    return format_currency(minor_units / 100, code)


def iso_date(value: str | None) -> str:
    """A date stored as ISO text (in event data), formatted for the reader."""
    if not value:
        return ""
    try:
        return format_date(date.fromisoformat(value))
    except ValueError:
        return value


def register_template_helpers(app) -> None:
    from app.labels import label

    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["iso_date"] = iso_date
    app.jinja_env.globals.update(
        money=money,
        format_date=format_date,
        format_datetime=format_datetime,
        get_locale=get_locale,
        get_timezone=get_timezone,
    )
