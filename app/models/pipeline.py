"""The conveyor's core records: stages, sources, contacts and leads.

A lead moves through stages grouped in three phases; a lead in the account
phase is a client. Money is kept in integer minor units of the workspace
currency.
"""

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.models.base import Base, TenantScoped, TimestampMixin, UTCDateTime, str_enum


class Phase(enum.StrEnum):
    GENERATION = "generation"
    CONVERSION = "conversion"
    ACCOUNT = "account"


class SourceKind(enum.StrEnum):
    SITE_FORM = "site_form"
    AD = "ad"
    PARTNER = "partner"
    REFERRAL = "referral"
    OTHER = "other"


class Stage(TenantScoped, Base):
    __tablename__ = "stage"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    phase: Mapped[Phase] = mapped_column(str_enum(Phase, 16))
    position: Mapped[int] = mapped_column(default=0)
    rot_days: Mapped[int] = mapped_column(default=7)
    is_won: Mapped[bool] = mapped_column(default=False)
    is_lost: Mapped[bool] = mapped_column(default=False)


class Source(TenantScoped, TimestampMixin, Base):
    __tablename__ = "source"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "name"),
        sa.Index("ix_source_tenant_manual_kind", "tenant_id", "manual_kind", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[SourceKind] = mapped_column(str_enum(SourceKind, 16))
    cost_per_lead_minor: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    intake_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    signing_secret: Mapped[str | None] = mapped_column(sa.String(128))
    thank_you_url: Mapped[str | None] = mapped_column(sa.String(500))
    rate_limit_per_minute: Mapped[int] = mapped_column(default=600)
    # Quality thresholds; empty means the workspace default.
    junk_share_max: Mapped[int | None] = mapped_column()
    qualified_share_min: Mapped[int | None] = mapped_column()
    # One alert per crossing: disarmed when it fires, re-armed once the source recovers.
    alert_armed: Mapped[bool] = mapped_column(default=True)
    partner_report_token: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # One of the built-in sources quick add uses (app.people.quick_add.MANUAL_KINDS).
    manual_kind: Mapped[str | None] = mapped_column(sa.String(16))

    tenant: Mapped["Tenant"] = relationship()  # noqa: F821


CONTACT_SEARCH_TEXT = (
    "conveyor_fold(coalesce(name, '') || ' ' || coalesce(company, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(replace(phone, '+', ''), ''))"
)


class Contact(TenantScoped, TimestampMixin, Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    company: Mapped[str | None] = mapped_column(sa.String(200))
    # Name, company, email and phone digits folded (case, accents, ё) for trigram search;
    # written by PostgreSQL (migration 0017), read by app.search.
    search_text: Mapped[str | None] = mapped_column(
        sa.Text, sa.Computed(CONTACT_SEARCH_TEXT, persisted=True)
    )
    # The name and the company folded alone, each under its own trigram index (migration
    # 0020): a misspelt name is walked nearest-first among names only.
    search_name: Mapped[str | None] = mapped_column(
        sa.Text, sa.Computed("conveyor_fold(name)", persisted=True)
    )
    search_company: Mapped[str | None] = mapped_column(
        sa.Text, sa.Computed("conveyor_fold(company)", persisted=True)
    )

    # Email or phone first: a lookup by one can never be planned on the other's index.
    __table_args__ = (
        sa.Index("ix_contact_email_tenant", "email", "tenant_id"),
        sa.Index("ix_contact_phone_tenant", "phone", "tenant_id"),
        # search_text's one trigram index (migration 0022): LIKE '%…%' inside the tenant.
        sa.Index(
            "ix_contact_search_text_gist",
            "tenant_id",
            "search_text",
            postgresql_using="gist",
            postgresql_ops={"search_text": "gist_trgm_ops(siglen=256)"},
        ),
        sa.Index(
            "ix_contact_search_name",
            "tenant_id",
            "search_name",
            postgresql_using="gist",
            postgresql_ops={"search_name": "gist_trgm_ops(siglen=256)"},
        ),
        sa.Index(
            "ix_contact_search_company",
            "tenant_id",
            "search_company",
            postgresql_using="gist",
            postgresql_ops={"search_company": "gist_trgm_ops(siglen=256)"},
        ),
        # Names and companies by their first letters, byte order (a two-letter query),
        # and each company's people counted (migration 0021).
        sa.Index(
            "ix_contact_company_start",
            "tenant_id",
            "search_company",
            postgresql_ops={"search_company": 'COLLATE "C"'},
        ),
        sa.Index(
            "ix_contact_name_start",
            "tenant_id",
            "search_name",
            "id",
            postgresql_ops={"search_name": 'COLLATE "C"'},
        ),
    )


class Lead(TenantScoped, TimestampMixin, Base):
    """One inquiry moving along the conveyor; a lead in the account phase is a client."""

    __tablename__ = "lead"
    __table_args__ = (
        sa.Index("ix_lead_tenant_stage_activity", "tenant_id", "stage_id", "last_activity_at"),
        sa.Index("ix_lead_tenant_owner_stage", "tenant_id", "owner_id", "stage_id"),
        sa.Index("ix_lead_tenant_next_touch", "tenant_id", "next_touch_on"),
        sa.Index("ix_lead_tenant_created", "tenant_id", "created_at"),
        sa.Index("ix_lead_contact_id", "contact_id"),  # a person's deals: search, page, merge
    )
    tenant_id_index = False  # the first four indexes above lead with it

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("source.id", ondelete="SET NULL"))
    # Old values stay known on change: app.radar.funnel records the finished stay.
    stage_id: Mapped[int] = mapped_column(
        sa.ForeignKey("stage.id"), index=True, active_history=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user.id", ondelete="SET NULL"), active_history=True
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    value_minor: Mapped[int] = mapped_column(default=0)
    problem: Mapped[str | None] = mapped_column(sa.Text)
    money: Mapped[str | None] = mapped_column(sa.String(200))
    decision_date: Mapped[date | None] = mapped_column(sa.Date)
    next_touch_on: Mapped[date | None] = mapped_column(sa.Date)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    message: Mapped[str | None] = mapped_column(sa.Text)
    budget: Mapped[str | None] = mapped_column(sa.String(200))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    utm: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    extra: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Captured while its source was paused or the workspace's billing had lapsed.
    flagged: Mapped[bool] = mapped_column(default=False)
    # The contact details its post carried (name, email, phone, company), as the lead
    # builder read them: what a lead generator sees instead of the contact it joined.
    posted: Mapped[dict | None] = mapped_column(sa.JSON)
    # Its post repeated another post's idempotency key with other contact details.
    key_reused: Mapped[bool] = mapped_column(default=False)
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    won_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lost_reason: Mapped[str | None] = mapped_column(sa.String(32))
    lost_note: Mapped[str | None] = mapped_column(sa.String(500))
    # A client who stopped buying: still a client, in the base and its history, and
    # never a lost deal of the source that brought them.
    churned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    churn_reason: Mapped[str | None] = mapped_column(sa.String(32))
    churn_note: Mapped[str | None] = mapped_column(sa.String(500))
    # A client's own touch cadence; the workspace's when empty.
    cadence_days: Mapped[int | None] = mapped_column()
    last_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A touch planned for a moment; the engine reminds the owner when it arrives.
    touch_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # When the lead entered its current stage (empty: when it was created).
    stage_entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=clock.now)

    @property
    def is_qualified(self) -> bool:
        """The three conditions of a sale are recorded: problem, money, timing."""
        return bool(
            (self.problem or "").strip() and (self.money or "").strip() and self.decision_date
        )

    contact: Mapped[Contact] = relationship()
    source: Mapped[Source | None] = relationship()
    stage: Mapped[Stage] = relationship()
    owner: Mapped["User | None"] = relationship()  # noqa: F821
