"""The pages that read posts and the timeline (issue 17), in a browser: a lead page with its
post and typed events, the inbox, a rejected and an accepted post, a source's Connect page,
in English and Russian on a desktop and a phone. Nothing overflows or is cut off, the
technical details stay folded, and no internal name or HTTP code is what a person reads."""

import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.conveyor import services as conveyor
from app.extensions import db
from app.models import InboxItem, InboxStatus, Lead, Stage
from app.sources import services as sources
from tests import factories
from tests.e2e.test_layout import PROBLEMS_JS, WIDTHS

ALL = {"all_tenants": True}
# Set to a folder to keep a screenshot of each page (for a person to look at).
SHOTS = os.environ.get("CONVEYOR_WORDS_SHOTS")

POST = {
    "name": "Anna Petrova",
    "email": "anna@example.com",
    "phone": "+44 20 7946 0018",
    "company": "Petrova Bakes",
    "message": "Need 20 kg of flour weekly for the new shop on the corner",
    "budget": "1200",
    "decision_date": "2026-12-15",
    "external_id": "order-1001",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "winter-flour-promotion-with-a-rather-long-name",
    "delivery_city": "Leeds",
    "cart": {"items": [{"sku": "FL-20", "qty": 2}], "coupon": "WINTER"},
}


def _scene(app, language: str) -> dict:
    """A workspace with an accepted post (its lead cadenced and planned) and a rejected one."""
    with app.app_context():
        tenant, owner = factories.workspace_with_owner(name="Corner Bakery")
        tenant.language = language
        owner.locale = language
        db.session.commit()
        source = sources.create_source(tenant, "Site form", "site_form")
        client = app.test_client()
        assert client.post(f"/in/{source.intake_token}", json=POST).status_code == 202
        bad = {**POST, "email": "anna@@example", "decision_date": "15/12/2026", "external_id": ""}
        assert client.post(f"/in/{source.intake_token}", json=bad).status_code == 422
        lead = None
        for _ in range(50):  # the lead builder runs in the background (tests/e2e/conftest.py)
            lead = db.session.scalar(sa.select(Lead).execution_options(**ALL))
            if lead is not None:
                break
            db.session.rollback()
            time.sleep(0.1)
        client_stage = db.session.scalar(
            sa.select(Stage)
            .where(Stage.tenant_id == tenant.id, Stage.phase == "account")
            .order_by(Stage.position)
            .execution_options(**ALL)
        )
        lead.stage_id = client_stage.id
        db.session.commit()
        membership = factories.membership_of(tenant, owner)
        conveyor.set_cadence(membership, lead, 3)
        conveyor.schedule_touch(membership, lead, datetime(2026, 12, 1, 15, 30))
        items = {
            item.status: item.id
            for item in db.session.scalars(sa.select(InboxItem).execution_options(**ALL))
        }
        scene = {
            "email": owner.email,
            "pages": [
                f"/deals/{lead.id}",
                "/inbox",
                f"/inbox/{items[InboxStatus.REJECTED]}",
                f"/inbox/{items[InboxStatus.ACCEPTED]}",
                f"/sources/{source.id}/connect",
            ],
        }
        db.session.remove()
        return scene


@pytest.mark.parametrize("language", ["en", "ru"])
def test_post_and_timeline_pages_read_in_words_and_fit(app, new_page, language):
    scene = _scene(app, language)
    page = new_page(locale="ru-RU" if language == "ru" else "en-GB")
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/login")
    page.fill("input[name=email]", scene["email"])
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("form#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    failures = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in scene["pages"]:
            errors.clear()
            page.goto(path)
            page.wait_for_load_state("networkidle")
            problems = page.evaluate(PROBLEMS_JS, width >= 1000)
            problems += [f"console: {e}" for e in errors if "ERR_FAILED" not in e]
            folded = page.locator("main details.technical")
            problems += [
                "technical details open"
                for i in range(folded.count())
                if folded.nth(i).get_attribute("open") is not None
            ]
            # What a person reads: the folded details aside, and the Connect page, which
            # is the reference for wiring a sender (its field names and answers).
            read = page.evaluate(
                """() => { const main = document.querySelector("main").cloneNode(true);
                main.querySelectorAll("details, code, pre").forEach((el) => el.remove());
                return main.innerText; }"""
            )
            if "/connect" not in path and re.search(
                r"utm_|\{|(?<![\d,.\s])(200|202|400|401|422)(?!\d)", read
            ):
                problems.append(f"internals on the page: {read[:300]!r}")
            failures += [f"{language} {width}px {path}: {p}" for p in problems]
            if SHOTS:
                name = re.sub(r"\W+", "-", path.strip("/")) or "home"
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{SHOTS}/{name}-{language}-{width}.png", full_page=True)
    assert not failures, "\n".join(failures)
