"""Importing a client base from CSV: keep the upload, map it, start it, report what was refused."""

import csv
import io

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app import clock, csvfile
from app.extensions import db
from app.imports import loading, reading
from app.imports.rows import describe_reason
from app.models import (
    ImportJob,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Tenant,
    User,
)
from app.policy import users_who
from app.queue import enqueue

MAPPABLE = (ImportStatus.UPLOADED, ImportStatus.READY)
STARTABLE = (ImportStatus.READY, ImportStatus.FAILED)
# Resumable, so a timeout only pauses it: starting again continues after the last batch.
JOB_TIMEOUT_SECONDS = 2 * 3600
STATUS_LABELS = {
    ImportStatus.UPLOADED: _l("Columns not mapped yet"),
    ImportStatus.READY: _l("Ready to import"),
    ImportStatus.QUEUED: _l("Waiting to start"),
    ImportStatus.RUNNING: _l("Importing"),
    ImportStatus.DONE: _l("Done"),
    ImportStatus.FAILED: _l("Stopped by an error"),
}
MODE_LABELS = {
    ImportMode.LEADS: _l("New leads"),
    ImportMode.CLIENTS: _l("Existing clients"),
}


class ImportStateError(ValueError):
    """The import is past the step that was asked for."""


def list_imports(tenant: Tenant) -> list[ImportJob]:
    """The workspace's imports, newest first (without their files)."""
    return list(
        db.session.scalars(
            sa.select(ImportJob)
            .where(ImportJob.tenant_id == tenant.id)
            .order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
        )
    )


def store_upload(tenant: Tenant, actor: User, filename: str, content: bytes) -> ImportJob:
    """Keep the file with how to read it and a guessed mapping. Commits.

    Raises ``reading.UnreadableFile`` when it is not a CSV with rows under a header.
    """
    layout = reading.read_layout(content)
    try:
        total = reading.count_rows(content, layout)
    except csv.Error as error:
        raise reading.UnreadableFile(
            _l("The file could not be read: %(error)s", error=error)
        ) from None
    if total == 0:
        raise reading.UnreadableFile(_l("The file has a header but no rows under it."))
    job = ImportJob(
        tenant_id=tenant.id,
        created_by_id=actor.id,
        filename=(filename or "upload.csv")[:255],
        content=content,
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        headers=layout.headers,
        rows_total=total,
        mapping=reading.guess_mapping(layout.headers),
    )
    db.session.add(job)
    db.session.commit()
    return job


def preview_rows(job: ImportJob) -> list[list[str]]:
    return reading.preview(job.content, _layout(job))


def _layout(job: ImportJob) -> reading.CsvLayout:
    return reading.CsvLayout(job.encoding, job.delimiter, list(job.headers))


def account_managers(tenant: Tenant) -> list[User]:
    """Active account managers, by name: who may own imported clients."""
    return users_who(tenant.id, "work.clients")


def save_mapping(
    job: ImportJob,
    mapping: dict[str, int],
    mode: ImportMode,
    default_account_manager_id: int | None,
) -> ImportJob:
    """Record which column feeds which field and where the rows go. Commits."""
    if job.status not in MAPPABLE:
        raise ImportStateError(_l("This import has started; its columns can no longer change."))
    job.mapping = mapping
    job.mode = mode
    job.default_account_manager_id = (
        default_account_manager_id if mode == ImportMode.CLIENTS else None
    )
    job.status = ImportStatus.READY
    db.session.commit()
    return job


def start_import(job: ImportJob) -> None:
    """Queue the import (or resume a stopped one) for the worker. Commits, then enqueues."""
    if job.status not in STARTABLE:
        raise ImportStateError(_l("This import cannot be started now."))
    job.status = ImportStatus.QUEUED
    job.error = None
    db.session.commit()
    enqueue("app.tasks.imports.run_import", job.tenant_id, job.id, job_timeout=JOB_TIMEOUT_SECONDS)


def run_import(tenant: Tenant, job: ImportJob) -> bool:
    """Import the rows not yet committed; a failure is recorded on the job, then re-raised."""
    if job.status in MAPPABLE or job.status == ImportStatus.DONE:
        return False
    try:
        loading.run(tenant, job)
    except Exception as error:
        db.session.rollback()
        job.status = ImportStatus.FAILED
        job.error = f"{type(error).__name__}: {error}"[:500]
        job.finished_at = clock.now()
        db.session.commit()
        raise
    return True


def first_rejections(job: ImportJob, limit: int = 10) -> list[ImportRejection]:
    return list(
        db.session.scalars(
            sa.select(ImportRejection)
            .where(ImportRejection.tenant_id == job.tenant_id, ImportRejection.import_id == job.id)
            .order_by(ImportRejection.row_number)
            .limit(limit)
        )
    )


def rejected_rows_csv(job: ImportJob) -> bytes:
    """Every refused row with its reasons and its cells as uploaded.

    UTF-8 with a BOM and the file's own delimiter, so the spreadsheet that made
    the file opens the report the same way; fix the cells and import it again.
    """
    output = io.StringIO()
    writer = csvfile.writer(output, delimiter=job.delimiter, lineterminator="\r\n")
    writer.writerow([_("Row"), _("Reason"), *job.headers])
    rejections = db.session.execute(
        sa.select(ImportRejection.row_number, ImportRejection.reasons, ImportRejection.cells)
        .where(ImportRejection.tenant_id == job.tenant_id, ImportRejection.import_id == job.id)
        .order_by(ImportRejection.row_number)
    )
    for row_number, reasons, cells in rejections:
        writer.writerow([row_number, "; ".join(map(describe_reason, reasons)), *cells])
    return output.getvalue().encode("utf-8-sig")
