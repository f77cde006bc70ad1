"""Money's one conversion between minor units (what is stored) and major units (what
people type and read). Amounts are stored as integers of the currency's smallest unit."""

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
