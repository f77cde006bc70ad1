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
    tenant.junk_share_max = 30
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
        "$1,500",
        "$50",
        "$112.50",
        "$225",
        "4.0 h",
    ]
    csv_text = client.get("/radar/sources.csv?days=7").text
    assert "Partner,10,1,2,1,4,2,1500.00,50.00,112.50,225.00,4.0" in csv_text


def test_only_the_owner_sees_the_radar_and_conflicts(client, login, make, radar):
    tenant, owner, generator, partner = radar
    for role in (Role.LEAD_GENERATOR, Role.CLOSER, Role.ACCOUNT_MANAGER):
        member = make.member(tenant, role)
        login(member.email)
        for url in (
            "/radar",
            "/radar/funnel",
            "/radar/sources.csv",
            "/conflicts",
            "/conflicts/monthly",
        ):
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


def test_the_partner_report_leaves_out_leads_captured_while_paused_as_the_payout_does(
    app, client, login, make, radar
):
    tenant, owner, generator, partner = radar
    _leads(make, tenant, partner, 2, generator)
    paused = _leads(make, tenant, partner, 3, generator)
    for lead in paused:
        lead.flagged, lead.lost_reason = True, "junk"
    db.session.commit()
    login(owner.email)
    client.post(f"/sources/{partner.id}/partner-link")
    db.session.refresh(partner)
    report = app.test_client().get(f"/partner/{partner.partner_report_token}")
    figures = re.sub(
        r"\s+", " ", re.search(r'id="partner-figures">(.*?)</dl>', report.text, re.S).group(1)
    )
    assert "<dd>2</dd>" in figures  # the three captured while paused are not counted
    assert "Junk or fake" not in report.text


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


def test_pausing_from_the_alert_keeps_capturing_but_stops_the_payout(
    client, login, make, radar, run_jobs
):
    tenant, owner, generator, partner = radar
    login(owner.email)
    client.post(f"/sources/{partner.id}/pause")
    answer = client.post(f"/in/{partner.intake_token}", json={"email": "late@example.com"})
    assert answer.status_code == 202
    run_jobs()
    page = client.get("/radar?days=7").text
    row = re.search(rf'id="figures-{partner.id}">(.*?)</tr>', page, re.S).group(1)
    assert "paused" in row and "<td>1</td>" in row
    cost_per_qualified = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert "$50" in cost_per_qualified  # the price stays visible, but nothing is owed:
    from app.radar import stats

    [figures] = [
        f
        for f in stats.source_figures(
            tenant, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        )
        if f.source.id == partner.id
    ]
    assert figures.leads == 1 and figures.cost_minor == 0


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [
        [
            re.sub(r"<[^>]+>|\s+", " ", cell).strip()
            for cell in re.findall(r"<td>(.*?)</td>", r, re.S)
        ]
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_the_funnel_counts_each_stage_and_the_median_stay_from_real_moves(
    client, login, make, radar
):
    """Four leads from New: three reach Contacted (after 1, 2 and 4 days in New), one of
    those goes on to Qualified after 3 days; one is lost from New after 6 days."""
    tenant, owner, generator, partner = radar
    leads = _leads(make, tenant, partner, 5, generator)
    contacted, qualified = _stage(tenant, "Contacted"), _stage(tenant, "Qualified")
    now = datetime.now(UTC)
    for lead, days in zip(leads[:4], (1, 2, 4, 6), strict=True):
        lead.stage_entered_at = now - timedelta(days=days)
    db.session.commit()
    login(generator.email)
    for lead in leads[:3]:
        assert client.post(f"/deals/{lead.id}/move", data={"stage_id": contacted.id}).status_code
    client.post(f"/deals/{leads[3].id}/lose", data={"reason": "no_money"})
    lead = db.session.get(type(leads[0]), leads[0].id)
    lead.stage_entered_at = datetime.now(UTC) - timedelta(days=3)
    db.session.commit()
    client.post(f"/deals/{leads[0].id}/move", data={"stage_id": qualified.id})
    client.post("/logout")

    login(owner.email)
    radar_page = client.get("/radar?days=7").text
    assert 'hx-get="/radar/funnel?days=7" hx-trigger="load"' in radar_page
    page = client.get("/radar/funnel?days=7").text
    assert "<html" in page  # on its own: a whole page
    fragment = client.get("/radar/funnel?days=7", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and 'id="funnel-stages"' in fragment
    stages = {row[0]: row[1:] for row in _table_rows(page, "funnel-stages")}
    # New: all 5 entered, 3 went on (60%); stays of 1, 2, 4 and 6 days: median 3.0
    assert stages["New"] == ["5", "3 (60%)", "3.0"]
    assert stages["Contacted"] == ["3", "1 (33%)", "3.0"]
    assert stages["Qualified"] == ["1", "0 (0%)", "—"]
    assert "Lost" not in stages
    [person] = _table_rows(page, "funnel-people")
    # The generator held all five; five stays ended, four of them forward; median 3.0 days
    assert person == [generator.name, "5", "0", "0", "5", "4 (80%)", "3.0"]
    stages_csv = client.get("/radar/sources.csv?days=7&table=stages").text
    assert "New,5,3,60.0,3.0" in stages_csv and "Contacted,3,1,33.3,3.0" in stages_csv
    people_csv = client.get("/radar/sources.csv?days=7&table=people").text
    assert f"{generator.name},5,0,0,5,4,80.0,3.0" in people_csv
    assert client.get("/radar/sources.csv?table=nonsense").status_code == 404


def test_the_trend_shows_each_day_of_a_week_and_narrows_to_one_source(client, login, make, radar):
    tenant, owner, generator, partner = radar
    other = make.source(tenant, "Website")
    now = datetime.now(UTC)
    early = _leads(make, tenant, partner, 3, generator)
    for lead in early:
        lead.created_at = now - timedelta(days=3)
    early[0].lost_reason = "junk"
    early[1].qualified_at = now
    _leads(make, tenant, partner, 1, generator)  # today
    _leads(make, tenant, other, 2, generator)  # today, another source
    db.session.commit()
    login(owner.email)
    page = client.get("/radar?days=7").text
    rows = _table_rows(page, "trend-table")
    assert len(rows) == 7  # one point per day for a week
    assert [row[2] for row in rows] == ["0", "0", "0", "3", "0", "0", "3"]
    assert rows[3][3:] == ["1 (33%)", "1 (33%)", "0"]
    assert "<svg" in page and 'id="trend-title"' in page
    narrowed = client.get(f"/radar?days=7&source={partner.id}").text
    assert [row[2] for row in _table_rows(narrowed, "trend-table")][-1] == "1"
    # Another workspace's source cannot be picked: the trend stays on all sources.
    other_tenant, _ = make.workspace_with_owner(name="Elsewhere")
    foreign = make.source(other_tenant, "Their source")
    theirs = client.get(f"/radar?days=7&source={foreign.id}").text
    assert "Their source" not in theirs
    assert [row[2] for row in _table_rows(theirs, "trend-table")][-1] == "3"
    trend_csv = client.get(f"/radar/sources.csv?days=7&table=trend&source={partner.id}").text
    lines = trend_csv.strip().splitlines()
    assert lines[0].lstrip("\ufeff") == "from,to,leads,qualified,junk,won,qualified_pct,junk_pct"
    assert lines[4].endswith(",3,1,1,0,33.3,33.3") and lines[7].split(",")[2] == "1"
    thirty = _table_rows(client.get("/radar?days=30").text, "trend-table")
    assert len(thirty) == 5 and sum(int(row[2]) for row in thirty) == 6  # weeks


def test_a_source_can_be_judged_over_days_instead_of_leads(
    client, login, make, radar, run_jobs, mailbox
):
    tenant, owner, generator, partner = radar
    leads = _leads(make, tenant, partner, 8, generator)
    # An old junk verdict lies outside the 7-day window and is not counted.
    leads[7].lost_reason, leads[7].closed_at = "junk", datetime.now(UTC) - timedelta(days=9)
    db.session.commit()
    login(owner.email)
    settings = client.get("/settings").text
    assert 'name="quality_window_mode"' in settings and 'name="quality_window_days"' in settings
    form = {
        "name": tenant.name,
        "timezone": "UTC",
        "language": "en",
        "currency": "USD",
        "touch_cadence_days": 7,
        "queue_size": 20,
        "digest_hour": 8,
        "junk_share_max": 30,
        "qualified_share_min": 20,
        "quality_window_mode": "days",
        "quality_window": 20,
        "quality_window_days": 7,
    }
    refused = client.post("/settings", data={**form, "quality_window_days": 0})
    assert refused.status_code == 422 and "Number must be between 1 and 90" in refused.text
    client.post("/settings", data=form)
    db.session.refresh(tenant)
    assert tenant.quality_window_mode == "days" and tenant.quality_window_days == 7
    qualify = {"problem": "Flour", "money": "ok", "decision_date": "2026-12-20", "value": "0"}
    for lead in leads[:3]:
        client.post(f"/deals/{lead.id}/qualification", data=qualify)
    client.post(f"/deals/{leads[3].id}/lose", data={"reason": "junk"})
    assert _alerts() == []  # 4 verdicts this week: fewer than the 5 a days window needs
    client.post(f"/deals/{leads[4].id}/lose", data={"reason": "junk"})  # 2 of 5 = 40%
    [alert] = _alerts()
    assert alert.details["days"] == 7 and alert.details["judged"] == 5
    alarm = client.get(f"/conflicts/{alert.id}").text
    assert "Leads judged in the last 7 days" in alarm
    assert "The lead that raised the alarm" in alarm  # not a "Deal" the owner must look into
    run_jobs()
    [mail] = [m for m in mailbox.to(owner.email) if "Lead quality dropped" in m["Subject"]]
    assert "judged in the last 7 days" in mail.get_body(("plain",)).get_content()


def test_a_source_overrides_the_workspace_limits_and_blank_means_the_default(
    client, login, make, radar
):
    tenant, owner, generator, partner = radar
    login(owner.email)
    form = {"name": "Partner", "kind": "partner", "cost": "50", "rate_limit_per_minute": 600}
    page = client.get(f"/sources/{partner.id}/edit").text
    assert "the workspace default, 30%" in page  # the fixture's limit
    refused = client.post(f"/sources/{partner.id}/edit", data={**form, "junk_share_max": 130})
    assert refused.status_code == 422
    client.post(f"/sources/{partner.id}/edit", data={**form, "junk_share_max": 60})
    db.session.refresh(partner)
    assert partner.junk_share_max == 60 and partner.qualified_share_min is None
    leads = _leads(make, tenant, partner, 5, generator)
    for lead in leads[:2]:
        client.post(f"/deals/{lead.id}/lose", data={"reason": "junk"})
    qualify = {"problem": "Flour", "money": "ok", "decision_date": "2026-12-20", "value": "0"}
    for lead in leads[2:]:
        client.post(f"/deals/{lead.id}/qualification", data=qualify)
    assert _alerts() == []  # 40% junk is within this source's 60%
    client.post(f"/sources/{partner.id}/edit", data={**form, "junk_share_max": ""})
    db.session.refresh(partner)
    assert partner.junk_share_max is None


@pytest.fixture
def fresh_defaults(make):
    """A workspace on the defaults signup gives, with a £50-per-lead partner."""
    tenant, owner = make.workspace_with_owner(name="Shop")
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    partner = make.source(tenant, "Banner partner", cost=5000)
    return tenant, owner, generator, partner


def _judge(client, lead, verdict):
    if verdict == "junk":
        client.post(f"/deals/{lead.id}/lose", data={"reason": "junk"})
    else:
        qualify = {"problem": "Flour", "money": "ok", "decision_date": "2026-12-20", "value": "0"}
        client.post(f"/deals/{lead.id}/qualification", data=qualify)


def test_a_partner_sending_junk_raises_the_alarm_by_its_fifth_judged_lead(
    client, login, make, fresh_defaults
):
    tenant, owner, generator, partner = fresh_defaults
    leads = _leads(make, tenant, partner, 7, generator)
    login(generator.email)
    for lead in leads[:4]:
        _judge(client, lead, "junk")
    assert _alerts() == []  # four verdicts are too few to judge
    _judge(client, leads[4], "junk")
    [alert] = _alerts()
    assert alert.lead_id == leads[4].id and alert.details["judged"] == 5
    login(owner.email)
    quality = re.search(
        rf'id="source-{partner.id}-quality">(.*?)</td>', client.get("/sources").text, re.S
    ).group(1)
    assert "junk 100% of 40% allowed" in quality and 'class="rot"' in quality


def test_a_healthy_source_with_an_occasional_junk_lead_raises_no_alarm(
    client, login, make, fresh_defaults
):
    tenant, owner, generator, partner = fresh_defaults
    leads = _leads(make, tenant, partner, 20, generator)
    login(generator.email)
    # One lead in five is junk (the second of all), two in five qualify.
    verdicts = ["qualified", "junk", "lost", "qualified", "lost"] * 4
    for lead, verdict in zip(leads, verdicts, strict=True):
        if verdict == "lost":
            client.post(f"/deals/{lead.id}/lose", data={"reason": "no_money"})
        else:
            _judge(client, lead, verdict)
    assert _alerts() == []
    login(owner.email)
    page = client.get("/sources").text
    assert "junk 20% of 40% allowed" in page
