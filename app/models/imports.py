"""Client-base imports: the uploaded file, how its columns map, and what became of each row."""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TenantScoped, TimestampMixin, UTCDateTime, str_enum


class ImportMode(enum.StrEnum):
    LEADS = "leads"  # rows join the first generation stage, routed round robin
    CLIENTS = "clients"  # rows join the account phase with an account manager


class ImportStatus(enum.StrEnum):
    UPLOADED = "uploaded"  # file stored, columns not mapped yet
    READY = "ready"  # mapped, waiting for the owner to start it
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # stopped by an error; starting again resumes after ``rows_done``


class ImportJob(TenantScoped, TimestampMixin, Base):
    """One uploaded CSV file and its progress; the original bytes are kept for good."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    # Deferred: progress polling and the batch loop must not reload megabytes per query.
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    encoding: Mapped[str] = mapped_column(sa.String(16))
    delimiter: Mapped[str] = mapped_column(sa.String(1))
    headers: Mapped[list] = mapped_column(sa.JSON, default=list)
    status: Mapped[ImportStatus] = mapped_column(
        str_enum(ImportStatus, 16), default=ImportStatus.UPLOADED
    )
    mode: Mapped[ImportMode | None] = mapped_column(str_enum(ImportMode, 16))
    # Field name -> column index in the file, for the fields the owner mapped.
    mapping: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    default_account_manager_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user.id", ondelete="SET NULL")
    )
    rows_total: Mapped[int] = mapped_column(default=0)
    # Rows judged and committed; a re-run resumes after this many.
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_imported: Mapped[int] = mapped_column(default=0)
    rows_merged: Mapped[int] = mapped_column(default=0)
    rows_rejected: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


class ImportRejection(TenantScoped, Base):
    """A row that was not imported, with why, and its cells exactly as in the file."""

    __tablename__ = "import_rejection"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "import_id", "row_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(
        sa.ForeignKey("import_job.id", ondelete="CASCADE"), index=True
    )
    # As a spreadsheet numbers it: the header is row 1.
    row_number: Mapped[int]
    # Reason codes such as "invalid_email" or "invalid_date:decision_date".
    reasons: Mapped[list] = mapped_column(sa.JSON, default=list)
    cells: Mapped[list] = mapped_column(sa.JSON, default=list)
