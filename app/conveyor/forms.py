from flask import g
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from app.labels import LABELS
from app.money import parse_major


def lost_reason_choices():
    return [SelectChoice(code, text) for code, text in LABELS["lost_reason"].items()]


def channel_choices():
    return [SelectChoice(code, text) for code, text in LABELS["channel"].items()]


def parse_money(text: str | None) -> int | None:
    """Minor units of the workspace's currency from '1 200,50' or '1200.5'; None when it
    is not an amount."""
    tenant = g.get("tenant")
    return parse_major(text, tenant.currency if tenant is not None else None)


class QualificationForm(FlaskForm):
    problem = TextAreaField(_l("Problem: what do they need?"), validators=[Length(max=2000)])
    money = StringField(_l("Money: budget, or “confirmed”"), validators=[Length(max=200)])
    decision_date = DateField(_l("Timing: expected decision date"), validators=[Optional()])
    value = StringField(_l("Deal value"), default="0")

    def validate_value(self, field):
        if parse_money(field.data) is None:
            raise ValidationError(_l("Enter an amount such as 500 or 1200.50."))


class LoseForm(FlaskForm):
    reason = SelectField(_l("Why was it lost?"), choices=lost_reason_choices)
    note = StringField(_l("What happened"), validators=[Length(max=500)])


def churn_reason_choices():
    return [SelectChoice(code, text) for code, text in LABELS["churn_reason"].items()]


class ChurnForm(FlaskForm):
    reason = SelectField(_l("Why did they stop buying?"), choices=churn_reason_choices)
    note = StringField(_l("What happened"), validators=[Length(max=500)])


class NoteForm(FlaskForm):
    text = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=5000)])


class TouchForm(FlaskForm):
    channel = SelectField(_l("How"), choices=channel_choices)
    outcome = StringField(_l("Outcome"), validators=[DataRequired(), Length(max=200)])
    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])


class PromiseForm(Form):
    """One promise made to the client (all parts optional: an empty row is skipped)."""

    text = StringField(_l("What was promised"), validators=[Length(max=500)])
    discount_percent = IntegerField(_l("Discount, %"), validators=[Optional(), NumberRange(0, 100)])
    due_on = DateField(_l("Due"), validators=[Optional()])


class WinForm(FlaskForm):
    value = StringField(_l("Deal value"), default="0")
    account_manager_id = SelectField(_l("Account manager"), coerce=int, choices=[])
    promises = FieldList(FormField(PromiseForm), min_entries=3, max_entries=10)

    def validate_value(self, field):
        if parse_money(field.data) is None:
            raise ValidationError(_l("Enter an amount such as 500 or 1200.50."))


class ScheduleTouchForm(FlaskForm):
    at = DateTimeLocalField(
        _l("Plan the next touch for"), format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


class CadenceForm(FlaskForm):
    cadence_days = IntegerField(
        _l("Touch this client every N days"), validators=[Optional(), NumberRange(1, 90)]
    )


class FlagForm(FlaskForm):
    reason = StringField(
        _l("Why can it not be kept?"), validators=[DataRequired(), Length(max=500)]
    )
