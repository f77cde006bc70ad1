"""Judging one CSV row: which fields it gives, normalised, and why it cannot be imported.

Pure, like ``app.intake.fields``: cells in, values and reason codes out.
"""

import re
from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l

from app.imports.reading import FIELD_LABELS
from app.intake.fields import normalise_email, normalise_phone

TEXT_LIMITS = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "company": 200,
    "budget": 200,
    "external_id": 200,
    "account_manager_email": 254,
}
DATE_FIELDS = ("decision_date", "last_touch_date")
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})")
EXTRA_VALUE_LIMIT = 2000


@dataclass
class JudgedRow:
    row_number: int
    cells: list[str]
    values: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    account_manager_email: str | None = None
    dates: dict[str, date] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def contact_name(self) -> str:
        return self.values.get("name") or self.email or self.phone or "?"

    @property
    def title(self) -> str:
        return (self.values.get("company") or self.contact_name)[:200]


def parse_date(text: str) -> date | None:
    """A date written as 2026-12-31, 31.12.2026 or 31.12.26 (a time after it is ignored)."""
    day_part = text.replace("T", " ").split(" ", 1)[0]
    if iso := ISO_DATE.fullmatch(day_part):
        year, month, day = (int(part) for part in iso.groups())
    elif dotted := DOTTED_DATE.fullmatch(day_part):
        day, month, year = (int(part) for part in dotted.groups())
        if len(dotted.group(3)) == 2:
            year += 2000 if year < 69 else 1900  # as strptime's %y reads two-digit years
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def judge_row(
    row_number: int, cells: list[str], mapping: dict[str, int], headers: list[str], region: str
) -> JudgedRow:
    """Read the mapped fields of one row and collect every reason it cannot be imported."""
    row = JudgedRow(row_number, cells)
    row.values = {
        name: (cells[index].strip() if index < len(cells) else "")
        for name, index in mapping.items()
    }
    row.extra = _unmapped_cells(cells, set(mapping.values()), headers)
    for name, limit in TEXT_LIMITS.items():
        if len(row.values.get(name, "")) > limit:
            row.reasons.append(f"too_long:{name}")

    email, phone = row.values.get("email", ""), row.values.get("phone", "")
    if email and "too_long:email" not in row.reasons:
        row.email = normalise_email(email)
        if row.email is None:
            row.reasons.append("invalid_email")
    if phone and "too_long:phone" not in row.reasons:
        row.phone = normalise_phone(phone, region)
        if row.phone is None:
            row.reasons.append("invalid_phone")
    if not email and not phone:
        row.reasons.append("missing_contact")

    for name in DATE_FIELDS:
        if row.values.get(name):
            parsed = parse_date(row.values[name])
            if parsed is None:
                row.reasons.append(f"invalid_date:{name}")
            else:
                row.dates[name] = parsed
    # Only compared with members' stored (lowercased) emails, so no full validation.
    row.account_manager_email = row.values.get("account_manager_email", "").lower() or None
    return row


def _unmapped_cells(cells: list[str], mapped: set[int], headers: list[str]) -> dict[str, str]:
    """Cells of columns nobody mapped, kept on the lead as extra data under their header."""
    extra = {}
    for index, cell in enumerate(cells):
        if index in mapped or not cell.strip():
            continue
        header = headers[index] if index < len(headers) and headers[index] else ""
        extra[(header or f"column {index + 1}")[:100]] = cell.strip()[:EXTRA_VALUE_LIMIT]
    return extra


def describe_reason(code: str) -> str:
    """The owner-facing sentence for a reason code, in the current language."""
    kind, _, field_name = code.partition(":")
    label = FIELD_LABELS.get(field_name, field_name)
    messages = {
        "missing_contact": _l("No email and no phone: give one to reach the person."),
        "invalid_email": _l("This is not a valid email address."),
        "invalid_phone": _l("This is not a valid phone number."),
        "invalid_date": _l(
            "%(field)s is not a date such as 2026-12-31 or 31.12.2026.", field=label
        ),
        "too_long": _l("%(field)s is too long.", field=label),
    }
    return str(messages.get(kind, code))
