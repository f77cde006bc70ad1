"""Words, not internals (issue 17): the timeline is typed events read as sentences in the
reader's language, a received post is a list of its fields (the raw post behind "Technical
details"), the inbox says what happened in words, and a rejected post's correction form
keeps every field that was posted."""

import importlib.util
import re
from datetime import date
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from app.extensions import db
from app.intake.fields import KNOWN_FIELDS
from app.models import InboxItem, InboxStatus, Lead, Role, Stage, User
from app.models.activity import EventKind, LeadEvent
from app.sources import services as sources
from tests.intake_helpers import signed as _signed

ALL = {"all_tenants": True}
ROOT = Path(__file__).resolve().parents[1]


def _speak(tenant, language: str) -> None:
    """The workspace reads in ``language``; its members follow it."""
    tenant.language = language
    for user in db.session.scalars(sa.select(User)):
        user.locale = None
    db.session.commit()


def _stage(tenant, phase: str) -> Stage:
    return db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.phase == phase)
        .order_by(Stage.position)
        .execution_options(**ALL)
    )


def _timeline(html: str) -> str:
    match = re.search(r'<ol class="timeline" id="timeline">.*?</ol>', html, re.S)
    assert match, "the lead page has no timeline"
    return match.group(0)


def _without_details(html: str) -> str:
    return re.sub(r"<details.*?</details>", "", html, flags=re.S)


def _text(html: str) -> str:
    """What a reader sees: tags out, whitespace (and Babel's narrow spaces) as one space."""
    text = unescape(re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ").replace("\xa0", " ")
    return re.sub(r"\s+", " ", text)


SENTENCES = {
    "en": {
        "cadence": "changed the touch cadence to every 3 days",
        "cadence_back": "set the touch cadence back to the workspace's: every 7 days",
        "planned": "planned the next touch for Dec 1, 2026, 3:30 PM",
        "unplanned": "cleared the planned touch",
    },
    "ru": {
        "cadence": "изменил(а) частоту касаний: раз в 3 дня",
        "cadence_back": "вернул(а) частоту касаний как в пространстве: раз в 7 дней",
        "planned": "запланировал(а) следующее касание на 1 дек. 2026, 15:30",
        "unplanned": "отменил(а) запланированное касание",
    },
}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_timeline_tells_a_cadence_change_and_a_planned_touch_in_sentences(
    client, login, make, language
):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    tenant.timezone = "Europe/Moscow"
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    account = make.lead(tenant, "Client", owner=manager)
    _speak(tenant, language)
    login(manager.email)
    client.post(f"/deals/{account.id}/cadence", data={"cadence_days": "3"})
    client.post(f"/deals/{account.id}/cadence", data={"cadence_days": ""})
    client.post(f"/deals/{account.id}/schedule", data={"at": "2026-12-01T15:30"})  # Moscow
    client.post(f"/deals/{account.id}/schedule", data={"at": ""})

    events = db.session.scalars(
        sa.select(LeadEvent).where(LeadEvent.lead_id == account.id).order_by(LeadEvent.id)
    ).all()
    assert [event.kind for event in events] == [
        EventKind.CADENCE_CHANGED,
        EventKind.CADENCE_CHANGED,
        EventKind.TOUCH_PLANNED,
        EventKind.TOUCH_PLANNED,
    ]
    assert events[0].data == {"days": 3, "workspace_default": False}
    assert events[2].data == {"at": "2026-12-01T12:30:00+00:00"}  # kept in UTC

    timeline = _text(_timeline(client.get(f"/deals/{account.id}").text))
    for sentence in SENTENCES[language].values():
        assert sentence in timeline, f"{sentence!r} not in {timeline!r}"
    assert "↻" not in timeline and "⏰" not in timeline


def _migration(name: str):
    path = next((ROOT / "migrations" / "versions").glob(f"{name}*.py"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_turns_old_cadence_and_plan_notes_into_events_and_leaves_notes(make):
    tenant, owner = make.workspace_with_owner()
    tenant.timezone = "Europe/Moscow"
    lead = make.lead(tenant, "Client")
    texts = ["↻ 14", "⏰ 2026-12-01 15:30", "⏰ —", "Called, all fine ↻ later", "⏰ soon"]
    for text in texts:
        db.session.add(
            LeadEvent(
                tenant_id=tenant.id, lead_id=lead.id, kind=EventKind.NOTE, data={"text": text}
            )
        )
    db.session.commit()
    migration = _migration("0019_")
    with (
        db.engine.begin() as connection,
        Operations.context(MigrationContext.configure(connection)),
    ):
        migration.upgrade()
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(LeadEvent).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.id)
    ).all()
    assert [(row.kind, row.data) for row in rows] == [
        (EventKind.CADENCE_CHANGED, {"days": 14}),
        (EventKind.TOUCH_PLANNED, {"at": "2026-12-01T12:30:00+00:00"}),  # Moscow's 15:30
        (EventKind.TOUCH_PLANNED, {"at": None}),
        (EventKind.NOTE, {"text": "Called, all fine ↻ later"}),
        (EventKind.NOTE, {"text": "⏰ soon"}),
    ]


LABELS = {
    "en": ["Name", "Email", "Phone", "Budget", "Decision date", "Campaign source", "City"],
    "ru": [
        "Имя",
        "Электронная почта",
        "Телефон",
        "Бюджет",
        "Дата решения",
        "Источник кампании",
        "City",
    ],
}
POST = {
    "name": "Anna Petrova",
    "email": "anna@example.com",
    "phone": "+44 20 7946 0018",
    "budget": "1200",
    "decision_date": "2026-12-15",
    "utm_source": "newsletter",
    "city": "Leeds",
    "cart": {"items": 2},
}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_received_post_reads_as_its_fields_with_the_raw_post_behind_technical_details(
    client, login, make, run_jobs, language
):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    _speak(tenant, language)
    assert client.post(f"/in/{source.intake_token}", json=POST).status_code == 202
    run_jobs()
    lead = db.session.scalar(sa.select(Lead).execution_options(**ALL))
    login(owner.email)
    page = client.get(f"/deals/{lead.id}").text

    timeline = _timeline(page)
    readable = _without_details(timeline)
    assert "{" not in readable and "}" not in readable, "JSON in the timeline"
    for name in LABELS[language]:
        assert f"<dt>{name}</dt>" in readable, name
    assert "newsletter" in readable and "Leeds" in readable
    assert ("Dec 15, 2026" if language == "en" else "15 дек. 2026") in readable
    details = re.findall(r"<details[^>]*>.*?</details>", timeline, re.S)
    assert len(details) == 1 and " open" not in details[0].split(">")[0]
    summary = "Technical details" if language == "en" else "Технические подробности"
    assert f"<summary>{summary}</summary>" in details[0]
    assert "utm_source" in details[0] and "&#34;newsletter&#34;" in details[0]
    # Nowhere else on the page is an internal name a label.
    assert "utm_" not in _without_details(page)


VERDICTS = {
    "en": [
        "Accepted",
        "Duplicate",
        "Missing phone or email",
        "Wrong email",
        "Wrong decision date",
        "Wrong signature",
        "Unreadable post",
    ],
    "ru": [
        "Принято",
        "Повтор",
        "Нет ни телефона, ни электронной почты",
        "Неверный адрес электронной почты",
        "Неверная дата решения",
        "Неверная подпись",
        "Не удалось прочитать",
    ],
}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_inbox_says_what_happened_in_words_not_codes(client, login, make, run_jobs, language):
    tenant, owner = make.workspace_with_owner()
    site = sources.create_source(tenant, "Site", "site_form")
    partner = sources.create_source(tenant, "Partner", "partner", signed=True)
    _speak(tenant, language)
    url = f"/in/{site.intake_token}"
    key = {"Idempotency-Key": "order-1"}
    assert client.post(url, json={"email": "a@example.com"}, headers=key).status_code == 202
    assert client.post(url, json={"email": "a@example.com"}, headers=key).status_code == 200
    assert client.post(url, json={"name": "No contact"}).status_code == 422
    assert client.post(url, json={"email": "not an email"}).status_code == 422
    bad_date = {"email": "d@example.com", "decision_date": "next week"}
    assert client.post(url, json=bad_date).status_code == 422
    body, headers = _signed("whsec_" + "A" * 32, {"email": "s@example.com"}, "m1")
    assert client.post(f"/in/{partner.intake_token}", data=body, headers=headers).status_code == 401
    assert client.post(url, data=b"{", content_type="application/json").status_code == 400
    run_jobs()
    login(owner.email)
    inbox = client.get("/inbox").text
    rows = _text(" ".join(re.findall(r'<tr id="inbox-\d+">.*?</tr>', inbox, re.S)))
    for words in VERDICTS[language]:
        assert words in rows, f"{words!r} not in {rows!r}"
    assert not re.search(r"\b(200|202|400|401|422)\b", rows), rows
    assert "HTTP" not in _text(inbox)

    missing = db.session.scalar(  # the first post refused for its fields: no contact
        sa.select(InboxItem)
        .where(InboxItem.status == InboxStatus.REJECTED, InboxItem.reason == "invalid_fields")
        .order_by(InboxItem.id)
        .execution_options(**ALL)
    )
    item_page = client.get(f"/inbox/{missing.id}").text
    shown = _text(_without_details(item_page))
    assert VERDICTS[language][2] in shown and "422" not in shown
    # The technical answer is still there for whoever wires the sender, folded away.
    assert "422" in _text(
        re.search(r'<details[^>]*id="technical-details".*?</details>', item_page, re.S).group(0)
    )


class _FormFields(HTMLParser):
    """The values a form would submit, by field name."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") != "submit":
            self.values[attrs["name"]] = attrs.get("value") or ""
        elif tag == "textarea":
            self._textarea = attrs.get("name")
            self.values[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def _correction_form(html: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*id="correction-form".*?</form>', html, re.S)
    assert form, "no correction form"
    parser = _FormFields()
    parser.feed(form.group(0))
    parser.values.pop("csrf_token", None)
    return {name: value.strip("\r\n") for name, value in parser.values.items()}


EVERY_FIELD = {
    "name": "Mila Hart",
    "email": "mila@@example",
    "phone": "+44 20 7946 0018",
    "company": "Hart Mills",
    "message": "Need 20 kg of flour weekly",
    "external_id": "order-77",
    "decision_date": "2026-12-15",
    "budget": "1200",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "winter",
    "utm_term": "flour",
    "utm_content": "banner-2",
}


def test_the_correction_form_keeps_every_posted_field_and_names_the_wrong_one(
    client, login, make, run_jobs
):
    assert set(EVERY_FIELD) == set(KNOWN_FIELDS), "the test posts every field intake reads"
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    posted = client.post(f"/in/{source.intake_token}", json={**EVERY_FIELD, "size": "L"})
    assert posted.status_code == 422
    item = db.session.scalar(sa.select(InboxItem).execution_options(**ALL))
    login(owner.email)
    shown = client.get(f"/inbox/{item.id}")
    assert shown.status_code == 200  # a page to read, not a refused request
    page = shown.text
    assert "Wrong email" in _text(page)
    assert re.search(r'id="email-error"[^>]*>This is not a valid email address.<', page)
    form = _correction_form(page)
    assert form == EVERY_FIELD, "the form dropped or changed a posted field"
    assert "<dt>Size</dt><dd>L</dd>" in page  # the sender's own fields are kept as they are

    fixed = client.post(f"/inbox/{item.id}", data={**form, "email": "mila@example.com"})
    assert fixed.status_code == 302
    run_jobs()
    db.session.refresh(item)
    lead = db.session.get(Lead, item.lead_id)
    assert item.status == InboxStatus.ACCEPTED
    assert lead.decision_date == date(2026, 12, 15)
    assert (lead.budget, lead.external_id, lead.message) == (
        "1200",
        "order-77",
        "Need 20 kg of flour weekly",
    )
    assert lead.contact.company == "Hart Mills" and lead.contact.phone == "+442079460018"
    assert lead.utm == {k: v for k, v in EVERY_FIELD.items() if k.startswith("utm_")}
    assert lead.extra == {"size": "L"}


def test_a_wrong_decision_date_is_shown_as_posted_for_correction(client, login, make):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    post = {"email": "mila@example.com", "decision_date": "15/12/2026"}
    assert client.post(f"/in/{source.intake_token}", json=post).status_code == 422
    item = db.session.scalar(sa.select(InboxItem).execution_options(**ALL))
    login(owner.email)
    page = client.get(f"/inbox/{item.id}").text
    assert "Wrong decision date" in _text(page)
    assert "15/12/2026" in _text(_without_details(page))  # what was posted, next to the field
    assert 'id="decision_date-error"' in page


def test_a_handover_and_a_hand_off_with_one_promise_read_as_sentences(client, login, make):
    tenant, owner = make.workspace_with_owner()
    lead = make.lead(tenant, "Client")
    for kind, data in (
        (EventKind.HANDED_OFF, {"to": "Boris", "promises": 1}),
        (EventKind.ASSIGNED, {"to": "Vera", "handover_from": "Boris", "stage": "Client"}),
    ):
        db.session.add(
            LeadEvent(tenant_id=tenant.id, lead_id=lead.id, actor_id=owner.id, kind=kind, data=data)
        )
    db.session.commit()
    login(owner.email)
    timeline = _text(_timeline(client.get(f"/deals/{lead.id}").text))
    assert "handed it off to Boris with 1 promise " in timeline
    assert "handed it over from Boris to Vera" in timeline


def test_a_bots_post_shows_what_it_filled_in_not_the_forms_controls(client, login, make):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    bot = {"_form": "1", "_hp": "http://spam.example", "name": "Cheap pills", "email": "b@x.io"}
    client.post(f"/in/{source.intake_token}", data=bot)
    item = db.session.scalar(sa.select(InboxItem).execution_options(**ALL))
    assert item.status == InboxStatus.SPAM
    login(owner.email)
    shown = _without_details(client.get(f"/inbox/{item.id}").text)
    assert "Spam: a bot filled in the form" in _text(shown)
    assert "<dt>Name</dt><dd>Cheap pills</dd>" in shown
    assert "_hp" not in shown and "<dt>Hp</dt>" not in shown and "<dt>Form</dt>" not in shown
