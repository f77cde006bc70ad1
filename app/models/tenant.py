"""Workspaces (tenants), the people in them, and invitations."""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TenantScoped, TimestampMixin, UTCDateTime, str_enum


class Role(enum.StrEnum):
    OWNER = "owner"
    LEAD_GENERATOR = "lead_generator"
    CLOSER = "closer"
    ACCOUNT_MANAGER = "account_manager"


# How a source's quality is judged: over its last N verdicts, or those of its last D days.
WINDOW_LEADS, WINDOW_DAYS = "leads", "days"


class Tenant(TimestampMixin, Base):
    """A workspace: one small business and everything it owns."""

    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    # Where the business is (ISO 3166): phone numbers without a country code are its.
    country: Mapped[str] = mapped_column(sa.String(2), default="US")
    touch_cadence_days: Mapped[int] = mapped_column(default=7)
    queue_size: Mapped[int] = mapped_column(default=20)
    # Rules: each role's authority, written by the owner.
    max_discount_percent: Mapped[int] = mapped_column(default=10)
    closer_daily_capacity: Mapped[int] = mapped_column(default=20)
    assignment_mode: Mapped[str] = mapped_column(sa.String(16), default="least_loaded")
    digest_hour: Mapped[int] = mapped_column(default=8)
    # Source quality alerts, over each source's last N judged leads, or over the
    # leads judged in its last D days when ``quality_window_mode`` is "days".
    junk_share_max: Mapped[int] = mapped_column(default=40)
    qualified_share_min: Mapped[int] = mapped_column(default=20)
    quality_window: Mapped[int] = mapped_column(default=20)
    quality_window_mode: Mapped[str] = mapped_column(sa.String(8), default=WINDOW_LEADS)
    quality_window_days: Mapped[int] = mapped_column(default=7)

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"


class Membership(TenantScoped, TimestampMixin, Base):
    """A user's seat in a workspace, with the role that decides what they see."""

    __tablename__ = "membership"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 32))
    active: Mapped[bool] = mapped_column(default=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    digest_opt_out: Mapped[bool] = mapped_column(default=False)
    # Round-robin routing hands the next lead to the member assigned longest ago.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped["User"] = relationship(back_populates="memberships")  # noqa: F821
    tenant: Mapped[Tenant] = relationship()


class Invitation(TenantScoped, TimestampMixin, Base):
    """An emailed offer to join a workspace with a role; accepted once."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[Role] = mapped_column(str_enum(Role, 32))
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    tenant: Mapped[Tenant] = relationship()

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
