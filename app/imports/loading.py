"""Turning a mapped import into contacts and leads, one committed batch at a time.

Each batch costs a handful of queries whatever its size: two lookups of the
contacts it may merge with (by email, by phone), one of the lead generators it
rotates through, bulk inserts of new contacts, leads and rejected rows (``COPY``
on PostgreSQL), and one guarded update of the job's counters in the same commit.
A re-run resumes after the last committed batch; a second run racing the first
loses the guarded update and stops without writing.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from app.extensions import db
from app.imports import reading
from app.imports.bulk import insert_rows
from app.imports.people import ContactBook, LeadRotation
from app.imports.rows import JudgedRow, RowJudge
from app.intake.services import phone_region
from app.models import (
    ImportJob,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Lead,
    Membership,
    Phase,
    Role,
    Tenant,
    User,
    utcnow,
)
from app.pipeline import first_stage
from app.tenancy import ALL_TENANTS

BATCH_SIZE = 1000


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
    job.started_at = job.started_at or utcnow()
    job.error = None
    db.session.commit()
    destination = plan_destination(tenant, job)
    content = db.session.scalar(sa.select(ImportJob.content).where(ImportJob.id == job.id))
    layout = reading.CsvLayout(job.encoding, job.delimiter, list(job.headers))
    job_id, done = job.id, job.rows_done
    judge = RowJudge(dict(job.mapping), layout.headers, destination.region)
    remaining = itertools.islice(reading.data_rows(content, layout), done, None)
    for batch in _batches(remaining, BATCH_SIZE):
        judged = judge.judge_batch(batch)
        if not load_batch(job_id, destination, judged, expected_done=done):
            db.session.rollback()
            return
        db.session.commit()
        done += len(batch)
    job.status = ImportStatus.DONE
    job.finished_at = utcnow()
    db.session.commit()


def _batches(rows: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    while batch := list(itertools.islice(rows, size)):
        yield batch


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
    rows = db.session.execute(
        sa.select(User.email, User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.tenant_id == tenant_id,
            Membership.role == Role.ACCOUNT_MANAGER,
            Membership.active.is_(True),
        )
        .execution_options(**ALL_TENANTS)
    )
    return {email.lower(): user_id for email, user_id in rows}


def _today_in(timezone: str) -> date:
    try:
        return datetime.now(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.now(UTC).date()


def load_batch(
    job_id: int, destination: Destination, rows: list[JudgedRow], expected_done: int
) -> bool:
    """Write one batch and advance the job's counters; False when another run got there first."""
    good = [row for row in rows if row.ok]
    rejected = [row for row in rows if not row.ok]
    book = ContactBook(destination.tenant_id, good)
    rotation = LeadRotation(destination.tenant_id) if destination.mode == ImportMode.LEADS else None
    now = utcnow()
    placed = [(row, *book.find_or_add(row)) for row in good]
    db.session.flush()  # what rows filled in on contacts already stored
    book.insert_new()
    leads = [
        _lead_values(destination, row, contact.id, rotation, now) for row, contact, _ in placed
    ]
    # Bulk inserts on the tables: the ORM's per-row bookkeeping would double the cost.
    insert_rows(Lead.__table__, leads)
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
    if rotation is not None:
        rotation.record(now)
    advanced = db.session.execute(
        sa.update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.rows_done == expected_done)
        .values(
            rows_done=expected_done + len(rows),
            rows_imported=ImportJob.rows_imported + len(leads),
            rows_merged=ImportJob.rows_merged + sum(1 for *_, merged in placed if merged),
            rows_rejected=ImportJob.rows_rejected + len(rejected),
        )
        .execution_options(synchronize_session=False)
    )
    return advanced.rowcount == 1


def _lead_values(
    destination: Destination,
    row: JudgedRow,
    contact_id: int,
    rotation: LeadRotation | None,
    now: datetime,
) -> dict:
    last_touch = row.dates.get("last_touch_date")
    if rotation is not None:
        owner_id, next_touch_on = rotation.next_user_id(), None
    else:
        owner_id = destination.account_managers.get(
            row.account_manager_email or "", destination.default_account_manager_id
        )
        next_touch_on = (
            last_touch + timedelta(days=destination.touch_cadence_days)
            if last_touch
            else destination.today
        )
    return {
        "tenant_id": destination.tenant_id,
        "contact_id": contact_id,
        "source_id": None,
        "stage_id": destination.stage_id,
        "owner_id": owner_id,
        "title": row.title,
        "value_minor": 0,
        "message": row.values.get("message") or None,
        "budget": row.values.get("budget") or None,
        "external_id": row.values.get("external_id") or None,
        "decision_date": row.dates.get("decision_date"),
        "next_touch_on": next_touch_on,
        "last_activity_at": datetime.combine(last_touch, time(), UTC) if last_touch else now,
        "last_touch_at": datetime.combine(last_touch, time(), UTC) if last_touch else None,
        "utm": {},
        "extra": row.extra,
        "flagged": False,
        "created_at": now,
    }
