"""In a real browser: a lead generator marks a partner's leads as junk, and the
owner's bell lights up with the quality alert without reloading the page."""

from playwright.sync_api import expect

from app.extensions import db
from app.models import Role

PASSWORD = "correct horse battery"


def sign_in(page, email):
    """Sign in through the login form and wait for the home page."""
    page.goto("/login")
    page.locator("#login-form [name=email]").fill(email)
    page.locator("#login-form [name=password]").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url("**/")


def test_junk_from_a_partner_lights_the_owners_bell_without_a_reload(app, make, new_page):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    tenant.quality_window = 5
    db.session.commit()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    partner = make.source(tenant, "CaterLink", cost=5000)
    partner_id = partner.id
    leads = []
    for _ in range(5):  # the alarm sounds by a junk partner's 5th judged lead
        lead = make.lead(tenant, "New", owner=generator)
        lead.source_id = partner.id
        leads.append(lead.id)
    db.session.commit()

    owner_page = new_page()
    sign_in(owner_page, owner.email)
    owner_page.goto("/board")
    expect(owner_page.locator("#bell-count")).to_have_count(0)
    loaded_at = owner_page.evaluate("performance.timeOrigin")

    generator_page = new_page()
    sign_in(generator_page, generator.email)
    generator_page.on("dialog", lambda dialog: dialog.accept())  # "Close this deal as lost?"
    for lead_id in leads:
        generator_page.goto(f"/deals/{lead_id}")
        generator_page.locator("#lose-form [name=reason]").select_option("junk")
        generator_page.locator("#lose-form button[type=submit]").click()
        generator_page.wait_for_url("**/board")

    expect(owner_page.locator("#bell-count")).to_have_text("1", timeout=15_000)
    assert owner_page.evaluate("performance.timeOrigin") == loaded_at  # no reload happened
    owner_page.locator("#bell").click()
    expect(owner_page.locator("main")).to_contain_text("Lead quality dropped at CaterLink")

    # The radar page shows the figures at once and fills in the funnel by itself.
    owner_page.goto("/radar?days=7")
    expect(owner_page.locator(f"#figures-{partner_id}")).to_contain_text("5 (100%)")
    new_stage = owner_page.locator("#funnel-stages tbody tr").first
    expect(new_stage).to_contain_text("New", timeout=15_000)
    expect(new_stage.locator("td").nth(1)).to_have_text("5")  # all five were in New
