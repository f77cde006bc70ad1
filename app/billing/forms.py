"""Billing forms: choosing a plan for Checkout, and opening the portal (CSRF only)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice
from wtforms.validators import DataRequired

from app.billing.services import PLAN_NAMES


class CheckoutForm(FlaskForm):
    plan = RadioField(
        _l("Plan"),
        choices=[SelectChoice(code, name) for code, name in PLAN_NAMES.items()],
        default="starter",
        validators=[DataRequired()],
    )


class PortalForm(FlaskForm):
    """Carries only the CSRF token."""
