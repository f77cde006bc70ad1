from os import SEEK_END

from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField
from wtforms.validators import ValidationError

from app.imports.reading import FIELD_LABELS, IMPORT_FIELDS
from app.models import ImportMode, User

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def upload_limit_megabytes() -> str:
    """The upload limit in megabytes, written the way the reader's language writes numbers."""
    return format_decimal(MAX_UPLOAD_BYTES / (1024 * 1024), format="#,##0.#")


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])

    def validate_file(self, field):
        size = field.data.stream.seek(0, SEEK_END)
        field.data.stream.seek(0)
        if size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                _l(
                    "The file is larger than %(megabytes)s MB. Split it into smaller files.",
                    megabytes=upload_limit_megabytes(),
                )
            )
        if size == 0:
            raise ValidationError(_l("The file is empty."))


def _mode_choices():
    return [
        (
            ImportMode.CLIENTS.value,
            _l("Existing clients: the account phase, each with an account manager"),
        ),
        (ImportMode.LEADS.value, _l("New leads: the first stage, shared among lead generators")),
    ]


class MappingForm(FlaskForm):
    """Which column feeds each field, and whether rows become leads or clients."""

    map_name = SelectField(FIELD_LABELS["name"])
    map_email = SelectField(FIELD_LABELS["email"])
    map_phone = SelectField(FIELD_LABELS["phone"])
    map_company = SelectField(FIELD_LABELS["company"])
    map_message = SelectField(FIELD_LABELS["message"])
    map_budget = SelectField(FIELD_LABELS["budget"])
    map_decision_date = SelectField(FIELD_LABELS["decision_date"])
    map_external_id = SelectField(FIELD_LABELS["external_id"])
    map_last_touch_date = SelectField(FIELD_LABELS["last_touch_date"])
    map_account_manager_email = SelectField(FIELD_LABELS["account_manager_email"])
    mode = RadioField(_l("The rows are"), choices=_mode_choices, default=ImportMode.CLIENTS.value)
    default_account_manager = SelectField(_l("Account manager for clients without one"))

    def __init__(self, headers: list[str], managers: list[User], *args, **kwargs):
        super().__init__(*args, **kwargs)
        columns = [("", _l("— not in the file —"))] + [
            (str(index), header or _l("Column %(number)d", number=index + 1))
            for index, header in enumerate(headers)
        ]
        for name in IMPORT_FIELDS:
            self[f"map_{name}"].choices = columns
        self.default_account_manager.choices = [("", _l("Choose…"))] + [
            (str(user.id), f"{user.name} <{user.email}>") for user in managers
        ]
        self.has_managers = bool(managers)

    @classmethod
    def initial_data(cls, mapping: dict[str, int], mode, default_account_manager_id) -> dict:
        """Form data for a saved (or guessed) mapping."""
        data = {
            f"map_{name}": str(mapping[name]) if name in mapping else "" for name in IMPORT_FIELDS
        }
        data["mode"] = (mode or ImportMode.CLIENTS).value
        data["default_account_manager"] = str(default_account_manager_id or "")
        return data

    @property
    def mapping(self) -> dict[str, int]:
        """Field -> column index, for the fields given a column."""
        return {
            name: int(self[f"map_{name}"].data)
            for name in IMPORT_FIELDS
            if self[f"map_{name}"].data
        }

    @property
    def default_account_manager_id(self) -> int | None:
        return int(self.default_account_manager.data) if self.default_account_manager.data else None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        used_by: dict[str, str] = {}
        for name in IMPORT_FIELDS:
            field = self[f"map_{name}"]
            if field.data and field.data in used_by:
                field.errors.append(
                    _l(
                        "This column already feeds %(field)s.",
                        field=FIELD_LABELS[used_by[field.data]],
                    )
                )
                valid = False
            elif field.data:
                used_by[field.data] = name
        if not (self.map_email.data or self.map_phone.data):
            self.map_email.errors.append(
                _l("Choose the column with emails or phones: rows need one to be imported.")
            )
            valid = False
        if self.mode.data == ImportMode.CLIENTS.value and not self.default_account_manager.data:
            self.default_account_manager.errors.append(
                _l("Choose who looks after clients without an account manager in the file.")
                if self.has_managers
                else _l("Invite an account manager to the team first: every client needs one.")
            )
            valid = False
        return valid
