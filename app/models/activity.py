"""What happens to a lead over time: its timeline, touches, promises and conflicts."""

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.models.base import Base, TenantScoped, UTCDateTime, str_enum


class EventKind(enum.StrEnum):
    INTAKE = "intake"
    IMPORTED = "imported"
    STAGE_MOVED = "stage_moved"
    ASSIGNED = "assigned"
    QUALIFIED = "qualified"
    NOTE = "note"
    TOUCH = "touch"
    WON = "won"
    LOST = "lost"
    HANDED_OFF = "handed_off"
    PROMISE_DECIDED = "promise_decided"
    CHURNED = "churned"
    ASKED_AGAIN = "asked_again"  # a new post from the person joined this open lead
    PERSON_MERGED = "person_merged"  # another record of the person was merged into this one
    CADENCE_CHANGED = "cadence_changed"  # {"days", "workspace_default"}
    TOUCH_PLANNED = "touch_planned"  # {"at": a UTC ISO moment, or None when cleared}


class LostReason(enum.StrEnum):
    NO_PROBLEM = "no_problem"
    NO_MONEY = "no_money"
    BAD_TIMING = "bad_timing"
    UNREACHABLE = "unreachable"
    JUNK = "junk"
    COMPETITOR = "competitor"
    OTHER = "other"


class ChurnReason(enum.StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    PRICE = "price"
    COMPETITOR = "competitor"
    SERVICE = "service"
    CLOSED = "closed"
    OTHER = "other"


class TouchChannel(enum.StrEnum):
    CALL = "call"
    MESSAGE = "message"
    EMAIL = "email"
    MEETING = "meeting"
    VISIT = "visit"


class PromiseStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    FLAGGED = "flagged"


class ConflictKind(enum.StrEnum):
    SOURCE_QUALITY = "source_quality"
    PROMISE_FLAGGED = "promise_flagged"
    PROMISE_BEYOND_AUTHORITY = "promise_beyond_authority"
    CADENCE_MISSED = "cadence_missed"
    LEAD_UNTOUCHED = "lead_untouched"


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class LeadEvent(TenantScoped, Base):
    """One line of a lead's timeline; ``data`` holds what the line needs to be read."""

    __tablename__ = "lead_event"
    __table_args__ = (sa.Index("ix_lead_event_lead_created", "lead_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, 24))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    actor: Mapped["User | None"] = relationship()  # noqa: F821


class Touch(TenantScoped, Base):
    """A call, message, meeting… with a client or lead, done or scheduled."""

    __tablename__ = "touch"
    __table_args__ = (sa.Index("ix_touch_lead_happened", "lead_id", "happened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    channel: Mapped[TouchChannel] = mapped_column(str_enum(TouchChannel, 16))
    outcome: Mapped[str] = mapped_column(sa.String(200), default="")
    note: Mapped[str | None] = mapped_column(sa.Text)
    happened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class Promise(TenantScoped, Base):
    """Something the closer promised the client, for the account manager to keep."""

    __tablename__ = "promise"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id", ondelete="CASCADE"), index=True)
    made_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(sa.String(500))
    discount_percent: Mapped[int | None] = mapped_column()
    due_on: Mapped[date | None] = mapped_column(sa.Date)
    status: Mapped[PromiseStatus] = mapped_column(
        str_enum(PromiseStatus, 16), default=PromiseStatus.PENDING
    )
    flag_reason: Mapped[str | None] = mapped_column(sa.String(500))
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class StageVisit(TenantScoped, Base):
    """A lead's finished stay in one stage: written when it leaves (see app.radar.funnel).

    ``lead_created_at`` repeats the lead's arrival so that a period's funnel reads
    this table alone.
    """

    __tablename__ = "stage_visit"
    __table_args__ = (sa.Index("ix_stage_visit_tenant_cohort", "tenant_id", "lead_created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(sa.ForeignKey("stage.id", ondelete="CASCADE"))
    next_stage_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("stage.id", ondelete="SET NULL")
    )
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    forward: Mapped[bool] = mapped_column(default=False)
    lead_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[int] = mapped_column(default=0)


class Conflict(TenantScoped, Base):
    """A problem between stages that the owner must see (listed fully by the radar)."""

    __tablename__ = "conflict"
    __table_args__ = (sa.Index("ix_conflict_tenant_status", "tenant_id", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ConflictKind] = mapped_column(str_enum(ConflictKind, 32))
    status: Mapped[ConflictStatus] = mapped_column(
        str_enum(ConflictStatus, 16), default=ConflictStatus.OPEN
    )
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("source.id", ondelete="CASCADE"))
    promise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("promise.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    resolution_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(TenantScoped, Base):
    """Who did what to the workspace that others must be able to check later."""

    __tablename__ = "audit_entry"
    __table_args__ = (sa.Index("ix_audit_entry_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
