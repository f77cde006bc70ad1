"""Team, invitations, roles, settings and switching workspaces."""

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import Invitation, Membership, Role, Stage, Tenant
from tests.factories import PASSWORD


def _invite(client, email="new.closer@example.com", role="closer"):
    return client.post("/team/invitations", data={"email": email, "role": role})


def _invitation_link(mailbox, email):
    [message] = mailbox.to(email)
    return re.search(r"http://conveyor.test(/invitations/\S+)", mailbox.text(message)).group(1)


def test_owner_invites_a_teammate_who_joins_with_the_role(
    client, make, login, run_jobs, mailbox, app
):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    login(owner.email)
    assert _invite(client).status_code == 302
    assert "new.closer@example.com" in client.get("/team").text
    run_jobs()
    [message] = mailbox.to("new.closer@example.com")
    assert "Bakery" in message["Subject"]
    assert "Bakery" in mailbox.html(message)
    link = _invitation_link(mailbox, "new.closer@example.com")

    teammate = app.test_client()
    page = teammate.get(link)
    assert "Join Bakery" in page.text
    joined = teammate.post(link, data={"name": "Carl Closer", "password": "closing time 42"})
    assert joined.status_code == 302
    home = teammate.get("/")
    assert "<h1>Bakery</h1>" in home.text
    membership = db.session.scalar(
        sa.select(Membership)
        .join(Membership.user)
        .where(Membership.tenant_id == tenant.id, Membership.role == Role.CLOSER)
    )
    assert membership.user.name == "Carl Closer"
    # The link is single use.
    assert teammate.get(link).status_code == 404


def test_invitation_refuses_a_weak_password_for_a_new_person(
    client, make, login, run_jobs, mailbox, app
):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    _invite(client)
    run_jobs()
    link = _invitation_link(mailbox, "new.closer@example.com")
    answer = app.test_client().post(link, data={"name": "C", "password": "1234567"})
    assert "Use at least 8 characters" in answer.text


def test_existing_user_joins_a_second_workspace_with_their_password(
    client, make, login, run_jobs, mailbox, app
):
    first, _ = make.workspace_with_owner(name="First")
    second, second_owner = make.workspace_with_owner(name="Second")
    closer = make.member(first, Role.CLOSER)
    login(second_owner.email)
    _invite(client, email=closer.email, role="account_manager")
    run_jobs()
    link = _invitation_link(mailbox, closer.email)
    person = app.test_client()
    assert "confirm it with your password" in person.get(link).text
    wrong = person.post(link, data={"password": "not my password"})
    assert "enter its password" in wrong.text
    assert person.post(link, data={"password": PASSWORD}).status_code == 302
    assert "<h1>Second</h1>" in person.get("/").text
    # Both workspaces are in the switcher and switching works.
    switched = person.post(f"/workspaces/{first.id}/switch")
    assert switched.status_code == 302
    assert "<h1>First</h1>" in person.get("/").text


def test_withdrawn_invitation_link_no_longer_works(client, make, login, run_jobs, mailbox, app):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    _invite(client)
    run_jobs()
    link = _invitation_link(mailbox, "new.closer@example.com")
    invitation = db.session.scalar(sa.select(Invitation).execution_options(all_tenants=True))
    client.post(f"/team/invitations/{invitation.id}/revoke")
    assert app.test_client().get(link).status_code == 404


def test_inviting_an_existing_member_is_refused_next_to_the_field(client, make, login):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    login(owner.email)
    response = _invite(client, email=closer.email)
    assert response.status_code == 422
    assert re.search(r'id="email-error"[^>]*>This person is already a member', response.text)


def test_switching_to_a_workspace_without_a_seat_is_404(client, make, login):
    tenant, owner = make.workspace_with_owner()
    other, _ = make.workspace_with_owner()
    login(owner.email)
    assert client.post(f"/workspaces/{other.id}/switch").status_code == 404


def test_owner_deactivates_a_member_who_is_then_locked_out(client, make, login, app):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    closer_client = app.test_client()
    login(closer.email, test_client=closer_client)
    login(owner.email)
    membership = make.membership_of(tenant, closer)
    assert client.post(f"/team/members/{membership.id}/deactivate").status_code == 302
    assert closer_client.get("/").status_code == 302
    assert (
        closer_client.post("/login", data={"email": closer.email, "password": PASSWORD}).status_code
        == 200
    )
    client.post(f"/team/members/{membership.id}/reactivate")
    assert (
        closer_client.post("/login", data={"email": closer.email, "password": PASSWORD}).status_code
        == 302
    )


def test_the_last_owner_cannot_be_deactivated_or_demoted(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    mine = make.membership_of(tenant, owner)
    page = client.post(f"/team/members/{mine.id}/deactivate", follow_redirects=True)
    assert "at least one active owner" in page.text
    client.post(f"/team/members/{mine.id}/role", data={"role": "closer"})
    assert (
        make.membership_of(tenant, owner).role == Role.OWNER
        and make.membership_of(tenant, owner).active
    )


def test_owner_changes_a_members_role(client, make, login):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    login(owner.email)
    membership = make.membership_of(tenant, closer)
    client.post(f"/team/members/{membership.id}/role", data={"role": "account_manager"})
    assert make.membership_of(tenant, closer).role == Role.ACCOUNT_MANAGER


def test_only_the_owner_manages_team_and_settings(client, make, login):
    tenant, _ = make.workspace_with_owner()
    for role in (Role.LEAD_GENERATOR, Role.CLOSER, Role.ACCOUNT_MANAGER):
        member = make.member(tenant, role)
        login(member.email)
        assert client.get("/team").status_code == 404
        assert client.get("/settings").status_code == 404
        assert _invite(client).status_code == 404
        assert client.get("/").status_code == 200
        client.post("/logout")
    assert (
        db.session.scalar(
            sa.select(sa.func.count(Invitation.id)).execution_options(all_tenants=True)
        )
        == 0
    )


def test_settings_are_validated_and_saved(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    data = {
        "name": "Renamed",
        "timezone": "Mars/Olympus",
        "language": "ru",
        "currency": "RUB",
        "touch_cadence_days": "7",
        "queue_size": "20",
    }
    bad = client.post("/settings", data=data)
    assert bad.status_code == 422
    assert re.search(r'id="timezone-error"[^>]*>Pick a city', bad.text)
    assert db.session.get(Tenant, tenant.id).name != "Renamed"
    data["timezone"] = "Australia/Lord_Howe"
    assert client.post("/settings", data=data).status_code == 302
    saved = db.session.get(Tenant, tenant.id)
    assert (saved.name, saved.timezone, saved.language, saved.currency) == (
        "Renamed",
        "Australia/Lord_Howe",
        "ru",
        "RUB",
    )


def test_signed_in_user_creates_another_workspace_and_switches(client, make, login):
    _, owner = make.workspace_with_owner(name="One")
    login(owner.email)
    assert client.post("/workspaces/new", data={"name": "Two"}).status_code == 302
    home = client.get("/")
    assert "<h1>Two</h1>" in home.text
    assert "One" in home.text  # offered in the switcher


def test_home_page_counts_only_what_the_role_may_see(client, make, login):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    other_closer = make.member(tenant, Role.CLOSER)
    make.lead(tenant, "New")
    make.lead(tenant, "Proposal", owner=closer, value=10000)
    make.lead(tenant, "Proposal", owner=other_closer, value=99900)
    login(owner.email)
    owner_view = client.get("/").text
    assert re.search(r'id="phase-conversion".*?figure">2<', owner_view, re.S)
    client.post("/logout")
    login(closer.email)
    closer_view = client.get("/").text
    assert re.search(r'id="phase-conversion".*?figure">1<.*?\$100\b', closer_view, re.S)
    assert re.search(r'id="phase-generation".*?figure">0<', closer_view, re.S)


def test_stage_names_follow_the_language_until_someone_renames_them(client, make, login):
    tenant, owner = make.workspace_with_owner()
    renamed = db.session.scalar(
        sa.select(Stage).where(Stage.tenant_id == tenant.id, Stage.name == "Contacted")
    )
    renamed.name = "First call"
    db.session.commit()
    login(owner.email)
    data = {
        "name": tenant.name,
        "timezone": "Europe/Moscow",
        "language": "ru",
        "currency": "RUB",
        "country": "RU",
        "touch_cadence_days": "7",
        "queue_size": "20",
    }
    assert client.post("/settings", data=data).status_code == 302
    names = db.session.scalars(
        sa.select(Stage.name).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
    ).all()
    assert names[:3] == ["Новый", "First call", "Квалифицирован"]
    assert db.session.get(Tenant, tenant.id).country == "RU"


def test_settings_and_rules_each_say_one_thing_once(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    pages = {url: client.get(url).text for url in ("/settings", "/rules")}

    def form_fields(page: str, form_id: str) -> set[str]:
        form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S).group(0)
        return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', form)) - {
            "csrf_token"
        }

    def labels(page: str) -> set[str]:
        main = re.search(r"<main.*?</main>", page, re.S).group(0)
        return {" ".join(text.split()) for text in re.findall(r"<label[^>]*>([^<]+)<", main)}

    settings = form_fields(pages["/settings"], "settings-form")
    rules = form_fields(pages["/rules"], "rules-form")
    assert {"timezone", "digest_hour"} <= settings and {"queue_size", "touch_cadence_days"} <= rules
    assert settings & rules == set()
    assert labels(pages["/settings"]) & labels(pages["/rules"]) == set()
    assert 'href="/rules"' in pages["/settings"]  # the other place links to it
    assert 'href="/settings#quality-alerts"' in pages["/rules"]
    # A settings post that still carries a rule leaves the rule alone.
    client.post(
        "/settings",
        data={
            "name": tenant.name,
            "timezone": "UTC",
            "language": "en",
            "currency": "USD",
            "country": "US",
            "digest_hour": "8",
            "queue_size": "3",
        },
    )
    db.session.refresh(tenant)
    assert tenant.queue_size == 20


def test_the_timezone_is_picked_by_city_and_offset_and_a_wrong_one_is_told_at_the_field(
    client, make, login
):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    page = client.get("/settings").text
    picker = re.search(r'<datalist id="timezones">(.*?)</datalist>', page, re.S).group(1)
    options = re.findall(r'<option value="([^"]+)">', picker)
    assert "London, United Kingdom · UTC+0" in options and "Kolkata, India · UTC+5:30" in options
    assert not any("/" in option for option in options) and "IANA" not in page
    assert re.search(r'<input[^>]*list="timezones"[^>]*value="UTC"', page)
    data = {
        "name": tenant.name,
        "language": "en",
        "currency": "GBP",
        "country": "GB",
        "digest_hour": "8",
    }
    picked = "Lord Howe Island, Australia · UTC+11"
    assert picked in options
    assert client.post("/settings", data={**data, "timezone": picked}).status_code == 302
    db.session.refresh(tenant)
    assert tenant.timezone == "Australia/Lord_Howe"
    assert f'value="{picked}"' in client.get("/settings").text  # shown again as picked
    bad = client.post("/settings", data={**data, "timezone": "Atlantis"})
    assert bad.status_code == 422
    field = re.search(r'<div class="field has-error">.*?</div>', bad.text, re.S).group(0)
    assert 'name="timezone"' in field and 'value="Atlantis"' in field  # kept as typed
    assert re.search(r'id="timezone-error"[^>]*>Pick a city from the list', field)
    db.session.refresh(tenant)
    assert tenant.timezone == "Australia/Lord_Howe"
    # Typed, not picked: a city alone is enough; Russian readers see Russian places.
    assert client.post("/settings", data={**data, "timezone": "moscow"}).status_code == 302
    db.session.refresh(tenant)
    assert tenant.timezone == "Europe/Moscow"
    client.post("/account/language", data={"language": "ru"})
    russian = client.get("/settings").text
    assert 'value="Москва, Россия · UTC+3"' in russian
    assert client.post("/settings", data={**data, "timezone": "Лондон"}).status_code == 302
    db.session.refresh(tenant)
    assert tenant.timezone == "Europe/London"
