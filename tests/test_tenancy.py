"""A member of one workspace never reaches another workspace's rows.

The harness walks ``app.url_map``: every route that takes an id must have a
builder below that creates a row in workspace A; a signed-in owner of workspace
B must get 404 for it with every method the route accepts. A new id-taking
route without a builder fails ``test_every_id_route_is_covered``.
"""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Invitation, Lead, Role
from app.tenancy import tenant_scope
from app.workspace import services as workspace


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


# endpoint -> builder(tenant_a, owner_a, factories) -> URL values naming A's row
ID_ROUTES = {
    "workspace.resend_invitation": _invitation,
    "workspace.revoke_invitation": _invitation,
    "workspace.deactivate_member": _membership,
    "workspace.reactivate_member": _membership,
    "workspace.change_role": _membership,
    "workspace.switch": lambda tenant, owner, make: {"tenant_id": tenant.id},
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
    _, owner_b = make.workspace_with_owner(name="Intruder")
    values = ID_ROUTES[endpoint](tenant_a, owner_a, make)
    rule = _id_routes(app)[endpoint]
    login(owner_b.email)
    with app.test_request_context():
        url = app.url_for(endpoint, **values)
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        response = client.open(url, method=method, data={"role": "owner"})
        assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
    # Nothing in workspace A changed.
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
