"""Conflict radar: source quality figures, alerts at once, partner reports, conflicts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    InboxItem,
    InboxStatus,
    Notification,
    Role,
    Stage,
)

ALL = {"all_tenants": True}


def _stage(tenant, name):
    return db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.name == name)
        .execution_options(**ALL)
    )


@pytest.fixture
def radar(make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    tenant.quality_window = 5
    db.session.commit()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    partner = make.source(tenant, "Partner", cost=5000)
    return tenant, owner, generator, partner


def _leads(make, tenant, source, count, owner):
    leads = []
    for _ in range(count):
        lead = make.lead(tenant, "New", owner=owner)
        lead.source_id = source.id
        leads.append(lead)
    db.session.commit()
    return leads


def _alerts():
    return db.session.scalars(
        sa.select(Conflict)
        .where(Conflict.kind == ConflictKind.SOURCE_QUALITY)
        .execution_options(**ALL)
    ).all()


def test_a_junk_source_alerts_the_owner_once_on_the_crossing_lead_and_rearms(
    client, login, make, radar, run_jobs, mailbox
):
    tenant, owner, generator, partner = radar
    leads = _leads(make, tenant, partner, 12, generator)
    login(generator.email)
    qualify = {
        "problem": "Flour",
        "money": "confirmed",
        "decision_date": "2026-12-20",
        "value": "0",
    }
    for lead in leads[:3]:
        client.post(f"/deals/{lead.id}/qualification", data=qualify)
    client.post(f"/deals/{leads[3].id}/lose", data={"reason": "junk"})
    assert _alerts() == []  # 4 judged: not enough for the 5-lead window
    client.post(f"/deals/{leads[4].id}/lose", data={"reason": "junk"})  # 2 of 5 junk = 40% > 30%
    [alert] = _alerts()
    assert alert.lead_id == leads[4].id and alert.details["junk_share"] == 40
    owner_notes = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == owner.id).execution_options(**ALL)
    ).all()
    assert len(owner_notes) == 1 and "Partner" in owner_notes[0].text
    run_jobs()
    run_jobs()
    assert len([m for m in mailbox.to(owner.email) if "Lead quality dropped" in m["Subject"]]) == 1
    client.post(f"/deals/{leads[5].id}/lose", data={"reason": "junk"})
    assert len(_alerts()) == 1  # still below: no storm
    for lead in leads[6:10]:
        client.post(f"/deals/{lead.id}/qualification", data=qualify)  # recovers: re-armed
    db.session.refresh(partner)
    assert partner.alert_armed
    client.post(f"/deals/{leads[10].id}/lose", data={"reason": "junk"})
    client.post(f"/deals/{leads[11].id}/lose", data={"reason": "junk"})
    assert len(_alerts()) == 2


def test_source_figures_match_a_hand_computed_fixture(client, login, make, radar):
    tenant, owner, generator, partner = radar
    other = make.source(tenant, "Website", cost=0)
    leads = _leads(make, tenant, partner, 10, generator)
    _leads(make, tenant, other, 1, generator)
    now = datetime.now(UTC)
    for lead in leads[:2]:
        lead.lost_reason = "junk"
    leads[2].lost_reason = "unreachable"
    for lead in leads[3:7]:
        lead.qualified_at = now
    leads[3].won_at, leads[3].value_minor = now, 100000
    leads[4].won_at, leads[4].value_minor = now, 50000
    leads[9].flagged = True  # captured while paused: not paid for
    leads[5].first_touch_at = leads[5].created_at + timedelta(hours=2)
    leads[6].first_touch_at = leads[6].created_at + timedelta(hours=4)
    leads[7].first_touch_at = leads[7].created_at + timedelta(hours=9)
    db.session.add(
        InboxItem(tenant_id=tenant.id, source_id=partner.id, body=b"", status=InboxStatus.SPAM)
    )
    db.session.commit()
    login(owner.email)
    page = client.get("/radar?days=7").text
    row = re.search(rf'id="figures-{partner.id}">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    assert cells[1:] == [
        "10",
        "1",
        "2 (20%)",
        "1 (10%)",
        "4 (40%)",
        "2 (20%)",
        "$1,500.00",
        "$50.00",
        "$112.50",
        "$225.00",
        "4.0 h",
    ]
    csv_text = client.get("/radar/sources.csv?days=7").text
    assert "Partner,10,1,2,1,4,2,1500.00,50.00,112.50,225.00,4.0" in csv_text


def test_only_the_owner_sees_the_radar_and_conflicts(client, login, make, radar):
    tenant, owner, generator, partner = radar
    for role in (Role.LEAD_GENERATOR, Role.CLOSER, Role.ACCOUNT_MANAGER):
        member = make.member(tenant, role)
        login(member.email)
        for url in ("/radar", "/radar/sources.csv", "/conflicts", "/conflicts/monthly"):
            assert client.get(url).status_code == 404, url
        client.post("/logout")


def test_the_partner_link_shows_only_its_source_and_dies_when_revoked(
    app, client, login, make, radar
):
    tenant, owner, generator, partner = radar
    other = make.source(tenant, "Secret Channel")
    leads = _leads(make, tenant, partner, 3, generator)
    leads[0].lost_reason = "junk"
    leads[1].qualified_at = datetime.now(UTC)
    _leads(make, tenant, other, 5, generator)
    db.session.commit()
    login(owner.email)
    client.post(f"/sources/{partner.id}/partner-link")
    db.session.refresh(partner)
    visitor = app.test_client()
    report = visitor.get(f"/partner/{partner.partner_report_token}")
    assert report.status_code == 200
    figures = re.sub(
        r"\s+", " ", re.search(r'id="partner-figures">(.*?)</dl>', report.text, re.S).group(1)
    )
    assert "<dd>3</dd>" in figures and "1 (33%)" in figures
    assert "Junk or fake" in report.text
    assert (
        "Secret Channel" not in report.text
        and "$" not in report.text
        and generator.name not in report.text
    )
    old = partner.partner_report_token
    client.post(f"/sources/{partner.id}/partner-link/revoke")
    assert visitor.get(f"/partner/{old}").status_code == 404


def test_the_owner_works_through_conflicts_and_sees_the_month(client, login, make, radar):
    tenant, owner, generator, partner = radar
    conflict = Conflict(
        tenant_id=tenant.id,
        kind=ConflictKind.CADENCE_MISSED,
        user_id=generator.id,
        details={"due": "2026-11-20"},
    )
    db.session.add(conflict)
    db.session.add(
        Conflict(
            tenant_id=tenant.id,
            kind=ConflictKind.SOURCE_QUALITY,
            source_id=partner.id,
            details={
                "judged": 20,
                "junk_share": 50,
                "junk_max": 30,
                "qualified_share": 5,
                "qualified_min": 20,
            },
        )
    )
    db.session.commit()
    login(owner.email)
    assert 'id="open-conflicts">2<' in client.get("/").text
    listing = client.get("/conflicts?status=open").text
    assert f'id="conflict-{conflict.id}"' in listing and generator.name in listing
    client.post(
        f"/conflicts/{conflict.id}", data={"status": "resolved", "note": "Rule: daily call list"}
    )
    db.session.refresh(conflict)
    assert (
        conflict.status == ConflictStatus.RESOLVED
        and conflict.resolution_note == "Rule: daily call list"
    )
    assert 'id="open-conflicts">1<' in client.get("/").text
    now = datetime.now(UTC)
    monthly = client.get(f"/conflicts/monthly?year={now.year}&month={now.month}").text
    by_person = re.search(r'id="by-person">(.*?)</table>', monthly, re.S).group(1)
    assert generator.name in by_person and "Client missed their cadence" in by_person
    assert re.search(r"<td>1</td><td>1</td>", by_person)
    assert "Partner" in re.search(r'id="by-source">(.*?)</table>', monthly, re.S).group(1)


def test_pausing_from_the_alert_keeps_capturing_but_stops_the_payout(client, login, make, radar):
    tenant, owner, generator, partner = radar
    login(owner.email)
    client.post(f"/sources/{partner.id}/pause")
    answer = client.post(f"/in/{partner.intake_token}", json={"email": "late@example.com"})
    assert answer.status_code == 201
    page = client.get("/radar?days=7").text
    row = re.search(rf'id="figures-{partner.id}">(.*?)</tr>', page, re.S).group(1)
    assert "paused" in row and "<td>1</td>" in row
    cost_per_qualified = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert "$50.00" in cost_per_qualified  # the price stays visible, but nothing is owed:
    from app.radar import stats

    [figures] = [
        f
        for f in stats.source_figures(
            tenant, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        )
        if f.source.id == partner.id
    ]
    assert figures.leads == 1 and figures.cost_minor == 0
