"""People and follow-ups in a real browser, in English and Russian (issue 16).

The owner quick-adds a walk-in from Today, finds them by a misspelt name in the header
search, plans a touch for later today from the deal page and sees it on Today at its
time; the quick-add dialog, the search results and the person page fit 390 px.
"""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.extensions import db
from app.models import Lead
from tests.e2e.test_conveyor_journey import sign_in

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
