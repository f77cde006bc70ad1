"""The conveyor: board, qualification gate, assignment, walls and the Today queue."""

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app import clock
from app.conveyor import services as conveyor
from app.extensions import db
from app.models import Lead, LeadEvent, Role, Stage, Tenant
from app.models.activity import EventKind

ALL = {"all_tenants": True}


def _stage(tenant, name):
    return db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.name == name)
        .execution_options(**ALL)
    )


def _qualify(lead, decision=None):
    lead.problem, lead.money = "Needs weekly flour", "confirmed"
    lead.decision_date = decision or date.today() + timedelta(days=10)
    db.session.commit()


@pytest.fixture
def team(make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    closer_a = make.member(tenant, Role.CLOSER)
    closer_b = make.member(tenant, Role.CLOSER)
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    return tenant, owner, generator, closer_a, closer_b, manager


def test_moving_an_unqualified_lead_into_conversion_is_refused_with_the_reason(
    client, login, make, team
):
    tenant, owner, generator, *_ = team
    lead = make.lead(tenant, "New", owner=generator)
    login(owner.email)
    response = client.post(
        f"/deals/{lead.id}/move",
        data={"stage_id": _stage(tenant, "Assigned").id, "from": "board"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "Record the problem, the money and the timing" in response.text
    # The card is back in its column in the re-rendered board.
    new_column = re.search(
        rf'id="stage-{_stage(tenant, "New").id}-cards".*?</div>', response.text, re.S
    )
    assert f'id="deal-{lead.id}"' in new_column.group(0)
    db.session.refresh(lead)
    assert lead.stage.name == "New"


def test_qualifying_records_the_three_conditions_then_conversion_assigns_a_closer(
    client, login, make, team
):
    tenant, owner, generator, closer_a, closer_b, _ = team
    lead = make.lead(tenant, "Contacted", owner=generator)
    login(generator.email)
    partial = client.post(
        f"/deals/{lead.id}/qualification", data={"problem": "Flour", "money": "", "value": "0"}
    )
    assert partial.status_code == 302
    refused = client.post(f"/deals/{lead.id}/convert", follow_redirects=True)
    assert "Record the problem, the money and the timing" in refused.text
    client.post(
        f"/deals/{lead.id}/qualification",
        data={
            "problem": "Flour weekly",
            "money": "confirmed",
            "decision_date": "2026-12-20",
            "value": "1 200,50",
        },
    )
    db.session.refresh(lead)
    assert lead.is_qualified and lead.value_minor == 120050 and lead.qualified_at
    assert client.post(f"/deals/{lead.id}/convert").status_code == 302
    db.session.refresh(lead)
    assert lead.stage.name == "Assigned" and lead.owner_id in (closer_a.id, closer_b.id)
    kinds = db.session.scalars(
        sa.select(LeadEvent.kind).where(LeadEvent.lead_id == lead.id).execution_options(**ALL)
    ).all()
    assert EventKind.QUALIFIED in kinds and EventKind.ASSIGNED in kinds


def test_assignment_is_fair_and_respects_capacity_and_deactivation(make, team):
    tenant, owner, _, closer_a, closer_b, _ = team
    leaving = make.member(tenant, Role.CLOSER)
    make.membership_of(tenant, leaving).active = False
    tenant.closer_daily_capacity = 2
    db.session.commit()
    membership = make.membership_of(tenant, owner)
    owners = []
    for _ in range(5):
        lead = make.lead(tenant, "Qualified")
        _qualify(lead)
        conveyor.send_to_conversion(membership, lead)
        owners.append(lead.owner_id)
    assert owners[:4].count(closer_a.id) == 2 and owners[:4].count(closer_b.id) == 2
    assert owners[4] is None  # both closers are at today's capacity: the owner assigns it
    assert leaving.id not in owners


def test_the_owner_assigns_a_closer_by_hand(client, login, make, team):
    tenant, owner, _, _, closer_b, _ = team
    lead = make.lead(tenant, "Qualified")
    _qualify(lead)
    login(owner.email)
    client.post(f"/deals/{lead.id}/convert", data={"closer_id": closer_b.id})
    db.session.refresh(lead)
    assert lead.owner_id == closer_b.id


def test_a_closer_sees_only_their_own_deals_and_gets_404_elsewhere(client, login, make, team):
    tenant, owner, generator, closer_a, closer_b, manager = team
    mine = make.lead(tenant, "Proposal", owner=closer_a)
    theirs = make.lead(tenant, "Proposal", owner=closer_b)
    raw = make.lead(tenant, "New", owner=generator)
    client_lead = make.lead(tenant, "Client", owner=manager)
    login(closer_a.email)
    board = client.get("/board").text
    assert f'id="deal-{mine.id}"' in board and f'id="deal-{theirs.id}"' not in board
    assert f'id="deal-{raw.id}"' not in board and "New</h2>" not in board
    assert client.get(f"/deals/{mine.id}").status_code == 200
    for other in (theirs, raw, client_lead):
        assert client.get(f"/deals/{other.id}").status_code == 404
        assert client.post(f"/deals/{other.id}/notes", data={"text": "peek"}).status_code == 404
        assert (
            client.post(
                f"/deals/{other.id}/move", data={"stage_id": _stage(tenant, "Negotiation").id}
            ).status_code
            == 404
        )
    for url in ("/leads", "/sources", "/inbox", "/team", "/settings"):
        assert client.get(url).status_code == 404, url


def test_lead_generators_work_only_in_generation(client, login, make, team):
    tenant, owner, generator, closer_a, *_ = team
    deal = make.lead(tenant, "Proposal", owner=closer_a)
    login(generator.email)
    assert client.get(f"/deals/{deal.id}").status_code == 404
    board = client.get("/board").text
    assert "Proposal</h2>" not in board and "New</h2>" in board


def test_only_the_owner_sends_a_deal_back_to_generation(client, login, make, team):
    tenant, owner, _, closer_a, *_ = team
    deal = make.lead(tenant, "Proposal", owner=closer_a)
    login(closer_a.email)
    refused = client.post(
        f"/deals/{deal.id}/move", data={"stage_id": _stage(tenant, "New").id}, follow_redirects=True
    )
    assert "Your role does not work in that stage" in refused.text
    client.post("/logout")
    login(owner.email)
    client.post(f"/deals/{deal.id}/move", data={"stage_id": _stage(tenant, "New").id})
    db.session.refresh(deal)
    assert deal.stage.name == "New"


def test_a_closer_moves_their_deal_on_the_board(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    deal = make.lead(tenant, "Assigned", owner=closer_a)
    login(closer_a.email)
    response = client.post(
        f"/deals/{deal.id}/move",
        data={"stage_id": _stage(tenant, "Proposal").id, "from": "board"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and 'id="board"' in response.text
    db.session.refresh(deal)
    assert deal.stage.name == "Proposal"
    won = client.post(
        f"/deals/{deal.id}/move",
        data={"stage_id": _stage(tenant, "Won").id, "from": "board"},
        headers={"HX-Request": "true"},
    )
    assert won.status_code == 422 and "hand-off" in won.text


def test_losing_needs_a_reason_and_other_needs_words(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    deal = make.lead(tenant, "Proposal", owner=closer_a)
    login(closer_a.email)
    vague = client.post(f"/deals/{deal.id}/lose", data={"reason": "other", "note": ""})
    assert vague.status_code == 422 and "Say what happened" in vague.text
    client.post(f"/deals/{deal.id}/lose", data={"reason": "bad_timing"})
    db.session.refresh(deal)
    assert deal.stage.is_lost and deal.lost_reason == "bad_timing" and deal.closed_at


def test_today_puts_the_decision_window_first_then_date_then_age(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    today = conveyor.local_today(tenant)
    far = make.lead(tenant, "Proposal", owner=closer_a)
    far.decision_date = today + timedelta(days=20)
    soon_after = make.lead(tenant, "Proposal", owner=closer_a)
    soon_after.decision_date = today + timedelta(days=3)
    just_passed = make.lead(tenant, "Negotiation", owner=closer_a)
    just_passed.decision_date = today - timedelta(days=2)
    undated = make.lead(tenant, "Assigned", owner=closer_a)
    long_ago = make.lead(tenant, "Proposal", owner=closer_a)
    long_ago.decision_date = today - timedelta(days=9)
    closed = make.lead(tenant, "Won", owner=closer_a)
    closed.decision_date = today
    db.session.commit()
    login(closer_a.email)
    page = client.get("/today").text
    order = [int(x) for x in re.findall(r'id="queue-(\d+)"', page)]
    assert order == [just_passed.id, soon_after.id, long_ago.id, far.id, undated.id]


def test_today_honours_the_queue_size_and_the_workspace_timezone(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    tenant.timezone, tenant.queue_size = "Pacific/Kiritimati", 3  # UTC+14: often "tomorrow"
    db.session.commit()
    local = conveyor.local_today(tenant)
    leads = []
    for offset in (4, 3, 10, 12):
        lead = make.lead(tenant, "Proposal", owner=closer_a)
        lead.decision_date = local + timedelta(days=offset)
        leads.append(lead)
    db.session.commit()
    login(closer_a.email)
    order = [int(x) for x in re.findall(r'id="queue-(\d+)"', client.get("/today").text)]
    assert order == [leads[1].id, leads[0].id, leads[2].id]


def test_the_next_lead_link_walks_the_queue(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    first, second = (
        make.lead(tenant, "Proposal", owner=closer_a),
        make.lead(tenant, "Proposal", owner=closer_a),
    )
    login(closer_a.email)
    page = client.get(f"/deals/{first.id}").text
    assert f'id="next-lead" href="/deals/{second.id}"' in page
    assert 'id="next-lead"' not in client.get(f"/deals/{second.id}").text


def test_logging_a_touch_from_today_in_one_step(client, login, make, team):
    tenant, _, _, closer_a, *_ = team
    deal = make.lead(tenant, "Proposal", owner=closer_a)
    login(closer_a.email)
    response = client.post(
        f"/deals/{deal.id}/touches",
        data={"channel": "call", "outcome": "Asked for a quote", "next": "/today"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/today"
    timeline = client.get(f"/deals/{deal.id}").text
    assert "Asked for a quote" in timeline


def test_a_touch_on_a_client_moves_the_next_touch_date_by_its_cadence(client, login, make, team):
    tenant, _, _, _, _, manager = team
    regular = make.lead(tenant, "Client", owner=manager)
    special = make.lead(tenant, "Client", owner=manager)
    special.cadence_days = 3
    db.session.commit()
    login(manager.email)
    for lead in (regular, special):
        client.post(f"/deals/{lead.id}/touches", data={"channel": "message", "outcome": "All good"})
    db.session.refresh(regular)
    db.session.refresh(special)
    today = conveyor.local_today(tenant)
    assert regular.next_touch_on == today + timedelta(days=7)
    assert special.next_touch_on == today + timedelta(days=3)


def test_board_filters_by_text_source_and_owner(client, login, make, team):
    tenant, owner, generator, *_ = team
    source = make.source(tenant, "Partner")
    wanted = make.lead(tenant, "New", owner=generator)
    wanted.contact.name = "Zelda Findme"
    wanted.source_id = source.id
    other = make.lead(tenant, "New")
    db.session.commit()
    login(owner.email)
    by_text = client.get("/board?q=findme", headers={"HX-Request": "true"}).text
    assert f'id="deal-{wanted.id}"' in by_text and f'id="deal-{other.id}"' not in by_text
    by_source = client.get(f"/board?source={source.id}").text
    assert f'id="deal-{wanted.id}"' in by_source and f'id="deal-{other.id}"' not in by_source
    by_owner = client.get(f"/board?owner={generator.id}").text
    assert f'id="deal-{wanted.id}"' in by_owner and f'id="deal-{other.id}"' not in by_owner


def test_columns_load_more_cards_on_scroll(client, login, make, team):
    tenant, owner, *_ = team
    for _ in range(30):
        make.lead(tenant, "New")
    login(owner.email)
    board = client.get("/board").text
    column = _stage(tenant, "New").id
    assert re.search(rf'id="stage-{column}-count">30<', board)
    more_url = (
        re.search(rf'hx-get="(/board/stages/{column}/more[^"]+)"', board)
        .group(1)
        .replace("&amp;", "&")
    )
    more = client.get(more_url, headers={"HX-Request": "true"}).text
    shown = set(re.findall(r'id="deal-(\d+)"', board)) | set(re.findall(r'id="deal-(\d+)"', more))
    assert len(shown) == 30


def _count_queries(app):
    statements = []

    def record(*args, **kwargs):
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    return statements, lambda: event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("deals", [5, 60])
def test_board_queue_and_lead_pages_run_a_bounded_number_of_queries(
    app, client, login, make, team, deals
):
    tenant, owner, generator, closer_a, *_ = team
    for i in range(deals):
        make.lead(
            tenant,
            ["New", "Proposal", "Client"][i % 3],
            owner=closer_a if i % 3 == 1 else generator,
        )
    lead = make.lead(tenant, "Proposal", owner=closer_a)
    login(owner.email)
    login(closer_a.email, test_client=(closer_client := app.test_client()))
    checks = [
        (client, "/board"),
        (closer_client, "/today"),
        (closer_client, f"/deals/{lead.id}"),
        (client, f"/deals/{lead.id}"),
    ]
    for who, url in checks:
        statements, stop = _count_queries(app)
        try:
            assert who.get(url).status_code == 200
        finally:
            stop()
        assert len(statements) <= 10, f"{url}: {len(statements)} queries"


def test_a_new_intake_lead_starts_its_timeline(client, make, run_jobs):
    tenant, _ = make.workspace_with_owner()
    source = make.source(tenant, "Site")
    answer = client.post(f"/in/{source.intake_token}", json={"email": "t@example.com"})
    assert answer.status_code == 202
    run_jobs()
    lead = db.session.scalar(
        sa.select(Lead).where(Lead.source_id == source.id).execution_options(**ALL)
    )
    event_row = db.session.scalar(
        sa.select(LeadEvent).where(LeadEvent.lead_id == lead.id).execution_options(**ALL)
    )
    assert event_row.kind == EventKind.INTAKE and event_row.data == {"source": "Site"}


def test_rules_of_the_workspace_have_sensible_defaults(make):
    tenant, _ = make.workspace_with_owner()
    fresh = db.session.get(Tenant, tenant.id)
    assert (fresh.max_discount_percent, fresh.closer_daily_capacity, fresh.queue_size) == (
        10,
        20,
        20,
    )


def test_an_open_board_learns_of_a_new_lead_from_its_pulse_and_only_of_its_own(
    client, login, make, team, run_jobs
):
    tenant, owner, generator, *_ = team
    source = make.source(tenant, "Site")
    other_tenant, _ = make.workspace_with_owner(name="Elsewhere")
    elsewhere = make.source(other_tenant, "Their site")
    login(generator.email)
    board = client.get("/board", headers={"HX-Request": "true"}).text
    pulse_url = re.search(r'id="board-pulse" hidden hx-get="([^"]+)"', board).group(1)
    pulse_url = pulse_url.replace("&amp;", "&")
    quiet = client.get(pulse_url, headers={"HX-Request": "true"})
    assert quiet.status_code == 204 and "HX-Trigger" not in quiet.headers
    # A lead in another workspace changes nothing here.
    assert (
        client.post(f"/in/{elsewhere.intake_token}", json={"email": "x@example.com"}).status_code
        == 202
    )
    run_jobs()
    assert "HX-Trigger" not in client.get(pulse_url, headers={"HX-Request": "true"}).headers
    assert (
        client.post(f"/in/{source.intake_token}", json={"email": "new@example.com"}).status_code
        == 202
    )
    run_jobs()
    changed = client.get(pulse_url, headers={"HX-Request": "true"})
    assert changed.status_code == 204 and changed.headers["HX-Trigger"] == "board-changed"
    # The refreshed board shows the card and carries a new stamp: quiet again.
    refreshed = client.get("/board", headers={"HX-Request": "true"}).text
    assert "new@example.com" in refreshed
    new_pulse = re.search(r'id="board-pulse" hidden hx-get="([^"]+)"', refreshed).group(1)
    assert new_pulse != pulse_url
    assert "HX-Trigger" not in client.get(new_pulse.replace("&amp;", "&")).headers


def test_a_client_gets_their_own_touch_cadence_and_empty_means_the_workspaces(
    client, login, make, team
):
    tenant, owner, generator, closer_a, closer_b, manager = team
    account = make.lead(tenant, "Client", owner=manager)
    account.last_touch_at = datetime_now = clock.now() - timedelta(days=2)
    db.session.commit()
    touched_on = conveyor.local_today(tenant) - timedelta(days=2)
    login(manager.email)
    page = client.get(f"/deals/{account.id}").text
    assert 'id="cadence-form"' in page and "Empty: the workspace's 7 days." in page
    refused = client.post(f"/deals/{account.id}/cadence", data={"cadence_days": "0"})
    assert refused.status_code == 422 and "Number must be between 1 and 90" in refused.text
    client.post(f"/deals/{account.id}/cadence", data={"cadence_days": "3"})
    db.session.refresh(account)
    assert account.cadence_days == 3 and account.next_touch_on == touched_on + timedelta(days=3)
    assert account.last_touch_at == datetime_now  # nothing else moved
    # Logging a touch now follows the client's own cadence.
    client.post(f"/deals/{account.id}/touches", data={"channel": "call", "outcome": "Fine"})
    db.session.refresh(account)
    assert account.next_touch_on == conveyor.local_today(tenant) + timedelta(days=3)
    client.post(f"/deals/{account.id}/cadence", data={"cadence_days": ""})
    db.session.refresh(account)
    assert account.cadence_days is None
    assert account.next_touch_on == conveyor.local_today(tenant) + timedelta(days=7)
    # Not for deals outside account management, nor for other roles.
    deal = make.lead(tenant, "Proposal", owner=closer_a)
    assert client.post(f"/deals/{deal.id}/cadence", data={"cadence_days": "3"}).status_code == 404
    client.post("/logout")
    login(closer_a.email)
    assert client.post(f"/deals/{deal.id}/cadence", data={"cadence_days": "3"}).status_code == 404
