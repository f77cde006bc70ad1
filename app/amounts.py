"""Reading an amount of money someone wrote ("800", "1 500 ₽", "£1,500", "1.500,00 €").

Intake and quick add keep what was written as the lead's budget and put the amount it
reads as into the deal's value, in minor units of the workspace's currency. A separator
followed by exactly three digits is ambiguous ("1,500", "1.500"); the workspace's
language decides it: English groups with commas, Russian (and most of Europe) with dots
and spaces and writes the decimal comma.
"""

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision

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
    minor = int(value.scaleb(get_currency_precision(currency.upper())).to_integral_value())
    return minor if 0 <= minor < MAX_MINOR else None


def _is_decimal_mark(separator: str, language: str) -> bool:
    decimal_comma = language.split("-")[0].lower() in DECIMAL_COMMA_LANGUAGES
    return separator == ("," if decimal_comma else ".")
