"""One way to show dates and money: the reader's language, the workspace's clock."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from flask import g
from flask_babel import force_locale

from app import clock, formatting
from app.extensions import db
from app.models import Role
from app.money import major_text, parse_major, to_major, to_minor


def test_money_converts_between_minor_and_major_units_in_one_place():
    assert to_major(1250, "GBP") == Decimal("12.50")
    assert to_minor(Decimal("12.5"), "GBP") == 1250
    assert major_text(1250, "RUB") == "12.50"
    assert parse_major("1 250,50", "RUB") == 125050
    assert parse_major("12.505", "USD") is None
    assert parse_major("-1", "USD") is None
    assert parse_major("abc", "USD") is None


def test_a_russian_sentence_ending_in_a_date_has_one_stop(app):
    with app.test_request_context(), force_locale("ru"):
        text = formatting.format_date(date(2026, 12, 6))
    assert text == "6 дек. 2026"
    assert not text.endswith(".")


def test_dates_and_times_share_one_style_in_english(app):
    with app.test_request_context(), force_locale("en"):
        assert formatting.format_date(date(2026, 12, 6)) == "Dec 6, 2026"
        assert formatting.format_date(date(2026, 12, 6), "short") == "Dec 6, 2026"
        moment = formatting.format_datetime(datetime(2026, 12, 6, 2, 46, tzinfo=UTC))
    assert moment.startswith("Dec 6, 2026")
    assert "2:46" in moment


def test_russian_numbers_use_a_decimal_comma(app):
    with app.test_request_context(), force_locale("ru"):
        assert formatting.number(1.7, 1) == "1,7"
        assert formatting.number(1234.5, 1).replace("\xa0", " ") == "1 234,5"


def test_money_in_the_workspace_currency_and_the_readers_locale(app, make):
    tenant, _ = make.workspace_with_owner()
    tenant.currency = "GBP"
    with app.test_request_context():
        g.tenant = tenant
        with force_locale("en"):
            assert formatting.money(125000) == "£1,250"
            assert formatting.money(125050) == "£1,250.50"
        with force_locale("ru"):
            assert formatting.money(125000).replace("\xa0", " ") == "1 250 £"


def test_relative_days_count_from_the_workspace_today(app, make):
    tenant, _ = make.workspace_with_owner()
    tenant.timezone = "Pacific/Auckland"
    with app.test_request_context():
        g.tenant = tenant
        today = clock.workspace_today(tenant)
        assert today == clock.today("Pacific/Auckland")
        with force_locale("en"):
            assert formatting.relative_day(today) == "today"
            assert formatting.relative_day(today + timedelta(days=3)) == "in 3 days"
            assert formatting.relative_day(today - timedelta(days=2)) == "2 days ago"


def test_a_phone_reads_in_the_national_format_of_the_workspace_and_is_tappable(app, make):
    uk, _ = make.workspace_with_owner()
    uk.country = "GB"
    russian, _ = make.workspace_with_owner()
    russian.country = "RU"
    with app.test_request_context():
        g.tenant = uk
        assert formatting.phone("+442079460018") == (
            '<a href="tel:+442079460018" class="phone">020 7946 0018</a>'
        )
        # A number from another country is written so that it can be dialled from here.
        assert formatting.phone_text("+79123456789") == "+7 912 345-67-89"
        assert formatting.phone_text("+442079460018", international=True) == "+44 20 7946 0018"
        g.tenant = russian
        assert formatting.phone("+79123456789") == (
            '<a href="tel:+79123456789" class="phone">8 (912) 345-67-89</a>'
        )
        assert formatting.phone_text("+442079460018") == "+44 20 7946 0018"
        assert formatting.phone("call <me>") == "call &lt;me&gt;"  # no number: as written


def test_every_page_showing_a_phone_shows_it_national_and_tappable(client, login, make):
    tenant, owner = make.workspace_with_owner()
    tenant.country = "GB"
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    lead = make.lead(tenant, "Client", owner=manager)
    lead.contact.phone, lead.contact.email, lead.contact.company = "+442079460018", None, None
    db.session.commit()
    link = '<a href="tel:+442079460018" class="phone">020 7946 0018</a>'
    login(owner.email)
    pages = {
        "lead": f"/deals/{lead.id}",
        "person": f"/people/{lead.contact_id}",
        "clients": "/clients",
        "search": "/search?q=Contact",
    }
    for name, url in pages.items():
        page = client.get(url).text
        assert link in page, name
        assert "+442079460018<" not in page, name
    assert 'value="020 7946 0018"' in client.get(pages["person"]).text  # edited as written
    client.post("/logout")
    closer = make.member(tenant, Role.CLOSER)
    deal = make.lead(tenant, "Proposal", owner=closer)
    deal.contact.phone = "020 7946 0018"  # as typed, before numbers were stored as E.164
    deal.decision_date = clock.workspace_today(tenant)
    db.session.commit()
    login(closer.email)
    assert link in client.get("/today").text
