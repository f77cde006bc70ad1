"""Where a business is, and what follows from it: its currency, its timezone and how its
phone numbers are written. Signup asks for the country (guessed from the browser);
everything else is derived here, once."""

import os
from functools import cache
from zoneinfo import available_timezones

import tzdata
from babel import Locale
from babel.core import get_global
from babel.numbers import get_territory_currencies

from app import clock

# Where a country has several zones, the one most of its businesses keep.
MAIN_TIMEZONE = {
    "RU": "Europe/Moscow",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "KZ": "Asia/Almaty",
    "MX": "America/Mexico_City",
    "UA": "Europe/Kyiv",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "DE": "Europe/Berlin",
    "CN": "Asia/Shanghai",
    "ID": "Asia/Jakarta",
    "AR": "America/Argentina/Buenos_Aires",
    "NZ": "Pacific/Auckland",
    "CL": "America/Santiago",
    "MY": "Asia/Kuala_Lumpur",
    "UZ": "Asia/Tashkent",
}
FALLBACK_COUNTRY = "US"


@cache
def _zones_by_country() -> dict[str, list[str]]:
    """Each country's zones from the tz database's zone.tab, in its order."""
    zones: dict[str, list[str]] = {}
    path = os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo", "zone.tab")
    with open(path, encoding="utf-8") as table:
        for line in table:
            if line.startswith("#") or not line.strip():
                continue
            country, _, zone = line.split("\t")[:3]
            zones.setdefault(country, []).append(zone.strip())
    return zones


def countries() -> list[str]:
    """Every country with a timezone and a currency, as ISO codes."""
    return sorted(code for code in _zones_by_country() if currency_for(code, None))


def country_names(locale: str) -> list[tuple[str, str]]:
    """(code, name in the reader's language), sorted by name."""
    names = Locale.parse(locale).territories
    return sorted(((c, names.get(c, c)) for c in countries()), key=lambda pair: pair[1])


def currency_for(country: str, default: str | None = "USD") -> str | None:
    """The legal tender a business in ``country`` most likely prices in today."""
    found = get_territory_currencies(country, start_date=clock.today("UTC"), tender=True)
    return found[0] if found else default


def timezones_of(country: str) -> list[str]:
    return _zones_by_country().get(country, [])


def zone_countries() -> dict[str, str]:
    """Every zone people live in (the tz database's zone.tab), with its country."""
    return {zone: country for country, zones in _zones_by_country().items() for zone in zones}


def timezone_for(country: str, browser_timezone: str | None = None) -> str:
    """The browser's zone when it lies in ``country``; else the country's main zone."""
    zones = timezones_of(country)
    if browser_timezone in zones:
        return browser_timezone
    return MAIN_TIMEZONE.get(country) or (zones[0] if zones else "UTC")


def country_from_languages(tags: list[str]) -> str:
    """The country a browser's languages point at: "en-GB" → GB, "ru" → RU."""
    likely = get_global("likely_subtags")
    for tag in tags:
        parts = tag.replace("-", "_").split("_")
        region = next((p.upper() for p in parts[1:] if len(p) == 2 and p.isalpha()), None)
        if region is None:
            region = (likely.get(parts[0].lower()) or "").split("_")[-1]
        if region in _zones_by_country():
            return region
    return FALLBACK_COUNTRY


def is_timezone(name: str | None) -> bool:
    return bool(name) and name in available_timezones()
