"""The header search finds by each kind of match on its own index path (issue 16):
misspelt names, a Latin spelling of a Cyrillic name, misspelt companies, best first, and
a member's own deals however many better matches the base holds."""

from app.extensions import db
from app.models import Role
from app.search.services import CANDIDATES, LIMIT

HX = {"HX-Request": "true"}


def _person(make, tenant, name, email=None, company=None, owner=None, stage="New"):
    lead = make.lead(tenant, stage, owner=owner)
    lead.contact.name = name
    if email:
        lead.contact.email = email
    lead.contact.company = company
    db.session.commit()
    return lead


def test_a_misspelt_name_puts_the_person_first_among_many_near_names(client, make, login):
    tenant, owner = make.workspace_with_owner()
    for _ in range(CANDIDATES + 6):  # more near names than any path keeps
        _person(make, tenant, "Johanna Smithfield")
    john = _person(make, tenant, "John Smith")
    login(owner.email)
    text = client.get("/search", query_string={"q": "Jon Smiht"}, headers=HX).text
    people = text.split('id="search-people"')[1].split("</ul>")[0]
    assert people.index(f"/people/{john.contact_id}") < people.index("Johanna Smithfield")
    assert f"/deals/{john.id}" in text.split('id="search-deals"')[1]


def test_a_cyrillic_name_typed_in_latin_finds_the_person_by_their_email(client, make, login):
    tenant, owner = make.workspace_with_owner()
    _person(make, tenant, "Пётр Фёдоров", email="petr.fedorov@example.org")
    _person(make, tenant, "Пётр Смирнов", email="p.smirnov@example.org")
    login(owner.email)
    text = client.get("/search", query_string={"q": "Petr Fedorov"}).text
    assert "Пётр Фёдоров" in text and "Пётр Смирнов" not in text
    misspelt = client.get("/search", query_string={"q": "Пётр Фёдров"}).text  # and a typo
    assert "Пётр Фёдоров" in misspelt


def test_a_misspelt_company_is_listed_with_its_people(client, make, login):
    tenant, owner = make.workspace_with_owner()
    _person(make, tenant, "Anna Lee", company="Smith Bakery")
    _person(make, tenant, "Boris Kim", company="Smith Bakery")
    _person(make, tenant, "Clara Wu", company="Jones Dairy")
    login(owner.email)
    text = client.get("/search", query_string={"q": "Smiht Bakrey"}).text
    companies = text.split('id="search-companies"')[1].split("</ul>")[0]
    assert "Smith Bakery" in companies and "2 people" in companies
    assert "Jones Dairy" not in text
    assert "Anna Lee" in text and "Boris Kim" in text


def test_a_closer_finds_their_deal_however_many_better_matches_the_base_holds(client, make, login):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    theirs = [
        _person(make, tenant, "Marta Theirs", owner=owner, stage="Proposal")
        for _ in range(CANDIDATES + 6)
    ]
    mine = _person(make, tenant, "Marta Mine", owner=closer, stage="Proposal")
    login(closer.email)
    text = client.get("/search", query_string={"q": "Marta Theirs"}, headers=HX).text
    assert f"/deals/{mine.id}" in text
    assert not any(f"/deals/{lead.id}" in text for lead in theirs)
    assert 'id="search-people"' not in text


def test_a_common_company_name_lists_that_company_first_with_all_its_people(client, make, login):
    tenant, owner = make.workspace_with_owner()
    for n in range(2, LIMIT + 4):  # more companies alike than are shown
        _person(make, tenant, f"Person {n}", company=f"Acme {n}")
    for name in ("Anna Lee", "Boris Kim", "Clara Wu"):
        _person(make, tenant, name, company="Acme 1")
    _person(make, tenant, "Dmitry Orlov", company="ACME 1")  # the same company, typed loud
    login(owner.email)
    text = client.get("/search", query_string={"q": "acme 1"}, headers=HX).text
    companies = text.split('id="search-companies"')[1].split("</ul>")[0]
    assert companies.count("<li>") == LIMIT
    first = companies.split("<li>")[1]
    assert "Acme 1" in first or "ACME 1" in first
    assert "4 people" in first
    people = text.split('id="search-people"')[1].split("</ul>")[0]
    assert all(name in people for name in ("Anna Lee", "Boris Kim", "Clara Wu", "Dmitry Orlov"))


def test_two_letters_find_the_names_and_companies_that_start_with_them(client, make, login):
    tenant, owner = make.workspace_with_owner()
    _person(make, tenant, "John Smith", company="Jones Dairy")
    _person(make, tenant, "Joanna Lee", company="Jones Dairy")
    _person(make, tenant, "Bojana Kim", company="Majolica")
    _person(make, tenant, "Ёлкина Алёна")
    login(owner.email)
    text = client.get("/search", query_string={"q": "Jo"}, headers=HX).text
    people = text.split('id="search-people"')[1].split("</ul>")[0]
    assert "John Smith" in people and "Joanna Lee" in people and "Bojana Kim" not in people
    companies = text.split('id="search-companies"')[1].split("</ul>")[0]
    assert "Jones Dairy" in companies and "2 people" in companies and "Majolica" not in text
    assert "Ёлкина Алёна" in client.get("/search", query_string={"q": "ел"}).text
    assert "Nothing found" in client.get("/search", query_string={"q": "%_"}).text
