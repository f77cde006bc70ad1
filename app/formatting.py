"""One way to show dates, times, numbers and money: in the reader's language and the
workspace's timezone. Templates, emails, Telegram messages and flashes all call these
(registered as Jinja filters and globals); nothing formats a date or an amount by hand.
"""

from datetime import date, datetime
from functools import lru_cache

import phonenumbers
from babel import Locale
from babel.dates import get_date_format, get_datetime_format, get_time_format
from babel.numbers import NumberPattern, parse_pattern
from flask import g
from flask_babel import format_currency, format_decimal, format_percent, get_locale, ngettext
from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app import clock
from app.money import precision, to_major


def _date_pattern() -> str:
    """The locale's medium date without Russian's trailing "г." ("6 дек. 2026"), so a
    sentence ending in a date never ends in two stops."""
    pattern = get_date_format("medium", locale=get_locale()).pattern
    return pattern.replace(" 'г'.", "").replace("'г'.", "").strip()


def format_date(value: date | datetime | None, style: str | None = None) -> str:
    """A calendar date: "Dec 6, 2026", "6 дек. 2026". ``style`` may be a Babel pattern
    such as "LLLL yyyy" for a month heading; the short and medium styles are one style."""
    if value is None:
        return ""
    pattern = style if style and style not in {"short", "medium"} else _date_pattern()
    return babel_format_date(value, pattern)


def format_datetime(value: datetime | None, style: str | None = None) -> str:
    """A moment on the workspace's clock: "Dec 6, 2026, 2:46 AM", "6 дек. 2026, 02:46"."""
    if value is None:
        return ""
    locale = get_locale()
    time_pattern = get_time_format("short", locale=locale).pattern
    pattern = (
        str(get_datetime_format("medium", locale=locale))
        .replace("{1}", _date_pattern())
        .replace("{0}", time_pattern)
    )
    return babel_format_datetime(value, pattern)


def day_month(value: date) -> str:
    """A short date for chart axes: "Dec 6", "6 дек."."""
    return babel_format_date(value, "MMM d" if str(get_locale()) == "en" else "d MMM")


RELATIVE = {0: _l("today"), 1: _l("tomorrow"), -1: _l("yesterday")}


def relative_day(value: date | None, today: date | None = None) -> str:
    """How far a date is from the workspace's today: "today", "in 3 days", "2 days ago"."""
    if value is None:
        return ""
    days = (value - (today or workspace_today())).days
    if days in RELATIVE:
        return str(RELATIVE[days])
    if days > 0:
        return ngettext("in %(num)d day", "in %(num)d days", days)
    return ngettext("%(num)d day ago", "%(num)d days ago", -days)


def number(value: float | int | None, digits: int = 0) -> str:
    """A number with the locale's separators and ``digits`` decimals: "1,234.5", "1 234,5"."""
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(round(value, digits), format=pattern)


def percent(share: float | None) -> str:
    """A share (0.3) as the locale writes a percentage: "30%", "30 %"."""
    if share is None:
        return ""
    return format_percent(share)


def workspace_currency() -> str:
    tenant = g.get("tenant")
    return tenant.currency if tenant is not None else "USD"


def money(minor_units: int | None, currency: str | None = None) -> str:
    """Stored minor units in the workspace's currency and the reader's locale, without
    the cents when an amount is whole: "£1,250", "1 250,50 ₽"."""
    if minor_units is None:
        return ""
    code = (currency or workspace_currency()).upper()
    amount = to_major(minor_units, code)
    if precision(code) and amount == amount.to_integral_value():
        locale = get_locale()
        return _whole_amounts(locale).apply(amount, locale, currency=code, currency_digits=False)
    return format_currency(amount, code)


@lru_cache(maxsize=64)
def _whole_amounts(locale: Locale) -> NumberPattern:
    """The locale's currency pattern without its cents, parsed once (a board shows
    hundreds of amounts)."""
    return parse_pattern(locale.currency_formats["standard"].pattern.replace(".00", ""))


def workspace_today() -> date:
    """Today on the wall clock of the workspace being served."""
    tenant = g.get("tenant")
    return clock.workspace_today(tenant) if tenant is not None else clock.today("UTC")


def on_workspace_today(moment: datetime | None) -> bool:
    """True when a moment fell on the workspace's today (a card "touched today")."""
    tenant = g.get("tenant")
    zone = tenant.timezone if tenant is not None else "UTC"
    return moment is not None and clock.today(zone, moment) == workspace_today()


def _phone_number(value: str) -> phonenumbers.PhoneNumber | None:
    tenant = g.get("tenant")
    try:
        number = phonenumbers.parse(value, tenant.country if tenant is not None else None)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def phone_text(value: str | None, international: bool = False) -> str:
    """A stored number as people write it: in the national format of the workspace's
    country ("020 7946 0018", "8 (912) 345-67-89"), in the international one when it
    belongs to another country ("+7 912 345-67-89") or when ``international`` is asked
    (a chat app turns only those into a tap to call). What is no number stays as written."""
    if not value:
        return ""
    number = _phone_number(value)
    if number is None:
        return value
    tenant = g.get("tenant")
    home = phonenumbers.country_code_for_region(tenant.country) if tenant is not None else None
    national = not international and number.country_code == home
    style = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(number, style.NATIONAL if national else style.INTERNATIONAL)


def phone(value: str | None) -> Markup:
    """A number to tap: ``<a href="tel:+E164">`` around :func:`phone_text`."""
    if not value:
        return Markup("")
    number = _phone_number(value)
    if number is None:
        return escape(value)
    dial = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Markup('<a href="tel:{}" class="phone">{}</a>').format(dial, phone_text(value))
