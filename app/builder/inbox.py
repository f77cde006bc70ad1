"""Turning accepted posts (pending inbox rows) into leads, a batch at a time.

Several builders may run at once: each claims its rows with ``FOR UPDATE SKIP
LOCKED`` and marks them built in the same transaction, so no post is built twice.
A workspace's rows are built together by ``build_leads``; when that fails, they are
built one by one, and a row that still fails is left in the inbox, rejected with
its reason (the owner can correct and re-process it), while the others are built.
"""

from itertools import groupby

import sqlalchemy as sa
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import load_only

from app import clock
from app.builder.leads import LeadDraft, build_leads, lock_workspace
from app.extensions import db
from app.intake import fields as intake_fields
from app.intake.services import phone_region
from app.models import InboxItem, InboxStatus, Phase, Source, Tenant
from app.money import read_amount
from app.pipeline import first_stage
from app.tenancy import ALL_TENANTS

BATCH_SIZE = 500
# Failures of the connection or the server: the whole batch is retried, nothing is blamed.
RETRYABLE = (OperationalError, InterfaceError)


class BuildError(Exception):
    """A workspace's posts cannot become leads as things stand (the reason is kept)."""


def build_pending(batch_size: int = BATCH_SIZE) -> int:
    """Claim up to ``batch_size`` pending posts, build them, commit. The number claimed."""
    items = db.session.scalars(
        sa.select(InboxItem)
        .options(
            load_only(
                InboxItem.tenant_id,
                InboxItem.source_id,
                InboxItem.fields,
                InboxItem.received_at,
                InboxItem.receipt,
                InboxItem.status,
                InboxItem.flagged,
                InboxItem.reason,
            )
        )
        .where(InboxItem.status == InboxStatus.PENDING)
        .order_by(InboxItem.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .execution_options(**ALL_TENANTS)
    ).all()
    # Workspaces in one order for every builder: their locks are never taken crosswise.
    ordered = sorted(items, key=lambda item: (item.tenant_id, item.id))
    for tenant_id, group in groupby(ordered, key=lambda item: item.tenant_id):
        _build_workspace(tenant_id, list(group))
    db.session.commit()
    return len(items)


def _build_workspace(tenant_id: int, items: list[InboxItem]) -> None:
    lock_workspace(tenant_id)
    now = clock.now()
    try:
        drafts = _drafts(tenant_id, items)
    except BuildError as error:
        for item in items:
            _fail(item, "build_failed", {"lead": str(error)})
        return
    ready = [(item, draft) for item, draft in zip(items, drafts, strict=True) if draft]
    if not ready:
        return
    stage = first_stage(tenant_id, Phase.GENERATION)
    try:
        with db.session.begin_nested():
            _build(tenant_id, stage.id, ready, now)
        return
    except RETRYABLE:
        raise
    except Exception:  # noqa: BLE001 - one bad row must not hold back the others
        pass
    for item, draft in ready:
        try:
            with db.session.begin_nested():
                _build(tenant_id, stage.id, [(item, draft)], now)
        except RETRYABLE:
            raise
        except Exception as error:  # noqa: BLE001 - kept with its reason, re-processable
            _fail(item, "build_failed", {"lead": f"{type(error).__name__}: {error}"[:500]})


def _build(tenant_id: int, stage_id: int, ready: list, now) -> None:
    built = build_leads(tenant_id, [draft for _, draft in ready], stage_id, route=True, now=now)
    for (item, _), lead in zip(ready, built, strict=True):
        item.status = InboxStatus.ACCEPTED
        item.lead_id = lead.lead_id
    db.session.flush()
    # Repeats answered before their post was built point at its lead from now on.
    receipts = [item.receipt for item, _ in ready]
    original = sa.orm.aliased(InboxItem)
    db.session.execute(
        sa.update(InboxItem)
        .where(
            InboxItem.tenant_id == tenant_id,
            InboxItem.receipt.in_(receipts),
            InboxItem.status == InboxStatus.DUPLICATE,
            InboxItem.lead_id.is_(None),
            original.receipt == InboxItem.receipt,
            original.status == InboxStatus.ACCEPTED,
        )
        .values(lead_id=original.lead_id)
        .execution_options(synchronize_session=False)
    )


def _drafts(tenant_id: int, items: list[InboxItem]) -> list[LeadDraft | None]:
    """Each post's draft, judged again in its workspace; None for a post that fails."""
    tenant = db.session.get(Tenant, tenant_id)
    if first_stage(tenant_id, Phase.GENERATION) is None:
        raise BuildError("the workspace has no generation stage to put new leads in")
    region = phone_region(tenant)
    sources = {
        source.id: source
        for source in db.session.scalars(
            sa.select(Source)
            .where(Source.id.in_({item.source_id for item in items}))
            .execution_options(**ALL_TENANTS)
        )
    }
    drafts = []
    for item in items:
        fields = dict(item.fields or {})
        judgement = intake_fields.judge({**(fields.pop("extra", None) or {}), **fields}, region)
        if not judgement.ok:
            _fail(item, "invalid_fields", {k: str(v) for k, v in judgement.errors.items()})
            drafts.append(None)
            continue
        values = judgement.fields
        source = sources[item.source_id]
        drafts.append(
            LeadDraft(
                name=values.get("name") or "",
                email=judgement.email,
                phone=judgement.phone,
                company=values.get("company") or None,
                message=values.get("message"),
                budget=values.get("budget"),
                value_minor=read_amount(
                    str((values.get("extra") or {}).get("value") or values.get("budget") or ""),
                    tenant.language,
                    tenant.currency,
                ),
                external_id=values.get("external_id"),
                decision_date=judgement.decision_date,
                utm={k: values[k] for k in intake_fields.UTM_FIELDS if values.get(k)},
                extra=values.get("extra") or {},
                source_id=source.id,
                source_name=source.name,
                flagged=item.flagged,
                key_reused=item.reason == "reused_key",
                arrived_at=item.received_at,
                joins_open_lead=True,
            )
        )
    return drafts


def _fail(item: InboxItem, reason: str, errors: dict) -> None:
    item.status = InboxStatus.REJECTED
    item.reason = reason
    item.errors = errors
