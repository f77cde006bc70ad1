"""Forms for tokens and endpoints."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, SelectMultipleField, StringField, widgets
from wtforms.validators import URL, DataRequired, Length

from app.webhooks.events import EVENT_TYPES


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    access = SelectField(
        _l("Access"),
        choices=[
            SelectChoice("read", _l("Read only")),
            SelectChoice("write", _l("Read and write")),
        ],
    )
    membership_id = SelectField(_l("Acts as"), coerce=int)


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class EndpointForm(FlaskForm):
    url = StringField(
        _l("Address (URL)"),
        validators=[DataRequired(), URL(require_tld=False), Length(max=2000)],
    )
    description = StringField(_l("Description"), validators=[Length(max=200)])
    events = CheckboxesField(
        _l("Events"),
        choices=[SelectChoice(name, name) for name in EVENT_TYPES],
        validators=[DataRequired(_l("Choose at least one event."))],
        render_kw={"class": "checks"},
    )
