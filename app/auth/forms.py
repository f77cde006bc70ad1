from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from app.forms import StrongPassword, normalise_email


class SignupForm(FlaskForm):
    business_name = StringField(_l("Business name"), validators=[DataRequired(), Length(max=120)])
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(
        _l("Email"),
        filters=[normalise_email],
        validators=[DataRequired(), Email(), Length(max=254)],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), StrongPassword()])
    country = SelectField(_l("Where is the business?"), validators=[DataRequired()])
    # Filled in by the browser (its timezone), kept when it lies in the chosen country.
    timezone = StringField(validators=[Optional(), Length(max=64)])


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[normalise_email], validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Keep me signed in for 30 days"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[normalise_email], validators=[DataRequired(), Email()])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class AcceptInvitationForm(FlaskForm):
    """For a new person: a name and a password. An existing user confirms theirs."""

    name = StringField(_l("Your name"), validators=[Length(max=120)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class ChangeEmailForm(FlaskForm):
    new_email = EmailField(
        _l("New email"), filters=[normalise_email], validators=[DataRequired(), Email()]
    )
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), StrongPassword()])
