"""Winning with promises, the account manager's hand-off inbox, clients, rules, handover."""

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.conveyor import services as conveyor
from app.extensions import db
from app.models import AuditEntry, Conflict, ConflictKind, Lead, Promise, PromiseStatus, Role, Stage

ALL = {"all_tenants": True}


@pytest.fixture
def team(make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    closer = make.member(tenant, Role.CLOSER)
    manager_a = make.member(tenant, Role.ACCOUNT_MANAGER)
    manager_b = make.member(tenant, Role.ACCOUNT_MANAGER)
    return tenant, owner, closer, manager_a, manager_b


def _win(client, deal, promises, value="2500", manager=0):
    data = {"value": value, "account_manager_id": str(manager)}
    for i, (text, discount) in enumerate(promises):
        data[f"promises-{i}-text"] = text
        data[f"promises-{i}-discount_percent"] = "" if discount is None else str(discount)
    return client.post(f"/deals/{deal.id}/win", data=data)


def test_winning_hands_the_client_to_the_least_loaded_account_manager_with_promises(
    client, login, make, team
):
    tenant, owner, closer, manager_a, manager_b = team
    make.lead(tenant, "Client", owner=manager_a)
    deal = make.lead(tenant, "Negotiation", owner=closer)
    login(closer.email)
    page = client.get(f"/deals/{deal.id}/win")
    assert page.status_code == 200 and "promises-2-text" in page.text
    response = _win(
        client, deal, [("Free delivery in December", None), ("Price locked for a year", 5)]
    )
    assert response.status_code == 302
    db.session.refresh(deal)
    assert deal.stage.phase.value == "account" and deal.owner_id == manager_b.id
    assert deal.value_minor == 250000 and deal.won_at is not None
    assert deal.next_touch_on == conveyor.local_today(tenant) + timedelta(days=7)
    promises = db.session.scalars(
        sa.select(Promise).where(Promise.lead_id == deal.id).execution_options(**ALL)
    ).all()
    assert [p.text for p in promises] == ["Free delivery in December", "Price locked for a year"]
    assert db.session.scalar(sa.select(sa.func.count(Conflict.id)).execution_options(**ALL)) == 0
    # The closer no longer sees the client: it belongs to account management now.
    assert client.get(f"/deals/{deal.id}").status_code == 404


def test_a_discount_beyond_the_closers_authority_becomes_a_conflict(client, login, make, team):
    tenant, owner, closer, *_ = team
    deal = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    _win(client, deal, [("Half price", 50)])
    conflict = db.session.scalar(sa.select(Conflict).execution_options(**ALL))
    assert conflict.kind == ConflictKind.PROMISE_BEYOND_AUTHORITY and conflict.user_id == closer.id
    assert conflict.details["discount_percent"] == 50 and conflict.details["limit"] == 10


def test_the_account_manager_accepts_one_promise_and_flags_another(client, login, make, team):
    tenant, owner, closer, manager_a, _ = team
    deal = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    _win(
        client,
        deal,
        [("Free delivery", None), ("Delivery at 5 am daily", None)],
        manager=manager_a.id,
    )
    client.post("/logout")
    login(manager_a.email)
    inbox = client.get("/handoffs").text
    keep, cannot = db.session.scalars(
        sa.select(Promise).order_by(Promise.id).execution_options(**ALL)
    ).all()
    assert f'id="promise-{keep.id}"' in inbox and f'id="promise-{cannot.id}"' in inbox
    client.post(f"/promises/{keep.id}/accept")
    empty_reason = client.post(
        f"/promises/{cannot.id}/flag", data={"reason": ""}, follow_redirects=True
    )
    assert "Say why the promise cannot be kept" in empty_reason.text
    client.post(f"/promises/{cannot.id}/flag", data={"reason": "Our van starts at 7"})
    db.session.refresh(keep)
    db.session.refresh(cannot)
    assert keep.status == PromiseStatus.ACCEPTED and cannot.status == PromiseStatus.FLAGGED
    conflict = db.session.scalar(sa.select(Conflict).execution_options(**ALL))
    assert (
        conflict.kind == ConflictKind.PROMISE_FLAGGED
        and conflict.details["reason"] == "Our van starts at 7"
    )
    assert conflict.user_id == closer.id  # the one who made the promise
    assert "No promises waiting" in client.get("/handoffs").text


def test_hand_offs_and_conflicts_name_the_person_and_the_deal_never_an_id(
    client, login, make, team
):
    tenant, owner, closer, manager_a, _ = team
    deal = make.lead(tenant, "Proposal", owner=closer)
    deal.contact.name, deal.title = "Anna Petrova", "Flour for the winter"
    db.session.commit()
    login(closer.email)
    _win(client, deal, [("Half price", 50), ("Free delivery", None)], manager=manager_a.id)
    client.post("/logout")
    login(manager_a.email)
    inbox = client.get("/handoffs").text
    handoff = re.search(rf'id="handoff-{deal.id}".*?</section>', inbox, re.S).group(0)
    assert "Anna Petrova" in handoff and "Flour for the winter" in handoff
    assert f'href="/deals/{deal.id}"' in handoff and closer.name in handoff
    assert handoff.count('id="promise-') == 2  # both promises under their one client
    assert f"#{deal.id}" not in re.sub(r'(id|href|for|action)="[^"]*"', "", inbox)
    client.post("/logout")
    login(owner.email)
    conflict = db.session.scalar(sa.select(Conflict).execution_options(**ALL))
    page = client.get(f"/conflicts/{conflict.id}").text
    details = re.search(r'id="conflict-details".*?</dl>', page, re.S).group(0)
    assert "Anna Petrova" in details and "Flour for the winter" in details
    assert f'href="/deals/{deal.id}"' in details and closer.name in details
    assert f"#{deal.id}" not in re.sub(r'(id|href|for|action)="[^"]*"', "", page)
    listed = client.get("/conflicts").text
    row = re.search(rf'id="conflict-{conflict.id}".*?</tr>', listed, re.S).group(0)
    assert "Anna Petrova · Flour for the winter" in row and f'href="/deals/{deal.id}"' in row


def test_another_account_manager_cannot_decide_someone_elses_promise(client, login, make, team):
    tenant, owner, closer, manager_a, manager_b = team
    deal = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    _win(client, deal, [("Free delivery", None)], manager=manager_a.id)
    client.post("/logout")
    promise = db.session.scalar(sa.select(Promise).execution_options(**ALL))
    login(manager_b.email)
    assert client.post(f"/promises/{promise.id}/accept").status_code == 404
    db.session.refresh(promise)
    assert promise.status == PromiseStatus.PENDING


def test_clients_list_shows_due_and_overdue_and_only_ones_own(client, login, make, team):
    tenant, owner, _, manager_a, manager_b = team
    today = conveyor.local_today(tenant)
    overdue = make.lead(tenant, "Client", owner=manager_a)
    overdue.next_touch_on = today - timedelta(days=2)
    later = make.lead(tenant, "Client", owner=manager_a)
    later.next_touch_on = today + timedelta(days=5)
    someone_elses = make.lead(tenant, "Client", owner=manager_b)
    db.session.commit()
    login(manager_a.email)
    page = client.get("/clients").text
    order = re.findall(r'id="client-(\d+)"', page)
    assert order == [str(overdue.id), str(later.id)]
    assert "overdue" in page and f'id="client-{someone_elses.id}"' not in page
    assert client.get("/clients/export.csv").status_code == 404


def test_only_the_owner_exports_clients_as_csv(client, login, make, team):
    tenant, owner, closer, manager_a, _ = team
    lead = make.lead(tenant, "Client", owner=manager_a)
    lead.contact.name = "=HYPERLINK(evil)"
    db.session.commit()
    login(closer.email)
    assert client.get("/clients/export.csv").status_code == 404
    assert client.get("/clients").status_code == 404
    client.post("/logout")
    login(owner.email)
    response = client.get("/clients/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert (
        rows[0][0] == "name" and rows[1][0] == "'=HYPERLINK(evil)" and rows[1][4] == manager_a.name
    )


def test_new_sale_from_a_client_opens_a_deal_in_conversion(client, login, make, team):
    tenant, owner, closer, manager_a, _ = team
    existing = make.lead(tenant, "Client", owner=manager_a)
    login(manager_a.email)
    client.post(f"/clients/{existing.id}/new-sale")
    deal = db.session.scalar(
        sa.select(Lead)
        .where(Lead.contact_id == existing.contact_id, Lead.id != existing.id)
        .execution_options(**ALL)
    )
    assert deal.stage.phase.value == "conversion" and deal.owner_id == closer.id


def test_owner_writes_rules_and_reorders_stages(client, login, make, team):
    tenant, owner, *_ = team
    login(owner.email)
    bad = client.post(
        "/rules",
        data={
            "max_discount_percent": "150",
            "closer_daily_capacity": "5",
            "queue_size": "20",
            "touch_cadence_days": "7",
            "assignment_mode": "round_robin",
        },
    )
    assert bad.status_code == 422
    client.post(
        "/rules",
        data={
            "max_discount_percent": "15",
            "closer_daily_capacity": "5",
            "queue_size": "12",
            "touch_cadence_days": "10",
            "assignment_mode": "round_robin",
        },
    )
    db.session.refresh(tenant)
    assert (tenant.max_discount_percent, tenant.closer_daily_capacity, tenant.queue_size) == (
        15,
        5,
        12,
    )
    assert tenant.assignment_mode == "round_robin"
    stages = db.session.scalars(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id)
        .order_by(Stage.position)
        .execution_options(**ALL)
    ).all()
    client.post(f"/rules/stages/{stages[1].id}", data={"name": "Called", "rot_days": "2"})
    client.post(f"/rules/stages/{stages[1].id}/move", data={"direction": "up"})
    client.post(
        f"/rules/stages/{stages[2].id}/move", data={"direction": "down"}
    )  # Qualified is last of its phase
    names = db.session.scalars(
        sa.select(Stage.name)
        .where(Stage.tenant_id == tenant.id)
        .order_by(Stage.position)
        .execution_options(**ALL)
    ).all()
    assert names[:4] == ["Called", "New", "Qualified", "Assigned"]


def test_only_the_owner_sees_rules(client, login, make, team):
    tenant, owner, closer, *_ = team
    login(closer.email)
    assert client.get("/rules").status_code == 404


def test_handover_splits_open_work_by_load_and_keeps_history(client, login, make, team):
    tenant, owner, _, manager_a, manager_b = team
    manager_c = make.member(tenant, Role.ACCOUNT_MANAGER)
    for _ in range(2):
        make.lead(tenant, "Client", owner=manager_b)
    for _ in range(5):
        make.lead(tenant, "Client", owner=manager_a)
    login(owner.email)
    leaving = make.membership_of(tenant, manager_a)
    page = client.get(f"/team/members/{leaving.id}/handover").text
    assert "5 open leads" in page
    client.post(
        f"/team/members/{leaving.id}/handover",
        data={"recipients": [str(manager_b.id), str(manager_c.id)]},
    )
    db.session.refresh(leaving)
    assert leaving.active is False
    counts = dict(
        db.session.execute(
            sa.select(Lead.owner_id, sa.func.count(Lead.id))
            .where(Lead.tenant_id == tenant.id)
            .group_by(Lead.owner_id)
            .execution_options(**ALL)
        ).all()
    )
    assert manager_a.id not in counts and counts[manager_b.id] + counts[manager_c.id] == 7
    assert abs(counts[manager_b.id] - counts[manager_c.id]) <= 1
    audit = db.session.scalar(sa.select(AuditEntry).execution_options(**ALL))
    assert audit.action == "handover" and audit.data["moved"] == 5


def test_handover_needs_someone_to_take_the_work(client, login, make, team):
    tenant, owner, closer, *_ = team
    make.lead(tenant, "Proposal", owner=closer)
    login(owner.email)
    leaving = make.membership_of(tenant, closer)
    page = client.post(f"/team/members/{leaving.id}/handover", data={}, follow_redirects=True)
    assert "Choose at least one teammate" in page.text
    db.session.refresh(leaving)
    assert leaving.active
