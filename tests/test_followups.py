"""Follow-ups on time (issue 16): planned touches on Today at their time, cards touched
today, hand-offs waiting for the account manager, flagged promises reaching the owner."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.engine import delivery, schedule
from app.extensions import db
from app.models import Role

ALL = {"all_tenants": True}
# The pinned clock (tests/conftest.py) reads 2026-11-24 09:00 UTC: noon in Moscow.
TODAY = "2026-11-24"


@pytest.fixture
def shop(make):
    tenant, owner = make.workspace_with_owner(name="Moscow Bakery")
    tenant.timezone = "Europe/Moscow"
    db.session.commit()
    closer = make.member(tenant, Role.CLOSER)
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    return tenant, owner, closer, manager


def _plan(client, deal, at: str):
    return client.post(f"/deals/{deal.id}/schedule", data={"at": at})


def _section(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def test_planned_touches_show_on_today_at_their_time_overdue_first(client, login, make, shop):
    tenant, _, closer, _ = shop
    later, missed, tomorrow = (make.lead(tenant, "Proposal", owner=closer) for _ in range(3))
    someone_elses = make.lead(tenant, "Proposal", owner=make.member(tenant, Role.CLOSER))
    login(closer.email)
    _plan(client, later, f"{TODAY}T15:30")
    _plan(client, missed, f"{TODAY}T10:15")
    _plan(client, tomorrow, "2026-11-25T09:00")
    someone_elses.touch_scheduled_at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    db.session.commit()

    planned = _section(client.get("/today").text, "planned-touches")
    assert planned.index(missed.contact.name) < planned.index(later.contact.name)
    assert "3:30" in planned and "10:15" in planned  # the workspace's wall clock
    overdue = re.search(rf'id="planned-{missed.id}" class="overdue".*?</li>', planned, re.S)
    assert overdue and "overdue" in overdue.group(0)
    assert f'id="planned-{later.id}" class="overdue"' not in planned
    assert tomorrow.contact.name not in planned and someone_elses.contact.name not in planned
    assert later.contact.name in _section(client.get("/").text, "planned-touches")  # home too

    client.post(f"/deals/{missed.id}/touches", data={"channel": "call", "outcome": "Reached"})
    assert missed.contact.name not in _section(client.get("/today").text, "planned-touches")


def test_a_card_touched_today_says_so_on_today_and_the_board(client, login, make, shop):
    tenant, _, closer, _ = shop
    touched = make.lead(tenant, "Proposal", owner=closer)
    waiting = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    client.post(f"/deals/{touched.id}/touches", data={"channel": "call", "outcome": "Reached"})

    today = client.get("/today").text
    board = client.get("/board").text
    for page, prefix in ((today, "queue"), (board, "deal")):
        cards = {
            lead.id: re.search(rf'id="{prefix}-{lead.id}".*?</(li|article)>', page, re.S).group(0)
            for lead in (touched, waiting)
        }
        assert "touched today" in cards[touched.id]
        assert "touched today" not in cards[waiting.id]


def _win_with_promises(client, deal, manager, *texts):
    data = {"value": "2500", "account_manager_id": str(manager.id)}
    for i, text in enumerate(texts):
        data[f"promises-{i}-text"] = text
        data[f"promises-{i}-discount_percent"] = ""
    return client.post(f"/deals/{deal.id}/win", data=data)


def test_the_account_manager_sees_hand_offs_waiting_on_home_and_in_the_menu(
    client, login, make, shop
):
    tenant, owner, closer, manager = shop
    first, second = (make.lead(tenant, "Proposal", owner=closer) for _ in range(2))
    login(closer.email)
    _win_with_promises(client, first, manager, "Free delivery", "Price held")
    _win_with_promises(client, second, manager, "Setup on Monday")
    assert 'id="nav-handoffs"' not in client.get("/").text  # a closer receives none
    client.post("/logout")

    login(manager.email)
    home = client.get("/").text
    assert re.search(r'id="waiting-handoffs"[^>]*>2<', home)  # two clients, in the menu
    assert re.search(r'id="handoffs-waiting".*?class="figure">2<', home, re.S)
    promises = re.findall(r'id="promise-(\d+)"', client.get("/handoffs").text)
    for promise_id in promises:
        client.post(f"/promises/{promise_id}/accept")
    home = client.get("/").text
    assert 'id="nav-handoffs"' in home and 'id="waiting-handoffs"' not in home
    assert re.search(r'id="handoffs-waiting".*?class="figure">0<', home, re.S)


def test_a_flagged_promise_reaches_the_owner_in_the_bell_and_the_next_digest(
    client, login, make, shop, mailbox
):
    tenant, owner, closer, manager = shop
    deal = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    _win_with_promises(client, deal, manager, "Delivery at 5 am daily")
    client.post("/logout")
    login(manager.email)
    [promise_id] = re.findall(r'id="promise-(\d+)"', client.get("/handoffs").text)
    client.post(f"/promises/{promise_id}/flag", data={"reason": "Our van starts at 7"})
    assert 'id="bell-count"' not in client.get("/notifications/bell").text  # not theirs
    client.post("/logout")

    login(owner.email)
    assert re.search(r'id="bell-count">1<', client.get("/notifications/bell").text)
    listed = client.get("/notifications").text
    assert "flagged a promise to" in listed and "Delivery at 5 am daily" in listed

    morning = datetime(2026, 11, 25, 8, 0, tzinfo=ZoneInfo(tenant.timezone)).astimezone(UTC)
    schedule.tick(morning)
    delivery.deliver_due(morning)
    digest = mailbox.text(mailbox.to(owner.email)[0])
    assert "Promises flagged by account managers:" in digest
    flagged = "Delivery at 5 am daily — Our van starts at 7"
    assert f"{deal.contact.name}, {deal.title}: {flagged}" in digest  # whose, and which deal
    assert "Promises flagged" not in mailbox.text(mailbox.to(manager.email)[0])
