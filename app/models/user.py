"""People who sign in. A user may belong to several workspaces."""

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin, UTCDateTime
from app.models.tenant import Membership


class User(UserMixin, TimestampMixin, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    # Bumped on password change so every other session and remember-me cookie dies.
    session_version: Mapped[int] = mapped_column(default=1)
    last_tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenant.id", ondelete="SET NULL")
    )
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class PendingSignup(TimestampMixin, Base):
    """A signup waiting for its address to confirm it (the emailed link).

    Signing up answers the same whatever the address: nothing is created for an address
    until its owner follows the link, so the signup form tells nobody who has an account.
    """

    __tablename__ = "pending_signup"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    business_name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    language: Mapped[str] = mapped_column(sa.String(8))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
