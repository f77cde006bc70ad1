"""Field validators shared by every area's forms."""

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

from app import passwords


class StrongPassword:
    """Length between the policy's bounds and not among the most common passwords."""

    def __call__(self, form, field):
        value = field.data or ""
        if len(value) < passwords.MIN_LENGTH:
            raise ValidationError(
                _l("Use at least %(count)d characters.", count=passwords.MIN_LENGTH)
            )
        if len(value) > passwords.MAX_LENGTH:
            raise ValidationError(
                _l("Use at most %(count)d characters.", count=passwords.MAX_LENGTH)
            )
        if passwords.is_common(value):
            raise ValidationError(_l("This password is too common; choose another."))


def normalise_email(value: str | None) -> str:
    return (value or "").strip().lower()
