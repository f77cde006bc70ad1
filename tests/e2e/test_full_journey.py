"""The whole product in a real browser, once in English and once in Russian.

An owner signs up (a Russian speaker switches the language in the footer), writes the
rules and invites a lead generator, a closer and an account manager, who join by the
emailed links in browsers of their own. The owner creates a lead source and reads its
intake address on the Connect page; a lead posted there appears on the lead
generator's open board without a reload. The lead generator qualifies it and sends it
to conversion; the closer finds it on Today and wins it with two promises; the
account manager accepts one and flags the other; the owner sees the conflict. The
account manager logs a touch, tomorrow morning's digest names the client, and the
owner's billing page shows the trial.

Selectors are ids and field names; expected texts come from the app's own catalogue
(``t``), so both languages share the code, and the Russian run also checks a Russian
word on screen. Screenshots go to ``docs/screenshots/journey-<step>-<lang>.png``.
"""

import json
import re
import urllib.request
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import monotonic, sleep
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext
from playwright.sync_api import Locator, Page, expect

from app import formatting
from app.conveyor.services import local_today
from app.engine import delivery, schedule
from app.extensions import db
from app.models import InboxItem, InboxStatus, Tenant
from tests.stripe_stub import StripeStub

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "a long enough pass 123"
BROWSER_LOCALE = {"en": "en-US", "ru": "ru-RU"}
# A word of the Russian interface (the menu's "Board"): proof the pages are Russian.
RUSSIAN_BOARD = "Доска"
# What people type, in the language of the run.
PEOPLE = {
    "en": {
        "workspace": "Sunrise Plumbing",
        "owner": "Olga Owner",
        "generator": "Gleb Generator",
        "closer": "Clara Closer",
        "manager": "Mark Manager",
        "source": "Site form",
        "client": "Anna Petrova",
        "company": "Petrova Bakery",
        "message": "The boiler leaks every winter",
        "problem": "A leaking boiler in the bakery",
        "money": "confirmed, up to 2000",
        "kept": "Free inspection after the first winter",
        "flagged": "Five percent off the spare parts",
        "reason": "Spare parts are billed by the supplier",
        "outcome": "Called: the boiler works, she is happy",
    },
    "ru": {
        "workspace": "Сантехника «Рассвет»",
        "owner": "Ольга Владелец",
        "generator": "Глеб Лидогенератор",
        "closer": "Клара Продавец",
        "manager": "Марк Менеджер",
        "source": "Форма на сайте",
        "client": "Анна Петрова",
        "company": "Пекарня Петровой",
        "message": "Котёл течёт каждую зиму",
        "problem": "Течёт котёл в пекарне",
        "money": "подтверждено, до 2000",
        "kept": "Бесплатный осмотр после первой зимы",
        "flagged": "Пять процентов скидки на запчасти",
        "reason": "Запчасти оплачиваются поставщику",
        "outcome": "Позвонили: котёл работает, клиентка довольна",
    },
}


def translate(app, lang: str, text: str, **values) -> str:
    """``text`` as the app says it in ``lang`` (its own catalogue)."""
    with app.test_request_context(), force_locale(lang):
        return gettext(text, **values)


def localized_date(app, lang: str, day) -> str:
    """A date as the app's templates print it (``app.formatting.format_date``) in ``lang``."""
    with app.test_request_context(), force_locale(lang):
        return formatting.format_date(day)


def assert_page_ready(page: Page, lang: str) -> None:
    """The page has loaded in ``lang`` and htmx is there (the local copy: the CDN is blocked)."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"


def arrive(page: Page, path: str, lang: str) -> None:
    """Wait until the browser shows ``path`` (a full or a boosted navigation) in ``lang``."""
    page.wait_for_url(lambda url: urlsplit(url).path == path)
    assert_page_ready(page, lang)


def menu(page: Page, path: str, lang: str) -> None:
    """Follow the header menu's link to ``path``, as people do."""
    page.locator(f"header nav a[href^='{path}']").first.click()
    arrive(page, path, lang)


def submit(page: Page, form_id: str, **fields: str) -> None:
    """Fill the text fields of form ``form_id`` by name and press its submit button."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()


def screenshot(page: Page, step: str, lang: str) -> None:
    """Save ``docs/screenshots/journey-<step>-<lang>.png`` of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"journey-{step}-{lang}.png", full_page=True)


def column(page: Page, stage: str) -> Locator:
    """The card list of the board column headed ``stage``."""
    heading = page.get_by_role("heading", name=stage, exact=True)
    return page.locator("section.column", has=heading).locator("[data-stage-cards]")


def post_lead(intake_url: str, payload: dict, key: str) -> tuple[int, dict]:
    """POST ``payload`` as JSON to the intake address, as a site or a partner would."""
    request = urllib.request.Request(
        intake_url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def built_lead_id(app, receipt: str) -> int:
    """The lead the worker's builder made of the post with this receipt (waits up to 10 s)."""
    deadline = monotonic() + 10
    with app.app_context():
        while True:
            lead_id = db.session.scalar(
                sa.select(InboxItem.lead_id)
                .where(InboxItem.receipt == receipt, InboxItem.status == InboxStatus.ACCEPTED)
                .execution_options(all_tenants=True)
            )
            db.session.remove()
            if lead_id is not None or monotonic() > deadline:
                assert lead_id is not None, f"post {receipt} was not built into a lead"
                return lead_id
            sleep(0.1)


@pytest.fixture
def stripe_billing(app):
    """Billing on, as in production, against the local Stripe stand-in (this test only)."""
    stub = StripeStub().start()
    settings = {
        "STRIPE_SECRET_KEY": "sk_test_conveyor",
        "STRIPE_WEBHOOK_SECRET": "whsec_test_conveyor",
        "STRIPE_PRICE_STARTER": "price_starter",
        "STRIPE_PRICE_TEAM": "price_team",
        "STRIPE_API_BASE": stub.url,
    }
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    yield stub
    app.config.update(saved)
    stub.stop()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_whole_conveyor_from_signup_to_the_morning_digest(
    lang, app, new_page, live_server, mailbox, run_jobs, stripe_billing
):
    app.config["WTF_CSRF_ENABLED"] = True  # as in production (reset by _clean_state)
    people = PEOPLE[lang]

    def t(text: str, **values) -> str:
        return translate(app, lang, text, **values)

    workspace = people["workspace"]
    roles = ("owner", "generator", "closer", "manager")
    emails = {role: f"{role}-{lang}@example.com" for role in roles}

    # 1. The owner signs up. The browser speaks English; a Russian speaker switches
    # the language in the footer, and the page stays the sign-up page.
    owner = new_page(locale="en-US")
    owner.goto("/signup")
    assert_page_ready(owner, "en")
    if lang == "ru":
        owner.locator("footer button[name=language][value=ru]").click()
        arrive(owner, "/signup", "ru")
    expect(owner.locator("#signup-form button[type=submit]")).to_have_text(t("Create workspace"))
    screenshot(owner, "signup", lang)
    submit(
        owner,
        "signup-form",
        business_name=workspace,
        name=people["owner"],
        email=emails["owner"],
        password=PASSWORD,
    )
    # The same page for every address; the emailed link opens the workspace.
    arrive(owner, "/signup/sent", lang)
    expect(owner.locator("h1")).to_have_text(t("Check your email to continue"))
    run_jobs()
    [welcome] = mailbox.to(emails["owner"])
    link = re.search(r"https?://\S+/signup/confirm/\S+", mailbox.text(welcome)).group(0)
    assert link.startswith(live_server + "/") and link in mailbox.html(welcome)
    owner.goto(link)
    assert_page_ready(owner, lang)
    owner.locator("#confirm-signup button[type=submit]").click()
    arrive(owner, "/", lang)
    expect(owner.locator("h1")).to_have_text(workspace)
    expect(owner.locator(".flash-success")).to_have_text(t("Your workspace is ready."))
    expect(owner.locator("header nav a[href='/board']")).to_have_text(t("Board"))
    if lang == "ru":
        expect(owner.locator("header nav")).to_contain_text(RUSSIAN_BOARD)

    # The owner's rules: this business touches every client daily.
    menu(owner, "/rules", lang)
    submit(owner, "rules-form", touch_cadence_days="1")
    expect(owner.locator(".flash-success")).to_have_text(t("Rules saved."))
    expect(owner.locator("#rules-form [name=touch_cadence_days]")).to_have_value("1")

    # The owner invites the three other roles of the conveyor by email.
    menu(owner, "/team", lang)
    for role, value in (
        ("generator", "lead_generator"),
        ("closer", "closer"),
        ("manager", "account_manager"),
    ):
        owner.locator("#invite-form [name=role]").select_option(value)
        submit(owner, "invite-form", email=emails[role])
        expect(owner.locator("#team ul.list")).to_contain_text(emails[role])
    run_jobs()  # the worker sends the invitations

    pages = {}
    for role in ("generator", "closer", "manager"):
        [invitation] = mailbox.to(emails[role])
        link = re.search(r"https?://\S+/invitations/\S+", mailbox.text(invitation)).group(0)
        assert link.startswith(live_server + "/")
        page = new_page(locale=BROWSER_LOCALE[lang])
        page.goto(link)
        assert_page_ready(page, lang)
        expect(page.locator("h1")).to_have_text(t("Join %(name)s", name=workspace))
        submit(page, "accept-form", name=people[role], password=PASSWORD)
        arrive(page, "/", lang)
        expect(page.locator(".flash-success")).to_have_text(
            t("Welcome to %(name)s.", name=workspace)
        )
        pages[role] = page
    generation, closing, account = pages["generator"], pages["closer"], pages["manager"]

    # 2. The owner creates a lead source on the Sources page and reads its intake
    # address on its Connect page.
    menu(owner, "/sources", lang)
    expect(owner.locator("main .empty")).to_be_visible()
    owner.locator("main a[href='/sources/new']").first.click()
    arrive(owner, "/sources/new", lang)
    owner.locator("#source-form [name=kind]").select_option("site_form")
    submit(owner, "source-form", name=people["source"])
    owner.wait_for_url(re.compile(r"/sources/\d+/connect$"))
    assert_page_ready(owner, lang)
    expect(owner.locator(".flash-success")).to_have_text(
        t("Source %(name)s created. Connect it below.", name=people["source"])
    )
    expect(owner.locator("h1")).to_have_text(t("Connect %(name)s", name=people["source"]))
    intake_url = owner.locator("#intake-url").inner_text().strip()
    assert re.fullmatch(re.escape(live_server) + r"/in/[\w-]+", intake_url), intake_url
    screenshot(owner, "connect", lang)

    # 3. With the lead generator's board open, a site posts a lead to that address:
    # the card appears on the board with no reload (the window keeps its marker and
    # its time origin), within the 15 s that the wait allows.
    menu(generation, "/board", lang)
    new_column = column(generation, t("New"))
    expect(new_column.locator(".card")).to_have_count(0)
    generation.evaluate("window.journeyMarker = 'the same page'")
    loaded_at = generation.evaluate("performance.timeOrigin")

    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.name == workspace))
        today = local_today(tenant)
        zone, digest_hour = ZoneInfo(tenant.timezone), tenant.digest_hour
        db.session.remove()
    tomorrow = today + timedelta(days=1)
    decision_date = today + timedelta(days=2)
    status, answer = post_lead(
        intake_url,
        {
            "name": people["client"],
            "email": f"anna-{lang}@example.org",
            "phone": "+7 912 345-67-89",
            "company": people["company"],
            "message": people["message"],
            "decision_date": decision_date.isoformat(),
            "utm_source": "google",
        },
        key=f"journey-{lang}",
    )
    assert (status, answer["status"]) == (202, "accepted"), answer
    lead_id = built_lead_id(app, answer["id"])

    card = new_column.locator(f"#deal-{lead_id}")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text(people["client"])  # a compact card: name, value, next step
    assert generation.evaluate("window.journeyMarker") == "the same page", "the board reloaded"
    assert generation.evaluate("performance.timeOrigin") == loaded_at, "the board reloaded"
    assert urlsplit(generation.url).path == "/board"
    screenshot(generation, "board", lang)

    # 4. The lead generator opens the card, records problem, money and timing, and
    # sends the lead to conversion (to the only closer).
    card.locator("h3 a").click()
    arrive(generation, f"/deals/{lead_id}", lang)
    expect(generation.locator("h1")).to_have_text(people["client"])
    expect(generation.locator("main")).to_contain_text(people["source"])  # attributed
    expect(generation.locator("main")).to_contain_text(people["generator"])  # routed
    send = generation.locator("#convert-form button[type=submit]")
    expect(send).to_be_disabled()
    form = generation.locator("#qualification-form")
    form.locator("[name=problem]").fill(people["problem"])
    form.locator("[name=money]").fill(people["money"])
    form.locator("[name=decision_date]").fill(decision_date.isoformat())
    form.locator("[name=value]").fill("1500")
    form.locator("button[type=submit]").click()
    expect(generation.locator(".flash-success")).to_have_text(
        t("Qualified: problem, money and timing are recorded.")
    )
    expect(send).to_be_enabled()
    screenshot(generation, "lead", lang)
    send.click()
    arrive(generation, "/board", lang)
    expect(generation.locator(".flash-success")).to_have_text(
        t("Sent to %(name)s for conversion.", name=people["closer"])
    )
    expect(generation.locator(f"#deal-{lead_id}")).to_have_count(0)

    # 5. The closer's Today page holds the lead, marked as deciding within three days.
    menu(closing, "/today", lang)
    queued = closing.locator(f"#queue-{lead_id}")
    expect(queued).to_contain_text(people["client"])
    expect(queued).to_contain_text(
        t("decision %(date)s", date=localized_date(app, lang, decision_date))
    )
    expect(queued).to_have_class(re.compile(r"\bin-window\b"))
    screenshot(closing, "today", lang)

    # 6. The closer wins it and records the two promises made to the client.
    queued.locator("h2 a").click()
    arrive(closing, f"/deals/{lead_id}", lang)
    closing.locator("#win-deal").click()
    arrive(closing, f"/deals/{lead_id}/win", lang)
    win = closing.locator("#win-form")
    win.locator("[name=value]").fill("1800")
    win.locator("[name=account_manager_id]").select_option(label=people["manager"])
    win.locator("[name=promises-0-text]").fill(people["kept"])
    win.locator("[name=promises-0-due_on]").fill((today + timedelta(days=30)).isoformat())
    win.locator("[name=promises-1-text]").fill(people["flagged"])
    win.locator("[name=promises-1-discount_percent]").fill("5")  # within the 10% rule
    screenshot(closing, "win", lang)
    win.locator("button[type=submit]").click()
    arrive(closing, "/today", lang)
    expect(closing.locator(".flash-success")).to_have_text(
        t("Won and handed off with %(num)d promises.", num=2)
    )
    expect(closing.locator(f"#queue-{lead_id}")).to_have_count(0)

    # 7. The account manager finds the new client and its promises: keeps one, flags one.
    menu(account, "/clients", lang)
    expect(account.locator(f"#client-{lead_id}")).to_contain_text(people["client"])
    account.locator("main a[href='/handoffs']").click()
    arrive(account, "/handoffs", lang)
    expect(account.locator(f"#handoff-{lead_id}")).to_contain_text(people["client"])
    rows = account.locator("#promises li[id^=promise-]")
    expect(rows).to_have_count(2)
    kept = rows.filter(has_text=people["kept"])
    flagged = rows.filter(has_text=people["flagged"])
    expect(flagged).to_contain_text("−5%")
    screenshot(account, "handoffs", lang)
    kept.get_by_role("button", name=t("Accept"), exact=True).click()
    expect(kept).to_have_count(0)
    expect(rows).to_have_count(1)
    flagged.locator("[name=reason]").fill(people["reason"])
    flagged.get_by_role("button", name=t("Flag"), exact=True).click()
    expect(account.locator(".flash-info")).to_have_text(
        t("Flagged: the owner sees it as a conflict.")
    )
    expect(rows).to_have_count(0)

    # 8. The owner's menu counts one open conflict; the conflicts page shows the flag.
    menu(owner, "/conflicts", lang)
    expect(owner.locator("#open-conflicts")).to_have_text("1")
    conflicts = owner.locator("#conflicts tbody tr")
    expect(conflicts).to_have_count(1)
    expect(conflicts).to_contain_text(t("Promise flagged by the account manager"))
    expect(conflicts).to_contain_text(people["closer"])  # who made the promise
    expect(conflicts).to_contain_text(t("open"))
    expect(conflicts).to_contain_text(people["client"])  # the deal it is about, by name
    screenshot(owner, "conflicts", lang)
    conflicts.locator("a[href*='/conflicts/']").click()
    owner.wait_for_url(re.compile(r"/conflicts/\d+$"))
    details = owner.locator("#conflict-details")
    expect(details).to_contain_text(people["flagged"])
    expect(details).to_contain_text(people["reason"])
    expect(details).to_contain_text(people["client"])  # the person and the deal, not an id
    expect(details).not_to_contain_text(f"#{lead_id}")

    # 9. The account manager logs a touch on the client: its next touch is tomorrow.
    menu(account, "/clients", lang)
    client_row = account.locator(f"#client-{lead_id}")
    expect(client_row).to_contain_text(localized_date(app, lang, tomorrow))
    client_row.locator("a").click()
    arrive(account, f"/deals/{lead_id}", lang)
    touch = account.locator("#touch-form")
    touch.locator("[name=channel]").select_option("call")
    touch.locator("[name=outcome]").fill(people["outcome"])
    touch.locator("button[type=submit]").click()
    expect(account.locator(".flash-success")).to_have_text(t("Touch logged."))
    expect(account.locator("#timeline")).to_contain_text(
        t("touch by %(channel)s: %(outcome)s", channel=t("Call"), outcome=people["outcome"])
    )
    expect(account.locator("#promises")).to_contain_text(people["reason"])
    screenshot(account, "client", lang)
    menu(account, "/clients", lang)
    expect(client_row.locator("td").nth(2)).not_to_have_text("—")  # last touch: just now
    expect(client_row.locator("td").nth(3)).to_have_text(localized_date(app, lang, tomorrow))

    # 10. Tomorrow at the digest hour (workspace time) the engine's tick records the
    # morning mail and the sender delivers it: the account manager's digest names the
    # client due that day.
    morning = datetime.combine(tomorrow, time(digest_hour, 5), zone).astimezone(UTC)
    with app.app_context():
        assert schedule.tick(morning)["workspaces_due"] >= 1
        counts = delivery.deliver_due(morning)
        db.session.remove()
    assert counts["failed"] == counts["retry"] == 0, counts
    digest_subject = t(
        "Your morning on %(name)s, %(date)s",
        name=workspace,
        date=localized_date(app, lang, tomorrow),
    )
    [digest] = [m for m in mailbox.to(emails["manager"]) if m["Subject"] == digest_subject]
    text = mailbox.text(digest)
    assert people["client"] in text, text
    due_line = t("Clients to touch today: %(num)d, of them overdue: %(overdue)d.", num=1, overdue=0)
    assert due_line in text, text
    assert people["client"] in mailbox.html(digest)
    # The bell's list says so too.
    account.locator("#bell").click()
    arrive(account, "/notifications", lang)
    expect(account.locator("main")).to_contain_text(
        t(
            "Your morning digest for %(date)s is in your inbox.",
            date=localized_date(app, lang, tomorrow),
        )
    )

    # 11. The owner's billing page shows the 14-day trial for the four seats.
    menu(owner, "/billing", lang)
    expect(owner.locator("#billing-plan")).to_have_text(t("Free trial"))
    expect(owner.locator("#billing-status")).to_have_text(t("Trial"))
    expect(owner.locator("#billing-trial-days")).to_have_text("14")
    expect(owner.locator("#billing-seats")).to_have_text("4")
    expect(owner.locator("#checkout-form")).to_be_visible()
    screenshot(owner, "billing", lang)
    assert stripe_billing.requests == [], "a trial needs nothing from Stripe"
