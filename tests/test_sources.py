"""Managing sources, the Connect page, the embeddable form and the inbox."""

import json
import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import InboxItem, InboxStatus, Lead, Role, Source
from app.sources import services as sources

ALL = {"all_tenants": True}


def _source_named(tenant, name):
    return db.session.scalar(
        sa.select(Source)
        .where(Source.tenant_id == tenant.id, Source.name == name)
        .execution_options(**ALL)
    )


def test_owner_creates_a_source_and_sees_how_to_connect_it(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    assert "No sources yet" in client.get("/sources").text
    response = client.post(
        "/sources/new",
        data={
            "name": "CaterLink",
            "kind": "partner",
            "cost": "50,00",
            "rate_limit_per_minute": "600",
            "thank_you_url": "https://shop.example.com/thanks",
        },
    )
    assert response.status_code == 302
    source = _source_named(tenant, "CaterLink")
    assert (
        source.cost_per_lead_minor == 5000
        and source.thank_you_url == "https://shop.example.com/thanks"
    )
    connect = client.get(response.headers["Location"]).text
    assert f"http://conveyor.test/in/{source.intake_token}" in connect
    assert "curl -X POST" in connect and "Idempotency-Key" in connect
    # Building the absolute addresses must not forget the workspace mid-request.
    assert 'id="partner-link"' in connect and 'id="nav-conflicts"' in connect
    assert f"/in/{source.intake_token}/form" in connect
    assert "$50" in client.get("/sources").text


def test_source_form_explains_bad_input_next_to_the_field(client, make, login):
    tenant, owner = make.workspace_with_owner()
    sources.create_source(tenant, "Taken", "ad")
    login(owner.email)
    bad = client.post(
        "/sources/new",
        data={"name": "Taken", "kind": "ad", "cost": "12.345", "rate_limit_per_minute": "600"},
    )
    assert bad.status_code == 422
    assert re.search(r'id="cost-error"[^>]*>Enter an amount', bad.text)
    again = client.post(
        "/sources/new",
        data={"name": "Taken", "kind": "ad", "cost": "1", "rate_limit_per_minute": "600"},
    )
    assert re.search(r'id="name-error"[^>]*>A source with this name exists', again.text)
    assert 'value="Taken"' in again.text


def test_editing_pausing_and_rotating_a_source(client, make, login):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Ads", "ad")
    old_token = source.intake_token
    login(owner.email)
    form = client.get(f"/sources/{source.id}/edit").text
    assert 'value="0.00"' in form
    client.post(
        f"/sources/{source.id}/edit",
        data={
            "name": "Google Ads",
            "kind": "ad",
            "cost": "18",
            "rate_limit_per_minute": "100",
        },
    )
    client.post(f"/sources/{source.id}/pause")
    assert "Paused" in client.get("/sources").text
    client.post(f"/sources/{source.id}/rotate-token")
    client.post(f"/sources/{source.id}/signing/rotate")
    db.session.refresh(source)
    assert (source.name, source.cost_per_lead_minor, source.active) == ("Google Ads", 1800, False)
    assert source.intake_token != old_token and source.signing_secret.startswith("whsec_")
    assert client.post(f"/in/{old_token}", json={"email": "a@example.com"}).status_code == 404
    client.post(f"/sources/{source.id}/resume")
    client.post(f"/sources/{source.id}/signing/disable")
    db.session.refresh(source)
    assert source.active and source.signing_secret is None


def test_lead_generators_manage_sources_but_closers_and_account_managers_cannot(
    client, make, login
):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    login(generator.email)
    assert client.get("/sources").status_code == 200
    assert client.get(f"/sources/{source.id}/connect").status_code == 200
    client.post("/logout")
    for role in (Role.CLOSER, Role.ACCOUNT_MANAGER):
        member = make.member(tenant, role)
        login(member.email)
        for url in (
            "/sources",
            "/sources/new",
            f"/sources/{source.id}/connect",
            "/inbox",
            "/leads",
        ):
            assert client.get(url).status_code == 404, url
        assert client.post(f"/sources/{source.id}/pause").status_code == 404
        client.post("/logout")
    db.session.refresh(source)
    assert source.active


def test_owner_corrects_a_rejected_post_into_a_lead(client, make, login, run_jobs):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    rejected = client.post(
        f"/in/{source.intake_token}", json={"name": "Mila", "email": "mila@@example", "size": "L"}
    )
    assert rejected.status_code == 422
    item = db.session.scalar(sa.select(InboxItem).execution_options(**ALL))
    login(owner.email)
    inbox = client.get("/inbox?status=rejected").text
    assert f"/inbox/{item.id}" in inbox
    page = client.get(f"/inbox/{item.id}").text
    assert "mila@@example" in page and "Wrong email" in page
    still_bad = client.post(f"/inbox/{item.id}", data={"name": "Mila", "email": "still bad"})
    assert still_bad.status_code == 422 and "not a valid email" in still_bad.text
    db.session.refresh(item)
    assert item.status == InboxStatus.REJECTED and item.fields["email"] == "still bad"
    fixed = client.post(f"/inbox/{item.id}", data={"name": "Mila", "email": "mila@example.com"})
    assert fixed.status_code == 302
    db.session.refresh(item)
    assert item.status == InboxStatus.PENDING and item.receipt  # the builder takes it from here
    run_jobs()
    db.session.refresh(item)
    lead = db.session.get(Lead, item.lead_id)
    assert item.status == InboxStatus.ACCEPTED and lead.contact.email == "mila@example.com"
    assert lead.extra == {"size": "L"}
    assert client.post(f"/inbox/{item.id}", data={"email": "x@example.com"}).status_code == 409
    assert "Mila" in client.get("/board").text


def test_inbox_filters_by_status_and_pages(client, make, login):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    for i in range(sources.INBOX_PAGE_SIZE + 5):
        client.post(f"/in/{source.intake_token}", json={"email": f"p{i}@example.com"})
    client.post(f"/in/{source.intake_token}", data=b"{", content_type="application/json")
    login(owner.email)
    first = client.get("/inbox").text
    rows = re.compile(r'id="inbox-\d+"')
    assert len(rows.findall(first)) == sources.INBOX_PAGE_SIZE and "page=2" in first
    assert len(rows.findall(client.get("/inbox?page=2").text)) == 6
    rejected = client.get("/inbox?status=rejected", headers={"HX-Request": "true"}).text
    assert len(rows.findall(rejected)) == 1 and "<html" not in rejected


def _hosted_form(client, source):
    page = client.get(f"/in/{source.intake_token}/form")
    fields = dict(re.findall(r'name="(_ts|_submission|_form)" value="([^"]*)"', page.text))
    return page, fields


def test_the_hosted_form_can_be_framed_and_redirects_to_the_thank_you_page(
    client, make, login, run_jobs, _pinned_clock
):
    tenant, owner = make.workspace_with_owner()
    source = sources.create_source(
        tenant, "Site", "site_form", thank_you_url="https://shop.example.com/thanks"
    )
    page, hidden = _hosted_form(client, source)
    assert (
        page.status_code == 200 and "frame-ancestors *" in page.headers["Content-Security-Policy"]
    )
    assert "X-Frame-Options" not in page.headers
    _pinned_clock.shift(10)  # a person takes a while to fill it in
    answer = client.post(
        f"/in/{source.intake_token}",
        data={**hidden, "name": "Ann", "email": "ann@example.com", "_hp": ""},
    )
    assert (
        answer.status_code == 303
        and answer.headers["Location"] == "https://shop.example.com/thanks"
    )
    twice = client.post(
        f"/in/{source.intake_token}",
        data={**hidden, "name": "Ann", "email": "ann@example.com", "_hp": ""},
    )
    assert twice.status_code == 303
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(Lead.id)).execution_options(**ALL)) == 1
    login(owner.email)
    assert "Ann" in client.get("/board").text


@pytest.mark.parametrize(
    "trap", ["honeypot", "too_fast", "forged_time", "no_time", "time_of_another_form"]
)
def test_bots_are_kept_as_spam_and_never_reach_the_board(client, make, trap, _pinned_clock):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    _, hidden = _hosted_form(client, source)
    data = {**hidden, "name": "Bot", "email": "bot@example.com", "_hp": ""}
    if trap != "too_fast":
        _pinned_clock.shift(10)  # slow enough for a person: only the trap can tell
    if trap == "honeypot":
        data["_hp"] = "http://spam.example"
        data["_ts"] = ""
    elif trap == "forged_time":
        data["_ts"] = "1700000000.abc.def"
    elif trap == "no_time":  # the hosted form's timing left out
        del data["_ts"]
    elif trap == "time_of_another_form":  # one fetched timing reused on other posts
        data["_submission"] = "another-submission"
    answer = client.post(f"/in/{source.intake_token}", data=data)
    assert answer.status_code == 200 and "Thank you" in answer.text
    item = db.session.scalar(sa.select(InboxItem).execution_options(**ALL))
    assert item.status == InboxStatus.SPAM
    assert db.session.scalar(sa.select(sa.func.count(Lead.id)).execution_options(**ALL)) == 0


def test_a_form_with_errors_shows_them_to_the_person(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Site", "site_form")
    answer = client.post(f"/in/{source.intake_token}", data={"_form": "1", "name": "No contact"})
    assert answer.status_code == 422
    assert "Give an email or a phone number" in answer.text and "<html" in answer.text


def test_incoming_leads_list_shows_new_leads_to_lead_generators(client, make, login, run_jobs):
    tenant, _ = make.workspace_with_owner()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    source = sources.create_source(tenant, "Site", "site_form")
    login(generator.email)
    assert "No leads yet" in client.get("/leads").text
    client.post(
        f"/in/{source.intake_token}", json={"name": "Fresh Lead", "email": "fresh@example.com"}
    )
    run_jobs()
    fragment = client.get("/leads", headers={"HX-Request": "true"}).text
    assert (
        "Fresh Lead" in fragment and 'hx-trigger="every 3s"' in fragment and "<html" not in fragment
    )


def test_cli_creates_a_source_with_its_absolute_intake_url(app, make):
    tenant, _ = make.workspace_with_owner()
    result = app.test_cli_runner().invoke(
        args=[
            "source",
            "create",
            "--workspace",
            tenant.slug,
            "--name",
            "API",
            "--cost",
            "2500",
            "--signed",
            "--rate-limit",
            "5000",
        ]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    source = db.session.get(Source, data["id"])
    assert data["intake_url"] == f"http://conveyor.test/in/{source.intake_token}"
    assert data["signing_secret"] == source.signing_secret and source.cost_per_lead_minor == 2500
    assert source.rate_limit_per_minute == 5000
    bad = app.test_cli_runner().invoke(
        args=["source", "create", "--workspace", "nope", "--name", "X"]
    )
    assert bad.exit_code != 0 and "no workspace" in bad.stderr
