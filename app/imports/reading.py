"""Reading an uploaded CSV: its encoding, its delimiter, its rows, and a first guess at its columns.

Everything here is pure: bytes in, text and rows out.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

IMPORT_FIELDS = (
    "name",
    "email",
    "phone",
    "company",
    "message",
    "budget",
    "decision_date",
    "external_id",
    "last_touch_date",
    "account_manager_email",
)
FIELD_LABELS = {
    "name": _l("Name"),
    "email": _l("Email"),
    "phone": _l("Phone"),
    "company": _l("Company"),
    "message": _l("Message"),
    "budget": _l("Budget"),
    "decision_date": _l("Decision date"),
    "external_id": _l("External id"),
    "last_touch_date": _l("Last touch date"),
    "account_manager_email": _l("Account manager's email"),
}
# Header names (as ``header_key`` reduces them) that suggest each field, English and Russian.
HEADER_ALIASES = {
    "name": {"name", "fullname", "contact", "contactname", "client", "clientname", "person",
             "имя", "фио", "контакт", "контактноелицо", "клиент", "имяклиента"},
    "email": {"email", "mail", "emailaddress", "почта", "электроннаяпочта", "элпочта",
              "емейл", "емэйл", "имейл", "адресэлектроннойпочты"},
    "phone": {"phone", "phonenumber", "telephone", "tel", "mobile", "cell", "телефон", "тел",
              "мобильный", "мобильныйтелефон", "номертелефона", "сотовый"},
    "company": {"company", "companyname", "organisation", "organization", "business",
                "компания", "организация", "названиекомпании", "фирма"},
    "message": {"message", "comment", "comments", "note", "notes", "сообщение", "комментарий",
                "комментарии", "примечание", "примечания", "заметки"},
    "budget": {"budget", "бюджет"},
    "decision_date": {"decisiondate", "decision", "датарешения", "срокрешения"},
    "external_id": {"externalid", "id", "clientid", "customerid", "код", "кодклиента",
                    "внешнийid", "внешнийидентификатор"},
    "last_touch_date": {"lasttouch", "lasttouchdate", "lastcontact", "lastcontactdate",
                        "lastcontacted", "последнийконтакт", "датапоследнегоконтакта",
                        "последнеекасание"},
    "account_manager_email": {"accountmanager", "accountmanageremail", "manager",
                              "manageremail", "менеджер", "почтаменеджера",
                              "emailменеджера", "аккаунтменеджер", "ответственный"},
}  # fmt: skip
DELIMITERS = (",", ";", "\t")
PREVIEW_ROWS = 10


class UnreadableFile(ValueError):
    """The upload is not a CSV file with a header and at least one row."""


@dataclass
class CsvLayout:
    """How to read the file: found once at upload, reused by the import job."""

    encoding: str
    delimiter: str
    headers: list[str]


def decode(content: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, UTF-16 with a BOM, else Windows-1251."""
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return content.decode("utf-16", errors="replace"), "utf-16"
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Russian Excel saves CSV in Windows-1251; it maps almost every byte to a letter.
        return content.decode("cp1251", errors="replace"), "cp1251"


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most, equally long, rows."""
    sample = text[: 64 * 1024].splitlines()[:20]
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(sample, delimiter=delimiter) if any(row)]
        if not widths:
            continue
        consistent = sum(1 for width in widths if width == widths[0])
        score = widths[0] * consistent if widths[0] > 1 else 0
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_layout(content: bytes) -> CsvLayout:
    """Find the encoding, delimiter and header row, or raise ``UnreadableFile``."""
    text, encoding = decode(content)
    if "\x00" in text:
        raise UnreadableFile(_l("This does not look like a CSV file."))
    delimiter = detect_delimiter(text)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = next(row for row in rows if any(cell.strip() for cell in row))
    except StopIteration:
        raise UnreadableFile(_l("The file is empty.")) from None
    except csv.Error as error:
        raise UnreadableFile(_l("The file could not be read: %(error)s", error=error)) from None
    return CsvLayout(encoding, delimiter, [cell.strip() for cell in headers])


def data_rows(content: bytes, layout: CsvLayout) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every non-blank row under the header; the header is row 1."""
    # Decoded while read: the whole text at once, and StringIO's copy of it, took five
    # times the file's size (60 MB for an 11 MB file).
    text = io.TextIOWrapper(
        io.BytesIO(content), encoding=layout.encoding, errors="replace", newline=""
    )
    reader = csv.reader(text, delimiter=layout.delimiter)
    seen_header = False
    for row_number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if not seen_header:
            seen_header = True
            continue
        yield row_number, cells


def count_rows(content: bytes, layout: CsvLayout) -> int:
    return sum(1 for _ in data_rows(content, layout))


def preview(content: bytes, layout: CsvLayout, limit: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first rows, padded to the header's width, for the owner to recognise."""
    width = len(layout.headers)
    rows = []
    for _, cells in data_rows(content, layout):
        rows.append((cells + [""] * width)[:width])
        if len(rows) == limit:
            break
    return rows


def header_key(header: str) -> str:
    """A header reduced to lowercase letters and digits: "E-mail " -> "email", "Ф.И.О." -> "фио"."""
    return re.sub(r"[\W_]+", "", header.lower().replace("ё", "е"))


def guess_mapping(headers: list[str]) -> dict[str, int]:
    """Field -> column index for headers that name a field; each field and column used once."""
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = header_key(header)
        for field in IMPORT_FIELDS:
            if field not in mapping and key in HEADER_ALIASES[field]:
                mapping[field] = index
                break
    return mapping
