"""The timezone picker: every zone named by its city, country and UTC offset in the
reader's language ("London, United Kingdom · UTC+0", "Москва, Россия · UTC+3"), and read
back from what a person typed or picked. Nothing here needs the network."""

from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale
from babel.dates import get_timezone_location

from app.workspace.regions import zone_countries

UTC = "UTC"
LANGUAGES = ("en", "ru")
SEPARATOR = " · "


@cache
def _places(locale: str) -> dict[str, tuple[str, str]]:
    """Each zone's (city, "city, country") in ``locale``; UTC as itself."""
    territories = Locale.parse(locale).territories
    places = {UTC: (UTC, UTC)}
    for zone, country in zone_countries().items():
        city = get_timezone_location(zone, locale=locale, return_city=True)
        name = territories.get(country, country)
        places[zone] = (city, city if city == name else f"{city}, {name}")
    return places


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


@cache
def _lookup() -> dict[str, str]:
    """What a person may type, folded, → the zone: its place or, when no other zone shares
    it, its city, in every language; and the zone's own name (links, the API, old forms)."""
    found = {_key(zone): zone for zone in available_timezones()}
    for locale in LANGUAGES:
        places = _places(locale)
        cities: dict[str, list[str]] = {}
        for zone, (city, place) in places.items():
            cities.setdefault(_key(city), []).append(zone)
            found[_key(place)] = zone
        found.update({city: zones[0] for city, zones in cities.items() if len(zones) == 1})
    return found


def _utcoffset(zone: str, now: datetime) -> timedelta:
    return now.astimezone(ZoneInfo(zone)).utcoffset()


def offset(zone: str, now: datetime) -> str:
    """The zone's distance from UTC at ``now``: "UTC+3", "UTC−3:30", "UTC+0"."""
    minutes = int(_utcoffset(zone, now).total_seconds()) // 60
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'−' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")


def label(zone: str, locale: str, now: datetime) -> str:
    """How the picker names a zone. One outside the list (an old alias such as US/Eastern)
    keeps its own name, so that saving the page again keeps it."""
    if zone == UTC:
        return UTC
    place = _places(locale).get(zone)
    return f"{place[1] if place else zone}{SEPARATOR}{offset(zone, now)}"


def choices(locale: str, now: datetime) -> list[str]:
    """Every zone's label, from the far west to the far east, by place within an offset."""
    places = _places(locale)
    zones = sorted(places, key=lambda zone: (_utcoffset(zone, now), places[zone][1]))
    return [label(zone, locale, now) for zone in zones]


def zone_from_text(text: str | None) -> str | None:
    """The zone a picked label, a typed place or city, or a zone's own name means; None
    when it means none (the offset after " · " is ignored: it moves with summer time)."""
    if not text or not text.strip():
        return None
    return _lookup().get(_key(text.split(SEPARATOR)[0]))
