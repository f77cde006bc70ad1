"""Money's one conversion between minor units (what is stored) and major units (what
people type and read). Amounts are stored as integers of the currency's smallest unit.

``read_amount`` reads an amount someone wrote in free text ("800", "1 500 ₽", "£1,500",
"1.500,00 €": intake's budget, quick add): a separator followed by exactly three digits is
ambiguous ("1,500", "1.500"), and the workspace's language decides it: English groups with
commas, Russian (and most of Europe) with dots and spaces and writes the decimal comma.
"""

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision

# Typed amounts above this (in major units) are refused as a slip of the finger.
MAX_MAJOR = Decimal(10**9)


def precision(currency: str | None) -> int:
    """Digits after the point in ``currency`` (2 for most; 0 for yen)."""
    return get_currency_precision((currency or "USD").upper())


def to_major(minor: int, currency: str | None = None) -> Decimal:
    """Stored minor units as an exact major amount: 1250 → 12.50."""
    return Decimal(minor).scaleb(-precision(currency))


def to_minor(major: Decimal, currency: str | None = None) -> int:
    """A major amount as minor units: 12.5 → 1250."""
    return int(Decimal(major).scaleb(precision(currency)).to_integral_value())


def major_text(minor: int, currency: str | None = None) -> str:
    """Plain digits with a point, for form fields and CSV files: 1250 → "12.50"."""
    return f"{to_major(minor, currency):.{precision(currency)}f}"


def parse_major(text: str | None, currency: str | None = None) -> int | None:
    """What a person typed ("1 250,50", "12.5", "") as minor units; None if it is not an
    amount of this currency (negative, too large, or finer than its smallest unit)."""
    cleaned = (text or "0").replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        value = Decimal(cleaned or "0")
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value > MAX_MAJOR:
        return None
    if value != value.quantize(Decimal(1).scaleb(-precision(currency))):
        return None
    return to_minor(value, currency)


MAX_MINOR = 10**13
DECIMAL_COMMA_LANGUAGES = frozenset({"ru", "de", "fr", "es", "it", "pt", "nl", "uk", "pl"})
_NUMBER = re.compile(r"\d[\d\s.,'\u00a0\u202f]*")


def read_amount(text: str | None, language: str = "en", currency: str = "USD") -> int | None:
    """Minor units (of ``currency``) of the first amount in ``text``; None when none."""
    match = _NUMBER.search(text or "")
    if match is None:
        return None
    number = re.sub(r"[\s'\u00a0\u202f]", "", match.group()).rstrip(".,")
    separators = [char for char in number if char in ".,"]
    if not separators:
        whole, fraction = number, ""
    else:
        last = number.rfind(separators[-1])
        tail = number[last + 1 :]
        if len(set(separators)) > 1 or (
            separators.count(separators[-1]) == 1
            and (len(tail) != 3 or _is_decimal_mark(separators[-1], language))
        ):
            whole, fraction = number[:last], tail
        else:
            whole, fraction = number, ""
        whole = re.sub(r"[.,]", "", whole)
    try:
        value = Decimal(f"{whole or '0'}.{fraction or '0'}")
    except InvalidOperation:
        return None
    minor = to_minor(value, currency)
    return minor if 0 <= minor < MAX_MINOR else None


def _is_decimal_mark(separator: str, language: str) -> bool:
    decimal_comma = language.split("-")[0].lower() in DECIMAL_COMMA_LANGUAGES
    return separator == ("," if decimal_comma else ".")
