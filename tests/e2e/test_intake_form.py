"""The embeddable form in a real browser: a visitor sends it, the lead generator
sees the lead appear on their list without reloading."""

from pathlib import Path

from playwright.sync_api import expect

from app.models import Role
from app.sources import services as sources

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_a_visitor_sends_the_hosted_form_and_the_lead_appears_without_reload(app, make, new_page):
    tenant, _ = make.workspace_with_owner(name="Bakery")
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    source = sources.create_source(tenant, "Site form", "site_form")
    token = source.intake_token

    worker = new_page()
    worker.goto("/login")
    worker.locator("#login-form [name=email]").fill(generator.email)
    worker.locator("#login-form [name=password]").fill("correct horse battery")
    worker.locator("#login-form button[type=submit]").click()
    worker.wait_for_url("**/")
    worker.goto("/leads")
    expect(worker.locator(".empty")).to_be_visible()

    visitor = new_page()
    visitor.goto(f"/in/{token}/form")
    visitor.locator("[name=name]").fill("Mila from the café")
    visitor.locator("[name=email]").fill("mila@example.com")
    visitor.locator("[name=message]").fill("Croissants for 40 people on Friday")
    visitor.wait_for_timeout(3200)  # a person takes longer than the bot threshold
    visitor.locator("#lead-form button[type=submit]").click()
    expect(visitor.locator("h1")).to_have_text("Thank you!")

    # The incoming list polls with htmx: the lead shows up with no reload.
    expect(worker.locator("#incoming")).to_contain_text("Mila from the café", timeout=8000)
    expect(worker.locator("#incoming")).to_contain_text(generator.name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    worker.screenshot(path=SCREENSHOTS / "incoming-en.png", full_page=True)


def test_a_bot_filling_the_honeypot_never_reaches_the_list(app, make, new_page):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    source = sources.create_source(tenant, "Site form", "site_form")
    bot = new_page()
    bot.goto(f"/in/{source.intake_token}/form")
    bot.evaluate("document.querySelector('[name=_hp]').value = 'http://spam.example'")
    bot.locator("[name=name]").fill("Cheap pills")
    bot.locator("[name=email]").fill("bot@example.com")
    bot.locator("#lead-form button[type=submit]").click()
    expect(bot.locator("h1")).to_have_text("Thank you!")
    owner_page = new_page()
    owner_page.goto("/login")
    owner_page.locator("#login-form [name=email]").fill(owner.email)
    owner_page.locator("#login-form [name=password]").fill("correct horse battery")
    owner_page.locator("#login-form button[type=submit]").click()
    owner_page.wait_for_url("**/")
    owner_page.goto("/leads")
    expect(owner_page.locator(".empty")).to_be_visible()
    owner_page.goto("/inbox?status=spam")
    expect(owner_page.locator("#inbox-rows")).to_contain_text("Spam: a bot filled in the form")
