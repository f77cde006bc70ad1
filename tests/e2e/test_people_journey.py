"""People and follow-ups in a real browser, in English and Russian (issue 16).

The owner quick-adds a walk-in from Today, finds them by a misspelt name in the header
search, plans a touch for later today from the deal page and sees it on Today at its
time; the quick-add dialog, the search results and the person page fit 390 px.

The owner merges two records of one person from the person page and sees one timeline
with both deals' lines; a repeat post from a person with an open lead joins that lead:
one card on the board, "asked again" on its timeline.
"""

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from time import monotonic, sleep

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.extensions import db
from app.models import Contact, EventKind, Lead, LeadEvent, Stage
from tests.e2e.test_conveyor_journey import sign_in
from tests.e2e.test_full_journey import translate

ALL = {"all_tenants": True}

PHONE = 390
CASES = {
    "en": {"locale": "en-US", "planned_at": "3:30 PM", "overdue": "overdue"},
    "ru": {"locale": "ru-RU", "planned_at": "15:30", "overdue": "просрочено"},
}


def workspace_at_noon(tenant) -> str:
    """Browser tests run on the real clock: put the workspace where it is about noon now
    (Etc/GMT-N is UTC+N), so "later today" at 15:30 is later today on any day."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    tenant.timezone = f"Etc/GMT{-offset:+d}" if offset else "UTC"
    db.session.commit()
    return (datetime.now(UTC) + timedelta(hours=offset)).date().isoformat()


def fits_the_width(page: Page) -> bool:
    """Nothing on the page scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_walk_in_found_misspelt_and_planned_touch_shows_on_today(new_page, make, language):
    case = CASES[language]
    tenant, owner = make.workspace_with_owner(language=language)
    local_today = workspace_at_noon(tenant)
    page = new_page(locale=case["locale"])
    page.set_viewport_size({"width": PHONE, "height": 844})
    sign_in(page, owner)

    page.goto("/today")
    page.locator("#quick-add-open").click()
    dialog = page.locator("#quick-add-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("[name=qa-name]").fill("Walter Whitman")
    dialog.locator("[name=qa-phone]").fill("202 555 0143")
    dialog.locator("[name=qa-source]").select_option("walk_in")
    assert fits_the_width(page), "the quick-add dialog scrolls sideways at 390 px"
    dialog.locator("#quick-add-submit").click()
    expect(dialog).to_be_hidden()
    lead = db.session.scalar(
        sa.select(Lead).where(Lead.tenant_id == tenant.id).execution_options(all_tenants=True)
    )
    assert lead is not None and lead.contact.name == "Walter Whitman"

    page.locator("#global-search").fill("Walter Witman")
    results = page.locator("#search-results")
    expect(results.locator("#search-people")).to_contain_text("Walter Whitman")
    assert fits_the_width(page), "search results scroll sideways at 390 px"
    results.locator("#search-people a", has_text="Walter Whitman").first.click()
    expect(page.locator("#person-name")).to_contain_text("Walter Whitman")
    assert fits_the_width(page), "the person page scrolls sideways at 390 px"

    page.goto(f"/deals/{lead.id}")
    page.locator("#schedule-form [name=at]").fill(f"{local_today}T15:30")
    page.locator("#schedule-form [type=submit]").click()
    expect(page.locator("#planned-touch")).to_be_visible()
    page.goto("/today")
    planned = page.locator(f"#planned-{lead.id}")
    expect(planned).to_contain_text("Walter Whitman")
    expect(planned).to_contain_text(case["planned_at"])
    expect(planned).not_to_contain_text(case["overdue"])


def first_stage_name(tenant) -> str:
    """The name of the workspace's first stage (the stages are named in its language)."""
    return db.session.scalar(
        sa.select(Stage.name)
        .where(Stage.tenant_id == tenant.id)
        .order_by(Stage.position)
        .limit(1)
        .execution_options(**ALL)
    )


def tenant_leads(tenant) -> list[Lead]:
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Lead)
        .where(Lead.tenant_id == tenant.id)
        .order_by(Lead.id)
        .execution_options(**ALL)
    ).all()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_owner_merges_two_records_of_one_person_into_one_timeline(new_page, make, language):
    tenant, owner = make.workspace_with_owner(language=language)
    stage = first_stage_name(tenant)
    first, second = make.lead(tenant, stage), make.lead(tenant, stage)
    second.contact.email = first.contact.email  # the same email, two person records
    for lead, text in ((first, "First deal's line"), (second, "Second deal's line")):
        db.session.add(
            LeadEvent(
                tenant_id=tenant.id,
                lead_id=lead.id,
                actor_id=owner.id,
                kind=EventKind.NOTE,
                data={"text": text},
            )
        )
    db.session.commit()
    keep, other = first.contact_id, second.contact_id
    page = new_page(locale=CASES[language]["locale"])
    sign_in(page, owner)

    page.goto(f"/people/{keep}")
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#merge-{other}").click()
    expect(page.locator("#merge-suggestions")).to_have_count(0)
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("First deal's line")
    expect(timeline).to_contain_text("Second deal's line")
    db.session.expire_all()
    assert db.session.get(Contact, other) is None
    assert {lead.contact_id for lead in tenant_leads(tenant)} == {keep}


def post_lead(intake_url: str, payload: dict, key: str) -> int:
    """POST ``payload`` as JSON to the intake address, as a site would."""
    request = urllib.request.Request(
        intake_url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(request, timeout=10) as response:
        return response.status


def wait_for(check, seconds: float = 10):
    """``check()`` once it is truthy (the lead builder runs every 0.2 s)."""
    deadline = monotonic() + seconds
    while monotonic() < deadline:
        found = check()
        if found:
            return found
        sleep(0.2)
    raise AssertionError("the lead builder did not get there in time")


def asked_again(lead_id: int) -> bool:
    db.session.expire_all()
    return (
        db.session.scalar(
            sa.select(LeadEvent.id)
            .where(LeadEvent.lead_id == lead_id, LeadEvent.kind == EventKind.ASKED_AGAIN)
            .execution_options(**ALL)
        )
        is not None
    )


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_repeat_post_joins_the_open_lead_asked_again(app, live_server, new_page, make, language):
    tenant, owner = make.workspace_with_owner(language=language)
    source = make.source(tenant, "Site form")
    intake_url = f"{live_server}/in/{source.intake_token}"
    name = "Vera Petrova"
    first = {"name": name, "email": "vera@example.com", "message": "A quote, please"}
    assert post_lead(intake_url, first, "vera-1") == 202
    [lead] = wait_for(lambda: tenant_leads(tenant))
    again = {"name": name, "email": "VERA@example.com", "message": "Still interested"}
    assert post_lead(intake_url, again, "vera-2") == 202
    wait_for(lambda: asked_again(lead.id))
    assert [row.id for row in tenant_leads(tenant)] == [lead.id]

    page = new_page(locale=CASES[language]["locale"])
    sign_in(page, owner)
    page.goto("/board")
    expect(page.locator("html")).to_have_attribute("lang", language)
    cards = page.locator("#board .card", has_text=name)
    expect(cards).to_have_count(1)
    cards.locator("h3 a").click()
    page.wait_for_url(f"**/deals/{lead.id}")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text(translate(app, language, "asked again"))
    expect(timeline).to_contain_text("Still interested")
