"""Quick add, people, merging and search (issue 16)."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEntry, Contact, EventKind, Lead, LeadEvent, Role, Source
from app.money import read_amount
from app.people.quick_add import manual_choices, manual_source

ALL = {"all_tenants": True}


def _quick_add(client, tenant, name, phone="", email="", htmx=False, **extra):
    data = {"qa-name": name, "qa-phone": phone, "qa-email": email, "qa-source": "walk_in"}
    data.update({f"qa-{key}": value for key, value in extra.items()})
    data["from"] = "board" if htmx else ""
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/quick-add", data=data, headers=headers)


def _leads(tenant):
    return db.session.scalars(
        sa.select(Lead)
        .where(Lead.tenant_id == tenant.id)
        .order_by(Lead.id)
        .execution_options(**ALL)
    ).all()


def test_walk_in_added_on_the_board_appears_in_one_request_and_is_found_misspelt(
    client, make, login
):
    tenant, owner = make.workspace_with_owner()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    login(owner.email)
    response = _quick_add(
        client,
        tenant,
        "John Smith",
        phone="202 555 0143",
        htmx=True,
        company="Smith Bakery",
        budget="$1,500",
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "quick-added"
    [lead] = _leads(tenant)
    assert 'id="board"' in response.text and f"/deals/{lead.id}" in response.text
    assert lead.source.name == "Walk-in" and lead.owner_id == generator.id  # routed
    assert (lead.value_minor, lead.money) == (150000, "$1,500")
    assert lead.contact.phone == "+12025550143"
    found = client.get("/search?q=Jon Smiht", headers={"HX-Request": "true"})
    assert "John Smith" in found.text and "<html" not in found.text
    assert "John Smith" in client.get("/search?q=(202) 555-0143").text
    assert "John Smith" in client.get("/search?q=smith bak").text  # the company


def test_a_lead_generator_keeps_what_they_add_and_sees_only_that_a_match_exists(
    client, make, login
):
    tenant, owner = make.workspace_with_owner()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    make.lead(tenant, "Client")  # contact1..@example.org, a client of the base
    known = db.session.scalars(sa.select(Contact).execution_options(**ALL)).one()
    login(generator.email)
    hint = client.get("/quick-add/matches", query_string={"qa-email": known.email, "qa-name": ""})
    assert "already in the base" in hint.text and known.name not in hint.text
    assert known.email not in hint.text
    assert _quick_add(client, tenant, "Olga", email="olga@example.com").status_code == 302
    lead = _leads(tenant)[-1]
    assert lead.owner_id == generator.id
    assert "Olga" in client.get("/search?q=olga").text  # her own deal
    walled = client.get("/search", query_string={"q": known.name}).text  # not the base
    assert 'id="search-people"' not in walled and "Nothing found" in walled


def test_owner_sees_who_matches_while_typing(client, make, login):
    tenant, owner = make.workspace_with_owner()
    lead = make.lead(tenant, "New")
    login(owner.email)
    hint = client.get("/quick-add/matches", query_string={"qa-name": lead.contact.name})
    assert lead.contact.email in hint.text


def test_cyrillic_search_folds_case_and_yo_and_forgives_typos(client, make, login):
    tenant, owner = make.workspace_with_owner()
    lead = make.lead(tenant, "New")
    lead.contact.name = "Алёна Ёлкина"
    db.session.commit()
    login(owner.email)
    for query in ("алена елкина", "АЛЕНА", "Елкна"):
        assert "Алёна Ёлкина" in client.get("/search", query_string={"q": query}).text, query


def test_a_closer_finds_only_their_deals_and_no_one_walks_the_base_but_the_owner(
    client, make, login
):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    mine = make.lead(tenant, "Proposal", owner=closer)
    theirs = make.lead(tenant, "Proposal", owner=owner)
    for lead, name in ((mine, "Marta Mine"), (theirs, "Marta Theirs")):
        lead.contact.name = name
    db.session.commit()
    login(closer.email)
    text = client.get("/search?q=marta").text
    assert "Deal" in text and f"/deals/{mine.id}" in text and f"/deals/{theirs.id}" not in text
    assert 'id="search-people"' not in text
    assert client.get(f"/people/{theirs.contact_id}").status_code == 404
    assert client.get(f"/people/{mine.contact_id}").status_code == 200


def test_a_repeat_from_a_person_with_an_open_lead_joins_it(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    _quick_add(client, tenant, "Vera", email="vera@example.com")
    _quick_add(client, tenant, "Vera P.", email="VERA@example.com", note="Still interested")
    [lead] = _leads(tenant)
    kinds = db.session.scalars(
        sa.select(LeadEvent.kind).where(LeadEvent.lead_id == lead.id).execution_options(**ALL)
    ).all()
    assert EventKind.ASKED_AGAIN in kinds
    assert "asked again" in client.get(f"/deals/{lead.id}").text


def test_owner_merges_two_people_into_one_timeline_with_an_audit_entry(client, make, login):
    tenant, owner = make.workspace_with_owner()
    first, second = make.lead(tenant, "New"), make.lead(tenant, "Proposal")
    second.contact.name = first.contact.name + "a"
    db.session.commit()
    keep, other = first.contact_id, second.contact_id
    login(owner.email)
    page = client.get(f"/people/{keep}")
    assert f'id="merge-{other}"' in page.text  # a similar name
    assert client.post(f"/people/{keep}/merge", data={"other": other}).status_code == 302
    assert db.session.get(Contact, other) is None
    assert {lead.contact_id for lead in _leads(tenant)} == {keep}
    page = client.get(f"/people/{keep}").text
    assert first.title in page and second.title in page and "merged" in page
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "person.merged").execution_options(**ALL)
    ).one()
    assert entry.data["merged_id"] == other


def test_a_closer_edits_their_client_details_with_a_history(client, make, login):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    lead = make.lead(tenant, "Proposal", owner=closer)
    login(closer.email)
    answer = client.post(
        f"/people/{lead.contact_id}",
        data={"name": "Pavel Ivanov", "email": "pavel@example.com", "phone": "", "company": ""},
    )
    assert answer.status_code == 302
    page = client.get(f"/people/{lead.contact_id}").text
    assert "Pavel Ivanov" in page and "History of changes" in page
    bad = client.post(f"/people/{lead.contact_id}", data={"name": "P", "email": "nope"})
    assert bad.status_code == 422


def test_the_owner_renames_a_built_in_source_and_it_stays_built_in(make, ctx):
    tenant, _ = make.workspace_with_owner()
    assert ("walk_in", "Walk-in") in manual_choices(tenant)
    walk_in = manual_source(tenant, "walk_in")  # made by the first quick add of its kind
    walk_in.name = "Came into the shop"
    db.session.commit()
    assert manual_source(tenant, "walk_in").id == walk_in.id
    assert ("walk_in", "Came into the shop") in manual_choices(tenant)
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Source).execution_options(**ALL)
    )
    assert count == 1  # the others are made when first used


@pytest.mark.parametrize(
    "text,language,currency,minor",
    [
        ("800", "en", "USD", 80000),
        ("1 500 ₽", "ru", "RUB", 150000),
        ("£1,500", "en", "GBP", 150000),
        ("1.500,00 €", "en", "EUR", 150000),
        ("1,5 тыс", "ru", "RUB", 150),
        ("about 2000 dollars", "en", "USD", 200000),
        ("no idea", "en", "USD", None),
    ],
)
def test_budgets_are_read_in_the_workspace_locale(text, language, currency, minor):
    assert read_amount(text, language, currency) == minor


def test_quick_add_offers_a_look_alike_among_many_near_names_and_walls_it_for_a_generator(
    client, make, login
):
    tenant, owner = make.workspace_with_owner()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    for _ in range(30):  # more near names than the look-alike check walks
        make.lead(tenant, "New").contact.name = "Johanna Smithfield"
    client_lead = make.lead(tenant, "Client")
    client_lead.contact.name = "John Smith"
    db.session.commit()
    known = client_lead.contact
    login(owner.email)
    hint = client.get("/quick-add/matches", query_string={"qa-name": "John Smiths"}).text
    assert f"/people/{known.id}" in hint.split("<li>")[1]  # the nearest name first
    client.post("/logout")
    login(generator.email)
    hint = client.get("/quick-add/matches", query_string={"qa-name": "John Smiths"}).text
    assert "already in the base" in hint
    assert known.name not in hint and known.email not in hint


def test_merging_offers_the_same_email_under_another_name_and_a_similar_name(client, make, login):
    tenant, owner = make.workspace_with_owner()
    keep, same_email, similar, other = (make.lead(tenant, "New").contact for _ in range(4))
    keep.name, similar.name, other.name = "Marta Kowalska", "Marta Kowalski", "Ivan Petrov"
    same_email.name, same_email.email = "M. K.", keep.email.upper()
    db.session.commit()
    same_email.email = keep.email
    db.session.commit()
    login(owner.email)
    page = client.get(f"/people/{keep.id}").text
    assert f'id="merge-{same_email.id}"' in page and f'id="merge-{similar.id}"' in page
    assert f'id="merge-{other.id}"' not in page
