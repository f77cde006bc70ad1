"""The first journey, in a real browser: an owner signs up and invites a closer,
who joins by the emailed link, signs out and signs in again.

It runs in English and in Russian; selectors use ids and field names, not
English labels, so both runs share the code.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from rq.registry import FailedJobRegistry

from app.queue import get_queue

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "a long enough pass 123"
BROWSER_LOCALE = {"en": "en-US", "ru": "ru-RU"}
WORKSPACE = {"en": "Sunrise Plumbing", "ru": "Сантехника «Рассвет»"}
CYRILLIC = re.compile("[А-Яа-яЁё]")


def assert_page_ready(page: Page, lang: str) -> None:
    """The page has loaded in ``lang`` and htmx is there (the local copy: the CDN is blocked)."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"


def arrive(page: Page, path: str, lang: str) -> None:
    """Wait until the browser has navigated to ``path`` and the page is ready."""
    page.wait_for_url(lambda url: urlsplit(url).path == path)
    assert_page_ready(page, lang)


def submit(page: Page, form_id: str, **fields: str) -> None:
    """Fill the text fields of form ``form_id`` by name and press its submit button."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()


def screenshot(page: Page, name: str, lang: str) -> None:
    """Save ``docs/screenshots/<name>-<lang>.png`` of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{lang}.png", full_page=True)


def failed_jobs(app) -> list[str]:
    """Tracebacks of the queued jobs that failed (the worker records them, it does not raise)."""
    with app.app_context():
        queue = get_queue()
        job_ids = FailedJobRegistry(queue=queue).get_job_ids()
        return [queue.fetch_job(job_id).latest_result().exc_string for job_id in job_ids]


def sign_out(page: Page) -> None:
    """Open the account menu in the header and press Sign out."""
    switcher = page.locator("header details.switcher")
    switcher.locator("summary").click()
    switcher.locator("form[action='/logout'] button").click()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_owner_signs_up_and_teammate_joins_by_invitation(
    lang, app, new_page, live_server, mailbox, run_jobs
):
    workspace = WORKSPACE[lang]
    teammate_email = f"closer-{lang}@example.com"

    # The owner's browser speaks English; a Russian speaker switches in the footer.
    owner = new_page(locale="en-US")
    owner.goto("/signup")
    assert_page_ready(owner, "en")
    if lang != "en":
        owner.locator("footer button[name=language][value=ru]").click()
        assert_page_ready(owner, lang)
        assert urlsplit(owner.url).path == "/signup"
    screenshot(owner, "signup", lang)

    submit(
        owner,
        "signup-form",
        business_name=workspace,
        name="Olga Owner",
        email=f"owner-{lang}@example.com",
        password=PASSWORD,
    )
    # The same page for every address: the link to go on arrives by email.
    arrive(owner, "/signup/sent", lang)
    expect(owner.locator("#signup-sent")).to_be_visible()
    assert run_jobs() == 1
    [welcome] = mailbox.to(f"owner-{lang}@example.com")
    link = re.search(r"https?://\S+/signup/confirm/\S+", mailbox.text(welcome)).group(0)
    assert link.startswith(live_server + "/") and link in mailbox.html(welcome)
    owner.goto(link)
    assert_page_ready(owner, lang)
    owner.locator("#confirm-signup button[type=submit]").click()
    arrive(owner, "/", lang)
    expect(owner.locator("h1")).to_have_text(workspace)
    screenshot(owner, "dashboard", lang)

    owner.locator("header nav a[href='/team']").click()
    arrive(owner, "/team", lang)
    invite_form = owner.locator("#invite-form")
    invite_form.locator("[name=role]").select_option("closer")
    submit(owner, "invite-form", email=teammate_email)
    expect(owner.locator("#team ul.list")).to_contain_text(teammate_email)
    assert_page_ready(owner, lang)
    screenshot(owner, "team", lang)

    # The invitation goes out from a worker job.
    assert run_jobs() == 1
    failures = failed_jobs(app)
    assert not failures, "the invitation job failed:\n" + "\n".join(failures)
    [invitation] = mailbox.to(teammate_email)
    assert invitation.get_body(preferencelist=("plain",)) is not None, "no text part"
    assert invitation.get_body(preferencelist=("html",)) is not None, "no HTML part"
    link = re.search(r"https?://\S+/invitations/\S+", mailbox.text(invitation)).group(0)
    assert link.startswith(live_server + "/")
    assert link in mailbox.html(invitation)

    # The teammate, in a browser of their own, accepts.
    teammate = new_page(locale=BROWSER_LOCALE[lang])
    teammate.goto(link)
    assert_page_ready(teammate, lang)
    expect(teammate.locator("h1")).to_contain_text(workspace)
    submit(teammate, "accept-form", name="Tim Teammate", password=PASSWORD)
    arrive(teammate, "/", lang)
    expect(teammate.locator("h1")).to_have_text(workspace)

    sign_out(teammate)
    arrive(teammate, "/login", lang)
    submit(teammate, "login-form", email=teammate_email, password=PASSWORD)
    arrive(teammate, "/", lang)
    expect(teammate.locator("h1")).to_have_text(workspace)

    # Checked last so a missing translation does not hide the rest of the journey.
    # The workspace name is Cyrillic itself, so it does not count.
    if lang == "ru":
        welcome_subject = str(welcome["Subject"]).replace(workspace, "")
        assert CYRILLIC.search(welcome_subject), f"untranslated subject: {welcome_subject}"
        subject = str(invitation["Subject"])
        assert CYRILLIC.search(subject.replace(workspace, "")), (
            f"the invitation subject is not translated: {subject!r}"
        )
