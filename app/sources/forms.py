from flask import g
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional, ValidationError

from app.models import SourceKind
from app.money import parse_major


def kind_choices():
    return [
        SelectChoice(SourceKind.SITE_FORM.value, _l("Site form")),
        SelectChoice(SourceKind.AD.value, _l("Advertising")),
        SelectChoice(SourceKind.PARTNER.value, _l("Partner (paid per lead)")),
        SelectChoice(SourceKind.REFERRAL.value, _l("Referral")),
        SelectChoice(SourceKind.OTHER.value, _l("Other")),
    ]


class SourceForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=kind_choices, default=SourceKind.SITE_FORM.value)
    cost = StringField(_l("Cost per lead"), default="0")
    thank_you_url = URLField(
        _l("Thank-you page after the form"),
        validators=[Optional(), URL(require_tld=False), Length(max=500)],
    )
    rate_limit_per_minute = IntegerField(
        _l("Most posts per minute"), default=600, validators=[NumberRange(1, 100000)]
    )
    signed = BooleanField(_l("Require signed requests (HMAC)"))
    junk_share_max = IntegerField(
        _l("Alert above this junk share, in percent"), validators=[Optional(), NumberRange(0, 100)]
    )
    qualified_share_min = IntegerField(
        _l("Alert below this qualified share, in percent"),
        validators=[Optional(), NumberRange(0, 100)],
    )

    def validate_cost(self, field):
        tenant = g.get("tenant")
        cost_minor = parse_major(field.data, tenant.currency if tenant is not None else None)
        if cost_minor is None:
            raise ValidationError(_l("Enter an amount such as 50 or 12.50."))
        self.cost_minor = cost_minor


class CorrectionForm(FlaskForm):
    """The owner's corrections to a rejected post, judged again like a new post."""

    name = StringField(_l("Name"), validators=[Length(max=200)])
    email = EmailField(_l("Email"), validators=[Length(max=254)])
    phone = StringField(_l("Phone"), validators=[Length(max=40)])
    company = StringField(_l("Company"), validators=[Length(max=200)])
    message = TextAreaField(_l("Message"), validators=[Length(max=5000)])
    budget = StringField(_l("Budget"), validators=[Length(max=200)])
    decision_date = DateField(_l("Decision date"), validators=[Optional()])
    external_id = StringField(_l("External id"), validators=[Length(max=200)])
