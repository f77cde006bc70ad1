from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, StopValidation

from app import clock
from app.forms import normalise_email
from app.labels import LABELS
from app.models.tenant import WINDOW_DAYS, WINDOW_LEADS
from app.workspace import timezones

CURRENCIES = ["USD", "EUR", "GBP", "RUB", "KZT", "UAH", "BYN", "CAD", "AUD", "INR", "CHF", "PLN"]


def role_choices():
    return [SelectChoice(code, text) for code, text in LABELS["role"].items()]


class TimezoneField(StringField):
    """A zone picked by its place ("London, United Kingdom · UTC+0"); its data is the
    zone's name (Europe/London), shown again as the place in the reader's language."""

    typed = ""

    def process_formdata(self, valuelist):
        if valuelist:
            self.typed = valuelist[0].strip()
            self.data = timezones.zone_from_text(self.typed)

    def _value(self):
        if self.data:
            return timezones.label(self.data, str(get_locale()), clock.now())
        return self.typed

    def pre_validate(self, form):
        if self.data is None:
            raise StopValidation(
                _l("Pick a city from the list, such as London.")
                if self.typed
                else _l("Type a city and pick it from the list.")
            )


class SettingsForm(FlaskForm):
    name = StringField(_l("Workspace name"), validators=[DataRequired(), Length(max=120)])
    timezone = TimezoneField(
        _l("Timezone"),
        render_kw={"list": "timezones", "autocomplete": "off", "spellcheck": "false"},
    )
    language = SelectField(
        _l("Language"), choices=[SelectChoice("en", "English"), SelectChoice("ru", "Русский")]
    )
    country = SelectField(_l("Country (how phone numbers without a country code are read)"))
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c, c) for c in CURRENCIES])
    digest_hour = IntegerField(
        _l("Morning digest at (hour, workspace time)"),
        default=8,
        validators=[NumberRange(0, 23)],
    )
    junk_share_max = IntegerField(
        _l("Alert above this junk share, in percent"), default=40, validators=[NumberRange(0, 100)]
    )
    qualified_share_min = IntegerField(
        _l("Alert below this qualified share, in percent"),
        default=20,
        validators=[NumberRange(0, 100)],
    )
    quality_window_mode = SelectField(
        _l("Judge a source over"),
        choices=[
            SelectChoice(WINDOW_LEADS, _l("its last N judged leads")),
            SelectChoice(WINDOW_DAYS, _l("the leads judged in its last D days")),
        ],
        default=WINDOW_LEADS,
    )
    quality_window = IntegerField(
        _l("N judged leads"), default=20, validators=[NumberRange(5, 500)]
    )
    quality_window_days = IntegerField(_l("D days"), default=7, validators=[NumberRange(1, 90)])


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        filters=[normalise_email],
        validators=[DataRequired(), Email(), Length(max=254)],
    )
    role = SelectField(_l("Role"), choices=role_choices, default="closer")


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)


class NewWorkspaceForm(FlaskForm):
    name = StringField(_l("Business name"), validators=[DataRequired(), Length(max=120)])


class RulesForm(FlaskForm):
    max_discount_percent = IntegerField(
        _l("Largest discount a closer may promise, %"), validators=[NumberRange(0, 100)]
    )
    closer_daily_capacity = IntegerField(
        _l("New deals a closer takes per day"), validators=[NumberRange(1, 500)]
    )
    queue_size = IntegerField(
        _l("Leads in a closer's morning queue"), validators=[NumberRange(1, 200)]
    )
    touch_cadence_days = IntegerField(
        _l("Touch every client every N days"), validators=[NumberRange(1, 90)]
    )
    assignment_mode = SelectField(
        _l("How qualified leads reach closers"),
        choices=[
            SelectChoice("least_loaded", _l("Least loaded first")),
            SelectChoice("round_robin", _l("Round robin")),
        ],
    )


class StageForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=64)])
    rot_days = IntegerField(_l("Rotting after N idle days"), validators=[NumberRange(1, 365)])
