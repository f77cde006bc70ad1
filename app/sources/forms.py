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

from app.labels import LABELS
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


POSTED = LABELS["post_field"]


class CorrectionForm(FlaskForm):
    """The owner's corrections to a rejected post, judged again like a new post: every
    field intake reads (app.intake.fields.KNOWN_FIELDS), labelled as people call them."""

    name = StringField(POSTED["name"], validators=[Length(max=200)])
    email = EmailField(POSTED["email"], validators=[Length(max=254)])
    phone = StringField(POSTED["phone"], validators=[Length(max=40)])
    company = StringField(POSTED["company"], validators=[Length(max=200)])
    message = TextAreaField(POSTED["message"], validators=[Length(max=5000)])
    budget = StringField(POSTED["budget"], validators=[Length(max=200)])
    decision_date = DateField(POSTED["decision_date"], validators=[Optional()])
    external_id = StringField(POSTED["external_id"], validators=[Length(max=200)])
    utm_source = StringField(POSTED["utm_source"], validators=[Length(max=2000)])
    utm_medium = StringField(POSTED["utm_medium"], validators=[Length(max=2000)])
    utm_campaign = StringField(POSTED["utm_campaign"], validators=[Length(max=2000)])
    utm_term = StringField(POSTED["utm_term"], validators=[Length(max=2000)])
    utm_content = StringField(POSTED["utm_content"], validators=[Length(max=2000)])
