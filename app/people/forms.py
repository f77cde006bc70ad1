"""Quick add and a person's details: names required, email and phone normalised."""

from flask import g
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from app.intake.fields import normalise_email, normalise_phone
from app.intake.services import phone_region


class ContactFields:
    """Email and phone as the builder stores them (``self.email_value``, ``phone_value``)."""

    email_value: str | None = None
    phone_value: str | None = None

    def validate_email(self, field):
        self.email_value = None
        if field.data and field.data.strip():
            self.email_value = normalise_email(field.data.strip())
            if self.email_value is None:
                raise ValidationError(_l("This is not an email address."))

    def validate_phone(self, field):
        self.phone_value = None
        if field.data and field.data.strip():
            self.phone_value = normalise_phone(field.data.strip(), phone_region(g.tenant))
            if self.phone_value is None:
                raise ValidationError(_l("This is not a phone number."))


class QuickAddForm(ContactFields, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("Email"), validators=[Optional(), Length(max=254)])
    source = SelectField(_l("Came by"))
    company = StringField(_l("Company"), validators=[Optional(), Length(max=200)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=5000)])
    budget = StringField(_l("Budget"), validators=[Optional(), Length(max=200)])
    decision_date = DateField(_l("Decision date"), validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not (self.email_value or self.phone_value):
            self.phone.errors = [*self.phone.errors, _l("Give a phone or an email.")]
            return False
        return ok


class PersonForm(ContactFields, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = StringField(_l("Email"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    company = StringField(_l("Company"), validators=[Optional(), Length(max=200)])
