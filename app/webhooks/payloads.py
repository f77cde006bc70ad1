"""What an event says: versioned JSON with opaque ids, within the endpoint owner's walls.

The payload is built once, when the worker fans the event out, from the rows as they
are then (moments after the change), in the API's own record shapes; every endpoint and
every retry sends the same bytes. Whether an endpoint gets it at all is asked of the
policy for the seat that owns the endpoint.
"""

import sqlalchemy as sa
from pydantic import TypeAdapter

from app.api import ids, records
from app.extensions import db
from app.models import Conflict, Lead, Membership, Promise, Source, Tenant, Touch, WebhookEvent
from app.policy import allows, may_see_lead
from app.tenancy import ALL_TENANTS

VERSION = 1
JSON = TypeAdapter(dict)  # dates and times as the API writes them (ISO 8601)


def _get(model, row_id):
    if row_id is None:
        return None
    return db.session.scalar(
        sa.select(model).where(model.id == row_id).execution_options(**ALL_TENANTS)
    )


def build(event: WebhookEvent) -> dict | None:
    """The event's payload, or None when what it reports is gone."""
    tenant = db.session.get(Tenant, event.tenant_id)
    data: dict = {}
    lead = _get(Lead, event.lead_id)
    if event.lead_id is not None:
        if lead is None:
            return None
        data["lead"] = records.lead_record(lead, tenant)
    if event.type == "client.touch_logged":
        data["touch"] = records.touch_record(_get(Touch, event.subject_id))
    if event.type == "client.touch_overdue":
        data["due_on"] = lead.next_touch_on.isoformat() if lead.next_touch_on else None
    if event.type in ("conflict.opened", "promise.flagged", "source.alert"):
        conflict = _get(Conflict, event.subject_id)
        if conflict is None:
            return None
        data["conflict"] = records.conflict_record(conflict)
        if conflict.promise_id:
            data["promise"] = records.promise_record(_get(Promise, conflict.promise_id))
        if conflict.source_id:
            data["source"] = records.source_record(_get(Source, conflict.source_id))
    return JSON.dump_python(
        {
            "type": event.type,
            "version": VERSION,
            "id": ids.encode("event", event.id),
            "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        mode="json",
    )


def visible_to(membership: Membership, event: WebhookEvent) -> bool:
    """May the seat behind the endpoint see what the event tells?"""
    if not allows(membership, "integrations.manage"):
        return False
    radar = event.type in ("conflict.opened", "promise.flagged", "source.alert")
    if radar and not allows(membership, "radar.view"):
        return False
    if event.lead_id is not None:
        lead = _get(Lead, event.lead_id)
        return lead is not None and may_see_lead(membership, lead, lead.stage)
    return True
