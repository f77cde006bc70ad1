"""A member of one workspace never reaches another workspace's rows.

The harness walks ``app.url_map``: every route that takes an id must have a
builder below that creates a row in workspace A; a signed-in owner of workspace
B must get 404 for it with every method the route accepts. A new id-taking
route without a builder fails ``test_every_id_route_is_covered``.
"""

import pytest
import sqlalchemy as sa

from app.api import ids
from app.extensions import db
from app.imports import services as imports
from app.models import (
    Conflict,
    ConflictKind,
    InboxItem,
    InboxStatus,
    Invitation,
    Lead,
    Promise,
    Role,
    Source,
    Stage,
)
from app.sources import services as sources
from app.tenancy import tenant_scope
from app.workspace import services as workspace
from tests.api_helpers import bearer, token_for


def _invitation(tenant, owner, make):
    invitation = Invitation(
        tenant_id=tenant.id, email="x@example.com", role=Role.CLOSER, invited_by_id=owner.id
    )
    db.session.add(invitation)
    db.session.commit()
    return {"invitation_id": invitation.id}


def _membership(tenant, owner, make):
    closer = make.member(tenant, Role.CLOSER)
    return {"membership_id": make.membership_of(tenant, closer).id}


def _source(tenant, owner, make):
    return {"source_id": sources.create_source(tenant, "Victim source", "partner").id}


def _inbox_item(tenant, owner, make):
    source = sources.create_source(tenant, "Victim inbox", "site_form")
    item = InboxItem(
        tenant_id=tenant.id,
        source_id=source.id,
        body=b"{}",
        content_type="application/json",
        status=InboxStatus.REJECTED,
        reason="invalid_fields",
    )
    db.session.add(item)
    db.session.commit()
    return {"item_id": item.id}


def _deal(tenant, owner, make):
    return {"lead_id": make.lead(tenant, "New", owner=owner).id}


def _stage_of(tenant, owner, make):
    stage = db.session.scalar(
        sa.select(Stage).where(Stage.tenant_id == tenant.id).execution_options(all_tenants=True)
    )
    return {"stage_id": stage.id, "after": "2026-01-01T00:00:00+00:00|1"}


def _import_job(tenant, owner, make):
    job = imports.store_upload(tenant, owner, "clients.csv", b"Name,Email\nAnna,anna@example.com\n")
    return {"import_id": job.id}


def _promise(tenant, owner, make):
    lead = make.lead(tenant, "Client", owner=owner)
    promise = Promise(tenant_id=tenant.id, lead_id=lead.id, text="Free delivery")
    db.session.add(promise)
    db.session.commit()
    return {"promise_id": promise.id}


def _client(tenant, owner, make):
    return {"lead_id": make.lead(tenant, "Client", owner=owner).id}


def _member_with_work(tenant, owner, make):
    closer = make.member(tenant, Role.CLOSER)
    make.lead(tenant, "Proposal", owner=closer)
    return {"membership_id": make.membership_of(tenant, closer).id}


def _conflict(tenant, owner, make):
    conflict = Conflict(tenant_id=tenant.id, kind=ConflictKind.CADENCE_MISSED, details={})
    db.session.add(conflict)
    db.session.commit()
    return {"conflict_id": conflict.id}


def _api(builder, kind="lead"):
    """The row named by the API's opaque id (API routes are sent with the intruder's token)."""

    def build(tenant, owner, make):
        return {
            name: ids.encode(kind, value) for name, value in builder(tenant, owner, make).items()
        }

    return build


def _person(tenant, owner, make):
    return {"person_id": ids.encode("person", make.lead(tenant, "New", owner=owner).contact_id)}


def _token(tenant, owner, make):
    from app.api.tokens import create_token
    from app.models import TokenAccess

    seat = make.membership_of(tenant, owner)
    token, _ = create_token(tenant, owner, "Victim token", TokenAccess.WRITE, seat)
    return {"token_id": token.id}


def _endpoint(tenant, owner, make):
    from app.models import WebhookEndpoint

    endpoint = WebhookEndpoint(
        tenant_id=tenant.id,
        url="https://hooks.example.com/in",
        events=["lead.created"],
        secret="whsec_dmljdGltLXNlY3JldC0xMjM0NTY3ODkw",
        membership_id=make.membership_of(tenant, owner).id,
    )
    db.session.add(endpoint)
    db.session.commit()
    return {"endpoint_id": endpoint.id}


def _delivery(tenant, owner, make):
    from app.models import DeliveryStatus, WebhookDelivery, WebhookEvent

    endpoint_id = _endpoint(tenant, owner, make)["endpoint_id"]
    lead = make.lead(tenant, "New", owner=owner)
    event = WebhookEvent(
        tenant_id=tenant.id,
        type="lead.created",
        resource=f"lead:{lead.id}",
        subject_id=lead.id,
        lead_id=lead.id,
        payload={"type": "lead.created"},
    )
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(
        tenant_id=tenant.id,
        endpoint_id=endpoint_id,
        event_id=event.id,
        resource=event.resource,
        status=DeliveryStatus.FAILED,
    )
    db.session.add(delivery)
    db.session.commit()
    return {"delivery_id": delivery.id}


def _snapshot(tenant):
    """What an intruder must not be able to change in the victim's workspace."""
    rows = db.session.execute(
        sa.select(
            Source.name,
            Source.active,
            Source.intake_token,
            Source.signing_secret,
            Source.partner_report_token,
        )
        .where(Source.tenant_id == tenant.id)
        .order_by(Source.id)
        .execution_options(all_tenants=True)
    ).all()
    leads = db.session.execute(
        sa.select(Lead.stage_id, Lead.owner_id, Lead.problem, Lead.last_activity_at)
        .where(Lead.tenant_id == tenant.id)
        .order_by(Lead.id)
        .execution_options(all_tenants=True)
    ).all()
    stages = db.session.execute(
        sa.select(Stage.name, Stage.position, Stage.rot_days)
        .where(Stage.tenant_id == tenant.id)
        .order_by(Stage.id)
        .execution_options(all_tenants=True)
    ).all()
    promises = db.session.scalars(
        sa.select(Promise.status)
        .where(Promise.tenant_id == tenant.id)
        .execution_options(all_tenants=True)
    ).all()
    items = db.session.scalars(
        sa.select(InboxItem.status)
        .where(InboxItem.tenant_id == tenant.id)
        .execution_options(all_tenants=True)
    ).all()
    conflicts = db.session.execute(
        sa.select(Conflict.status, Conflict.resolution_note)
        .where(Conflict.tenant_id == tenant.id)
        .execution_options(all_tenants=True)
    ).all()
    return rows, items, leads, stages, promises, conflicts


# endpoint -> builder(tenant_a, owner_a, factories) -> URL values naming A's row
ID_ROUTES = {
    "workspace.resend_invitation": _invitation,
    "workspace.revoke_invitation": _invitation,
    "workspace.deactivate_member": _membership,
    "workspace.reactivate_member": _membership,
    "workspace.change_role": _membership,
    "workspace.switch": lambda tenant, owner, make: {"tenant_id": tenant.id},
    "sources.edit": _source,
    "sources.connect": _source,
    "sources.pause": _source,
    "sources.resume": _source,
    "sources.rotate_token": _source,
    "sources.rotate_signing": _source,
    "sources.disable_signing": _source,
    "sources.inbox_item": _inbox_item,
    "imports.mapping": _import_job,
    "imports.start": _import_job,
    "imports.show": _import_job,
    "imports.progress": _import_job,
    "imports.rejected_report": _import_job,
    "conveyor.more_cards": _stage_of,
    "radar.conflict": _conflict,
    "radar.partner_link": _source,
    "radar.revoke_partner_link": _source,
    "conveyor.win": _deal,
    "people.person": lambda tenant, owner, make: {"contact_id": make.lead(tenant).contact_id},
    "people.merge": lambda tenant, owner, make: {"contact_id": make.lead(tenant).contact_id},
    "conveyor.schedule_touch": _deal,
    "conveyor.set_cadence": _client,
    "clients.accept_promise": _promise,
    "clients.flag_promise": _promise,
    "clients.new_sale": _client,
    "clients.churn": _client,
    "workspace.update_stage": _stage_of,
    "workspace.move_stage": _stage_of,
    "workspace.handover": _member_with_work,
    "conveyor.move": _deal,
    "conveyor.lead": _deal,
    "conveyor.qualify": _deal,
    "conveyor.convert": _deal,
    "conveyor.lose": _deal,
    "conveyor.add_note": _deal,
    "conveyor.log_touch": _deal,
    "api.get_lead": _api(_deal),
    "api.update_lead": _api(_deal),
    "api.get_client": _api(_client),
    "api.get_person": _person,
    "integrations.revoke_token": _token,
    "integrations.endpoint": _endpoint,
    "integrations.rotate_secret": _endpoint,
    "integrations.enable": _endpoint,
    "integrations.disable": _endpoint,
    "integrations.delete": _endpoint,
    "integrations.redeliver": _delivery,
}


def _id_routes(app):
    return {
        rule.endpoint: rule
        for rule in app.url_map.iter_rules()
        if any(name.endswith("_id") for name in rule.arguments)
    }


def test_every_id_route_is_covered(app):
    missing = sorted(set(_id_routes(app)) - set(ID_ROUTES))
    assert not missing, f"add these routes to ID_ROUTES in tests/test_tenancy.py: {missing}"


@pytest.mark.parametrize("endpoint", sorted(ID_ROUTES))
def test_another_workspace_gets_404(app, client, make, login, endpoint):
    tenant_a, owner_a = make.workspace_with_owner(name="Victim")
    tenant_b, owner_b = make.workspace_with_owner(name="Intruder")
    values = ID_ROUTES[endpoint](tenant_a, owner_a, make)
    rule = _id_routes(app)[endpoint]
    before = _snapshot(tenant_a)
    login(owner_b.email)
    with app.test_request_context():
        url = app.url_for(endpoint, **values)
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        data = {
            "role": "owner",
            "name": "Hijacked",
            "kind": "ad",
            "cost": "1",
            "email": "x@example.com",
        }
        if endpoint.startswith("api."):  # the API takes tokens, not the session
            headers = bearer(token_for(tenant_b, owner_b))
            body = {"problem": "Hijacked"}
            response = client.open(url, method=method, json=body, headers=headers)
        else:
            response = client.open(url, method=method, data=data)
        assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
    # Nothing in workspace A changed.
    assert _snapshot(tenant_a) == before
    members = workspace.members(tenant_a)
    assert all(m.active for m in members)
    assert {m.role for m in members} <= {Role.OWNER, Role.CLOSER}


def test_orm_safety_net_hides_other_workspaces_rows(app, make):
    tenant_a, _ = make.workspace_with_owner()
    tenant_b, _ = make.workspace_with_owner()
    mine = make.lead(tenant_b, "New")
    make.lead(tenant_a, "New")
    with tenant_scope(tenant_b.id):
        visible = db.session.scalars(sa.select(Lead)).all()
        assert [lead.id for lead in visible] == [mine.id]
        assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1
