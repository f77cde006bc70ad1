"""The owner picks the workspace's timezone by city in English and Russian: the whole list
opens on focus, a picked place saves, and a place that is none is told at the field."""

import pytest
from playwright.sync_api import expect

from app import demo
from app.extensions import db
from app.models import Tenant
from tests.e2e.test_layout import ROLES, _set_language

PLACES = {
    "en": ("Mosc", "Moscow, Russia · UTC+3", "Pick a city from the list, such as London."),
    "ru": ("Моск", "Москва, Россия · UTC+3", "Выберите город из списка, например Москва."),
}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_owner_picks_the_timezone_by_city(app, new_page, language):
    with app.app_context():
        tenant_id = demo.seed()["id"]
        _set_language(ROLES["owner"], language)
        db.session.remove()
    typed, place, refusal = PLACES[language]
    page = new_page(locale="ru-RU" if language == "ru" else "en-GB")
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto("/login")
    page.fill("input[name=email]", ROLES["owner"])
    page.fill("input[name=password]", demo.DEMO_PASSWORD)
    page.click("form#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto("/settings")
    box = page.locator("#timezone")
    held = box.input_value()
    assert " · UTC" in held and "/" not in held
    box.focus()  # the held place steps aside so that the whole list opens
    expect(box).to_have_value("")
    expect(box).to_have_attribute("placeholder", held)
    page.locator("#name").focus()
    expect(box).to_have_value(held)

    box.focus()
    box.type(typed)
    matches = page.eval_on_selector_all(
        "#timezones option",
        "(options, typed) => options.map(o => o.value)"
        ".filter(v => v.toLowerCase().includes(typed.toLowerCase()))",
        typed,
    )
    assert matches == [place]
    box.fill(place)  # what choosing the suggestion puts in the box
    page.click("#settings-form button[type=submit]")
    expect(page.locator(".flash-success")).to_be_visible()
    expect(box).to_have_value(place)
    with app.app_context():
        assert db.session.get(Tenant, tenant_id).timezone == "Europe/Moscow"
        db.session.remove()

    assert not [e for e in errors if "ERR_FAILED" not in e]

    box.fill("Atlantis")  # refused with 422, which the console notes
    page.click("#settings-form button[type=submit]")
    expect(page.locator("#timezone-error")).to_have_text(refusal)
    expect(box).to_have_value("Atlantis")
