"""The one lead builder: several at once build each post once; a bad row waits alone."""

from collections import Counter

import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, EventKind, InboxItem, InboxStatus, Lead, LeadEvent, Role
from app.sources import services as sources
from tests.intake_helpers import build_concurrently

ALL = {"all_tenants": True}


def _all(model, *where):
    return db.session.scalars(sa.select(model).where(*where).execution_options(**ALL)).all()


def test_two_builders_at_once_build_each_post_once(app, client, make):
    workspaces = []
    for name in ("North", "South"):
        tenant, _ = make.workspace_with_owner(name=name)
        generators = [make.member(tenant, Role.LEAD_GENERATOR) for _ in range(2)]
        source = sources.create_source(tenant, "Site", "site_form")
        workspaces.append((tenant, generators, source))
    for i in range(30):
        for _, _, source in workspaces:
            # Ten people, each posting three times (no keys): one lead, asked again twice.
            answer = client.post(f"/in/{source.intake_token}", json={"email": f"p{i % 10}@x.org"})
            assert answer.status_code == 202
    errors = build_concurrently(app, builders=4, batch_size=4)
    assert not errors
    items = _all(InboxItem)
    assert len(items) == 60 and {item.status for item in items} == {InboxStatus.ACCEPTED}
    # Each person's first post made a lead; their repeats joined it ("asked again").
    assert len({item.lead_id for item in items}) == 20
    for tenant, generators, _ in workspaces:
        leads = _all(Lead, Lead.tenant_id == tenant.id)
        assert len(leads) == 10
        assert len(_all(Contact, Contact.tenant_id == tenant.id)) == 10
        assert Counter(lead.owner_id for lead in leads) == {g.id: 5 for g in generators}
        asked_again = _all(
            LeadEvent, LeadEvent.tenant_id == tenant.id, LeadEvent.kind == EventKind.ASKED_AGAIN
        )
        assert len(asked_again) == 20


def test_a_row_that_fails_stays_in_the_inbox_with_its_reason_and_the_rest_are_built(
    client, make, login, run_jobs
):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    answers = [
        client.post(
            f"/in/{source.intake_token}",
            json={"name": name, "email": f"{name.lower()}@example.com"},
            headers={"Idempotency-Key": name},
        )
        for name in ("Ann", "Ben", "Cy")
    ]
    assert [answer.status_code for answer in answers] == [202] * 3
    # Ben's stored fields hold what PostgreSQL cannot keep in a text column.
    db.session.execute(
        sa.text(
            "UPDATE inbox_item SET fields = "
            """'{"name": "Be\\u0000n", "email": "ben@example.com", "extra": {}}'::json """
            "WHERE receipt = :receipt"
        ),
        {"receipt": answers[1].json["id"]},
    )
    db.session.commit()
    run_jobs()
    ann, ben, cy = (
        db.session.scalar(
            sa.select(InboxItem)
            .where(InboxItem.receipt == answer.json["id"])
            .execution_options(**ALL)
        )
        for answer in answers
    )
    assert ann.status == cy.status == InboxStatus.ACCEPTED and ann.lead_id and cy.lead_id
    assert ben.status == InboxStatus.REJECTED and ben.reason == "build_failed"
    assert ben.lead_id is None and ben.errors["lead"]
    assert {lead.contact.name for lead in _all(Lead)} == {"Ann", "Cy"}

    # The owner sees why, corrects the name and re-processes it: the builder makes the lead.
    login(owner.email)
    page = client.get(f"/inbox/{ben.id}").text
    assert "Could not become a lead" in page and "Re-process into a lead" in page
    fixed = client.post(f"/inbox/{ben.id}", data={"name": "Ben", "email": "ben@example.com"})
    assert fixed.status_code == 302
    run_jobs()
    db.session.refresh(ben)
    assert ben.status == InboxStatus.ACCEPTED and ben.lead.contact.name == "Ben"
    # Its sender's retry is still the same receipt, and no second lead.
    again = client.post(
        f"/in/{source.intake_token}",
        json={"name": "Ben", "email": "ben@example.com"},
        headers={"Idempotency-Key": "Ben"},
    )
    assert again.json == {"id": answers[1].json["id"], "status": "duplicate"}
    run_jobs()
    assert len(_all(Lead)) == 3
    assert "Ben" in client.get("/board").text
