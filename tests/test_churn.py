"""A client who stops buying is churned, never a lost deal (hole 5).

An account manager could close a won client as Lost: the client left the base and
counted as junk against its source and partner. Now the owner or the client's account
manager marks them churned with a reason; they stay in the base (a filter shows them)
and in history, and the radar and the partner report never count them.
"""

import re
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.models import EventKind, Lead, LeadEvent, Role

ALL = {"all_tenants": True}


def _client_from(make, tenant, source, manager):
    client = make.lead(tenant, "Client", owner=manager)
    client.source_id = source.id
    client.qualified_at = client.won_at = datetime.now(UTC)
    db.session.commit()
    return client


def _fresh(lead) -> Lead:
    db.session.expire_all()
    return db.session.get(Lead, lead.id)


def test_nobody_closes_a_client_as_lost(client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    source = make.source(tenant, "Banner partner")
    won = _client_from(make, tenant, source, manager)
    login(manager.email)
    page = client.get(f"/deals/{won.id}")
    assert "Close as lost" not in page.text and 'id="lose-form"' not in page.text
    assert client.post(f"/deals/{won.id}/lose", data={"reason": "junk"}).status_code == 404
    client.post("/logout")
    login(owner.email)
    assert "Close as lost" not in client.get(f"/deals/{won.id}").text
    refused = client.post(f"/deals/{won.id}/lose", data={"reason": "junk"})
    assert refused.status_code == 422
    assert "A client is never a lost deal" in refused.text
    after = _fresh(won)
    assert after.lost_reason is None and after.stage.phase.value == "account"
    assert f'id="client-{won.id}"' in client.get("/clients").text


def test_the_account_manager_marks_a_client_churned_with_a_reason(client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    source = make.source(tenant, "Banner partner")
    gone = _client_from(make, tenant, source, manager)
    staying = _client_from(make, tenant, source, manager)
    login(manager.email)
    page = client.get(f"/deals/{gone.id}")
    assert 'id="churn-form"' in page.text and "Mark as churned" in page.text
    # "Other" needs a word on what happened.
    client.post(f"/clients/{gone.id}/churn", data={"reason": "other"})
    assert _fresh(gone).churned_at is None
    response = client.post(
        f"/clients/{gone.id}/churn", data={"reason": "competitor", "note": "Cheaper flour"}
    )
    assert response.status_code == 302
    page = client.get(f"/deals/{gone.id}").text
    assert "Marked churned" in page and "Went to a competitor" in page
    assert "marked the client churned" in page and "Cheaper flour" in page
    assert 'id="churn-form"' not in page
    # Out of the buying list and the touches due, in the churned filter.
    buying = client.get("/clients").text
    assert f'id="client-{staying.id}"' in buying and f'id="client-{gone.id}"' not in buying
    churned = client.get("/clients?status=churned").text
    assert f'id="client-{gone.id}"' in churned and f'id="client-{staying.id}"' not in churned
    after = _fresh(gone)
    assert after.next_touch_on is None and after.stage.phase.value == "account"
    assert after.lost_reason is None and after.won_at is not None
    assert db.session.scalar(
        sa.select(sa.func.count(LeadEvent.id))
        .where(LeadEvent.lead_id == gone.id, LeadEvent.kind == EventKind.CHURNED)
        .execution_options(**ALL)
    )


def test_a_churned_client_never_counts_against_its_source_or_partner(app, client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    source = make.source(tenant, "Banner partner")
    source.partner_report_token = secrets.token_urlsafe(24)
    db.session.commit()
    token = source.partner_report_token
    churned = [_client_from(make, tenant, source, manager) for _ in range(3)]
    login(manager.email)
    for lead in churned:
        answer = client.post(f"/clients/{lead.id}/churn", data={"reason": "closed"})
        assert answer.status_code == 302
    client.post("/logout")
    login(owner.email)
    page = client.get("/radar?days=7").text
    row = re.search(rf'id="figures-{source.id}">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    assert cells[1] == "3" and cells[3] == "0 (0%)"  # three leads, no junk
    report = app.test_client().get(f"/partner/{token}").text
    assert "Junk or fake" not in report and "Closed or moved away" not in report


def test_only_the_clients_own_manager_or_the_owner_churns_them(client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    other_manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    closer = make.member(tenant, Role.CLOSER)
    source = make.source(tenant, "Site")
    won = _client_from(make, tenant, source, manager)
    for outsider in (other_manager, closer):
        login(outsider.email)
        answer = client.post(f"/clients/{won.id}/churn", data={"reason": "price"})
        assert answer.status_code == 404
        client.post("/logout")
    assert _fresh(won).churned_at is None
    login(owner.email)
    assert client.post(f"/clients/{won.id}/churn", data={"reason": "price"}).status_code == 302
    assert _fresh(won).churn_reason == "price"


def test_clients_closed_as_lost_before_come_back_as_churned_clients(app, make):
    """Migration 0012 repairs what the hole did: a won client put in Lost is a churned
    client again, in the client stage, no longer junk of its source."""
    tenant, owner = make.workspace_with_owner(name="Bakery")
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    source = make.source(tenant, "Banner partner")
    harmed = _client_from(make, tenant, source, manager)
    lost_deal = make.lead(tenant, "Proposal")
    ids = {"harmed": harmed.id, "deal": lost_deal.id, "tenant": tenant.id}
    db.session.remove()
    downgrade(directory="migrations", revision="0011_intake_receipts")
    try:
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE lead SET stage_id = (SELECT id FROM stage WHERE tenant_id = :tenant"
                    " AND is_lost), lost_reason = 'junk', lost_note = 'Stopped buying',"
                    " closed_at = won_at + interval '30 days' WHERE id IN (:harmed, :deal)"
                ),
                ids,
            )
    finally:
        upgrade(directory="migrations")
    harmed, lost_deal = _fresh(harmed), db.session.get(Lead, ids["deal"])
    assert harmed.stage.name == "Client" and harmed.lost_reason is None
    assert harmed.churned_at is not None and harmed.churn_note == "junk: Stopped buying"
    assert harmed.closed_at == harmed.won_at
    assert lost_deal.stage.is_lost and lost_deal.lost_reason == "junk"  # never won: a lost deal
