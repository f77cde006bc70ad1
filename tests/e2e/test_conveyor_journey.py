"""The whole conveyor in a real browser, in English.

The owner drags cards across the board (a move that sticks, a move the rules
refuse) and moves one with the keyboard-friendly select; the lead generator
qualifies a lead and sends it to conversion; the closer finds it on Today and
wins it with two promises; the account manager accepts one promise and flags
the other; the owner sees the flag on the deal.
"""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Locator, Page, expect

from app.conveyor.services import local_today
from app.models import Role

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"  # every factory user's password
REFUSAL = "Record the problem, the money and the timing before conversion."


def sign_in(page: Page, user) -> None:
    """Sign ``user`` in through the login form and wait for the dashboard."""
    page.goto("/login")
    page.locator("#login-form [name=email]").fill(user.email)
    page.locator("#login-form [name=password]").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url("**/")


def open_board(page: Page) -> None:
    """Reach the board as people do, by the menu link (a boosted htmx navigation), and
    wait until SortableJS has wired every column (drag is live)."""
    page.goto("/")
    page.locator("nav.nav").get_by_role("link", name="Board", exact=True).click()
    page.wait_for_url("**/board")
    assert page.evaluate("typeof window.Sortable") == "function", "SortableJS did not load"
    for cards in page.locator("[data-stage-cards]").all():
        expect(cards).to_have_attribute("data-sortable", "1")


def column(page: Page, stage: str) -> Locator:
    """The card list of the board column headed ``stage``."""
    heading = page.get_by_role("heading", name=stage, exact=True)
    return page.locator("section.column", has=heading).locator("[data-stage-cards]")


def drag_card(page: Page, card: Locator, target: Locator) -> None:
    """Drag ``card`` by its next-step line (links and selects do not start a drag) onto
    the ``target`` list with the real mouse; return once the board request is answered.

    Chromium fires native drag events, which SortableJS handles. One move, not many
    quick ``steps``: at machine speed SortableJS ignores the dragover on the target
    (it pauses 30 ms after each reorder it makes while crossing other cards) and the
    card is dropped back where it started.
    """
    with page.expect_response(lambda r: urlsplit(r.url).path.endswith("/move")):
        card.locator("p.next-step").first.drag_to(target)


def screenshot(page: Page, name: str) -> None:
    """Save ``docs/screenshots/<name>-en.png`` of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-en.png", full_page=True)


def test_a_lead_travels_the_conveyor_from_the_board_to_the_account_manager(app, make, new_page):
    # As in production: every POST, the drag's htmx.ajax included, must carry the
    # CSRF token (the autouse _clean_state fixture turns it off for the next test).
    app.config["WTF_CSRF_ENABLED"] = True
    tenant, owner = make.workspace_with_owner(name="Sunrise Plumbing")
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    closer = make.member(tenant, Role.CLOSER)
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    dragged = make.lead(tenant, "New", owner=generator)
    journey = make.lead(tenant, "New", owner=generator)
    dragged_id, journey_id = dragged.id, journey.id
    journey_name = journey.contact.name
    decision_date = (local_today(tenant) + timedelta(days=2)).isoformat()

    # The owner drags a card from New to Contacted; the move survives a reload.
    board = new_page()
    sign_in(board, owner)
    open_board(board)
    drag_card(board, board.locator(f"#deal-{dragged_id}"), column(board, "Contacted"))
    expect(column(board, "Contacted").locator(f"#deal-{dragged_id}")).to_be_visible()
    expect(board.locator("#board-error")).to_have_count(0)
    open_board(board)
    expect(column(board, "Contacted").locator(f"#deal-{dragged_id}")).to_be_visible()
    expect(column(board, "New").locator(f"#deal-{dragged_id}")).to_have_count(0)

    # An unqualified lead dropped on Assigned snaps back with the reason.
    drag_card(board, board.locator(f"#deal-{journey_id}"), column(board, "Assigned"))
    expect(board.locator("#board-error")).to_have_text(REFUSAL)
    expect(column(board, "New").locator(f"#deal-{journey_id}")).to_be_visible()
    open_board(board)
    expect(board.locator("#board-error")).to_have_count(0)
    expect(column(board, "New").locator(f"#deal-{journey_id}")).to_be_visible()
    expect(column(board, "Assigned").locator(".card")).to_have_count(0)

    # Without dragging: the card's own stage select and its Move button.
    card = board.locator(f"#deal-{journey_id}")
    card.locator("select[name=stage_id]").select_option(label="Qualified")
    card.get_by_role("button", name="Move", exact=True).click()
    expect(column(board, "Qualified").locator(f"#deal-{journey_id}")).to_be_visible()
    open_board(board)
    expect(column(board, "Qualified").locator(f"#deal-{journey_id}")).to_be_visible()
    screenshot(board, "board")

    # The lead generator records the three conditions and sends the lead on.
    generation = new_page()
    sign_in(generation, generator)
    generation.goto(f"/deals/{journey_id}")
    send = generation.locator("#convert-form").get_by_role("button", name="Send to conversion")
    expect(send).to_be_disabled()
    form = generation.locator("#qualification-form")
    form.locator("[name=problem]").fill("The boiler leaks every winter")
    form.locator("[name=money]").fill("confirmed, up to 2000")
    form.locator("[name=decision_date]").fill(decision_date)
    form.locator("[name=value]").fill("1500")
    form.get_by_role("button", name="Save").click()
    expect(generation.locator(".flash-success")).to_have_text(
        "Qualified: problem, money and timing are recorded."
    )
    expect(form.locator("[name=decision_date]")).to_have_value(decision_date)
    expect(send).to_be_enabled()
    screenshot(generation, "lead")
    send.click()
    generation.wait_for_url("**/board")
    expect(generation.locator(".flash-success")).to_have_text(
        f"Sent to {closer.name} for conversion."
    )
    expect(generation.locator(f"#deal-{journey_id}")).to_have_count(0)

    # The closer finds it at the top of Today and wins it with two promises.
    closing = new_page()
    sign_in(closing, closer)
    closing.goto("/today")
    queued = closing.locator(f"#queue-{journey_id}")
    expect(queued).to_contain_text(journey_name)
    expect(queued).to_have_class(re.compile(r"\bin-window\b"))  # decides within 3 days
    screenshot(closing, "today")
    queued.get_by_role("link", name=journey_name).click()
    closing.wait_for_url(f"**/deals/{journey_id}")
    closing.locator("#win-deal").click()
    closing.wait_for_url(f"**/deals/{journey_id}/win")
    win = closing.locator("#win-form")
    win.locator("[name=value]").fill("1800")
    win.locator("[name=account_manager_id]").select_option(label=manager.name)
    win.locator("[name=promises-0-text]").fill("Free inspection after the first winter")
    win.locator("[name=promises-1-text]").fill("Five percent off the spare parts")
    win.locator("[name=promises-1-discount_percent]").fill("5")
    win.get_by_role("button", name="Mark as won").click()
    closing.wait_for_url("**/today")
    expect(closing.locator(".flash-success")).to_have_text("Won and handed off with 2 promises.")
    expect(closing.locator(f"#queue-{journey_id}")).to_have_count(0)

    # The account manager keeps one promise and flags the other.
    account = new_page()
    sign_in(account, manager)
    account.goto("/handoffs")
    rows = account.locator("#promises li[id^=promise-]")
    expect(rows).to_have_count(2)
    kept = rows.filter(has_text="Free inspection after the first winter")
    flagged = rows.filter(has_text="Five percent off the spare parts")
    expect(flagged).to_contain_text("−5%")
    screenshot(account, "handoffs")
    kept.get_by_role("button", name="Accept").click()
    expect(kept).to_have_count(0)
    expect(rows).to_have_count(1)
    flagged.locator("[name=reason]").fill("Spare parts are billed by the supplier")
    flagged.get_by_role("button", name="Flag").click()
    expect(account.locator(".flash-info")).to_have_text("Flagged: the owner sees it as a conflict.")
    expect(rows).to_have_count(0)
    expect(account.locator(".empty")).to_have_text("No promises waiting for you.")

    # The owner sees the flag on the deal: in its timeline and its promises.
    board.goto(f"/deals/{journey_id}")
    expect(board.locator("#timeline")).to_contain_text(
        "decided the promise “Five percent off the spare parts”: flagged"
        " — Spare parts are billed by the supplier"
    )
    promises = board.locator("#promises li")
    expect(promises).to_have_count(2)
    expect(promises.filter(has_text="Free inspection")).to_contain_text("accepted")
    flag = promises.filter(has_text="Five percent off the spare parts")
    expect(flag.locator(".badge")).to_have_text("flagged")
    expect(flag).to_contain_text("Spare parts are billed by the supplier")
