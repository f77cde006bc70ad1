"""Turning a mapped import into contacts and leads, one committed batch at a time.

Each batch's good rows become leads through the one lead builder
(``app.builder.leads``: a handful of statements whatever the batch's size); its
refused rows are written with ``COPY``, and one guarded update of the job's counters
goes in the same commit. A re-run resumes after the last committed batch; a second
run racing the first loses the guarded update and stops without writing.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfoNotFoundError

import sqlalchemy as sa

from app import clock
from app.builder.bulk import insert_rows
from app.builder.leads import LeadDraft, build_leads
from app.extensions import db
from app.imports import judging, reading
from app.imports.rows import JudgedRow
from app.intake.services import phone_region
from app.models import (
    ImportJob,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Phase,
    Tenant,
)
from app.pipeline import first_stage
from app.policy import users_who

BATCH_SIZE = 5000
# An import with this many rows still to go after its first batch analyses ``contact``.
ANALYZE_AFTER = 20_000


@dataclass
class Destination:
    """Where this import's rows land: the stage, who owns them, when to touch them next."""

    tenant_id: int
    mode: ImportMode
    stage_id: int
    region: str
    today: date
    touch_cadence_days: int
    default_account_manager_id: int | None
    account_managers: dict[str, int]  # active account managers: email -> user id


def run(tenant: Tenant, job: ImportJob) -> None:
    """Import every row not yet committed, then mark the job done. Commits per batch."""
    job.status = ImportStatus.RUNNING
    job.started_at = job.started_at or clock.now()
    job.error = None
    db.session.commit()
    destination = plan_destination(tenant, job)
    content = db.session.scalar(sa.select(ImportJob.content).where(ImportJob.id == job.id))
    layout = reading.CsvLayout(job.encoding, job.delimiter, list(job.headers))
    job_id, done, total = job.id, job.rows_done, job.rows_total
    batches = judging.judged_ahead(
        content,
        layout,
        dict(job.mapping),
        destination.region,
        skip=done,
        size=BATCH_SIZE,
        rows_left=total - done,
    )
    with batches as judged_batches:
        for number, judged in enumerate(judged_batches):
            if not load_batch(job_id, destination, judged, expected_done=done):
                db.session.rollback()
                return
            db.session.commit()
            done += len(judged)
            if number == 0 and total - done >= ANALYZE_AFTER:
                # The next batches' contact lookups are planned on what is there now (only
                # their columns: search_text's finer statistics sample ten times the rows).
                db.session.execute(sa.text("ANALYZE contact (tenant_id, email, phone)"))
                db.session.commit()
    job.status = ImportStatus.DONE
    job.finished_at = clock.now()
    db.session.commit()


def plan_destination(tenant: Tenant, job: ImportJob) -> Destination:
    if job.mode == ImportMode.CLIENTS:
        stage_id = first_stage(tenant.id, Phase.ACCOUNT).id
    else:
        stage_id = first_stage(tenant.id, Phase.GENERATION).id
    return Destination(
        tenant_id=tenant.id,
        mode=job.mode,
        stage_id=stage_id,
        region=phone_region(tenant),
        today=_today_in(tenant.timezone),
        touch_cadence_days=tenant.touch_cadence_days,
        default_account_manager_id=job.default_account_manager_id,
        account_managers=active_account_managers(tenant.id),
    )


def active_account_managers(tenant_id: int) -> dict[str, int]:
    """Email -> user id of the workspace's active account managers."""
    return {user.email.lower(): user.id for user in users_who(tenant_id, "work.clients")}


def _today_in(timezone: str) -> date:
    try:
        return clock.today(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return clock.today("UTC")


def load_batch(
    job_id: int, destination: Destination, rows: list[JudgedRow], expected_done: int
) -> bool:
    """Write one batch and advance the job's counters; False when another run got there first."""
    good = [row for row in rows if row.ok]
    rejected = [row for row in rows if not row.ok]
    now = clock.now()
    # A batch lost in a crash is lost with its job counters (one transaction): the import
    # resumes before it. So its commit need not wait for the disk.
    db.session.execute(sa.text("SET LOCAL synchronous_commit = off"))
    built = build_leads(
        destination.tenant_id,
        [_draft(destination, row) for row in good],
        destination.stage_id,
        route=destination.mode == ImportMode.LEADS,
        now=now,
    )
    if rejected:
        insert_rows(
            ImportRejection.__table__,
            [
                {
                    "tenant_id": destination.tenant_id,
                    "import_id": job_id,
                    "row_number": row.row_number,
                    "reasons": row.reasons,
                    "cells": row.cells,
                }
                for row in rejected
            ],
        )
    advanced = db.session.execute(
        sa.update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.rows_done == expected_done)
        .values(
            rows_done=expected_done + len(rows),
            rows_imported=ImportJob.rows_imported + len(built),
            rows_merged=ImportJob.rows_merged + sum(1 for lead in built if lead.merged),
            rows_rejected=ImportJob.rows_rejected + len(rejected),
        )
        .execution_options(synchronize_session=False)
    )
    return advanced.rowcount == 1


def _draft(destination: Destination, row: JudgedRow) -> LeadDraft:
    """The lead a good row asks for; a client goes to its account manager, touched next
    a cadence after its last touch (today when it has none)."""
    last_touch = row.dates.get("last_touch_date")
    draft = LeadDraft(
        name=row.values.get("name") or "",
        email=row.email,
        phone=row.phone,
        company=row.values.get("company") or None,
        message=row.values.get("message"),
        budget=row.values.get("budget"),
        external_id=row.values.get("external_id"),
        decision_date=row.dates.get("decision_date"),
        extra=row.extra,
        last_touch_at=datetime.combine(last_touch, time(), UTC) if last_touch else None,
    )
    if destination.mode == ImportMode.CLIENTS:
        draft.owner_id = destination.account_managers.get(
            row.account_manager_email or "", destination.default_account_manager_id
        )
        draft.next_touch_on = (
            last_touch + timedelta(days=destination.touch_cadence_days)
            if last_touch
            else destination.today
        )
    return draft
