"""Signing up, signing in and out, password reset, account changes."""

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Membership, Role, Stage, Tenant, User
from tests.factories import PASSWORD


def _signup(
    client, email="ana@example.com", password="a long enough pass 1", business="Ana's Bakery"
):
    return client.post(
        "/signup",
        data={"business_name": business, "name": "Ana", "email": email, "password": password},
    )


def _emailed_link(mailbox, email, path):
    [message] = mailbox.to(email)
    mailbox.remove(message)
    return re.search(rf"http://conveyor.test({path}\S+)", mailbox.text(message)).group(1)


def _signup_and_confirm(client, run_jobs, mailbox, email="ana@example.com", **fields):
    """Sign up, then follow the emailed link and press its button, as a newcomer does."""
    assert _signup(client, email=email, **fields).status_code == 302
    run_jobs()
    link = _emailed_link(mailbox, email, "/signup/confirm/")
    assert "Open my workspace" in client.get(link).text
    return client.post(link)


def test_signup_creates_a_workspace_with_the_new_user_as_signed_in_owner(
    client, ctx, run_jobs, mailbox
):
    response = _signup(client)
    assert response.status_code == 302
    assert "Check your email to continue" in client.get(response.headers["Location"]).text
    assert db.session.scalar(sa.select(sa.func.count(Tenant.id))) == 0  # not before the link
    run_jobs()
    link = _emailed_link(mailbox, "ana@example.com", "/signup/confirm/")
    assert "Ana&#39;s Bakery" in client.get(link).text
    assert client.post(link).status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "Ana&#39;s Bakery" in page.text
    tenant = db.session.scalar(sa.select(Tenant))
    assert tenant.slug == "ana-s-bakery"
    membership = db.session.scalar(sa.select(Membership).execution_options(all_tenants=True))
    assert membership.role == Role.OWNER and membership.tenant_id == tenant.id


def test_a_signup_link_opens_one_workspace_and_only_when_its_button_is_pressed(
    app, client, ctx, run_jobs, mailbox
):
    _signup(client)
    run_jobs()
    link = _emailed_link(mailbox, "ana@example.com", "/signup/confirm/")
    for _ in range(3):  # a mail scanner following the link creates nothing
        client.get(link)
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
    assert client.post(link).status_code == 302
    again = app.test_client().post(link, follow_redirects=True)
    assert "This email already has an account" in again.text or "expired" in again.text
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Tenant.id))) == 1


def test_two_businesses_with_the_same_name_get_different_slugs(client, ctx, run_jobs, mailbox):
    _signup_and_confirm(client, run_jobs, mailbox, email="a@example.com", business="Corner Shop")
    client.post("/logout")
    _signup_and_confirm(client, run_jobs, mailbox, email="b@example.com", business="Corner Shop")
    slugs = db.session.scalars(sa.select(Tenant.slug)).all()
    assert len(slugs) == 2 and len(set(slugs)) == 2


def test_signup_refuses_short_and_common_passwords_next_to_the_field(client, ctx, run_jobs):
    short = _signup(client, password="short")
    assert short.status_code == 200
    assert re.search(r'id="password-error"[^>]*>Use at least 8 characters', short.text)
    common = _signup(client, password="password123")
    assert "too common" in common.text
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
    assert run_jobs() == 0


def test_signup_tells_nobody_which_addresses_have_accounts(app, make, run_jobs, mailbox):
    make.workspace_with_owner(email="taken@example.com")
    answers = []
    for email in ("taken@example.com", "fresh@example.com"):
        browser = app.test_client()
        response = _signup(browser, email=email)
        page = browser.get(response.headers["Location"]).text
        page = re.sub(r"(X-CSRFToken\": \"|csrf_token\" value=\"|nonce=\")[^\"]+", r"\1…", page)
        answers.append((response.status_code, response.headers["Location"], page))
    assert answers[0] == answers[1]  # but for each request's own tokens
    assert "An account with this email exists" not in answers[0][2]
    assert "Check your email to continue" in answers[0][2]
    run_jobs()
    # The account's owner learns of the attempt, with the ways in; nothing new is made.
    [attempt] = mailbox.to("taken@example.com")
    text = mailbox.text(attempt)
    assert "tried to sign up" in attempt["Subject"]
    assert "http://conveyor.test/login" in text and "/password/reset/" in text
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Tenant.id))) == 1
    # The new address gets the link that opens its workspace.
    [welcome] = mailbox.to("fresh@example.com")
    assert "/signup/confirm/" in mailbox.text(welcome)


def test_passwords_are_stored_as_argon2id(client, ctx, run_jobs, mailbox):
    _signup_and_confirm(client, run_jobs, mailbox)
    user = db.session.scalar(sa.select(User))
    assert user.password_hash.startswith("$argon2id$")
    assert client.post("/logout").status_code == 302
    login = client.post("/login", data={"email": user.email, "password": "a long enough pass 1"})
    assert login.status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make):
    tenant, owner = make.workspace_with_owner()
    wrong = client.post("/login", data={"email": owner.email, "password": "not the password"})
    unknown = client.post("/login", data={"email": "nobody@example.com", "password": "whatever1"})
    message = "Wrong email or password, or no active workspace."
    assert message in wrong.text and message in unknown.text


def test_login_starts_a_fresh_session(client, make):
    tenant, owner = make.workspace_with_owner()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    client.post("/login", data={"email": owner.email, "password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["tenant_id"] == tenant.id


def test_login_does_not_follow_an_offsite_next(client, make):
    _, owner = make.workspace_with_owner()
    response = client.post(
        "/login?next=//evil.example/steal", data={"email": owner.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_login_follows_a_local_next(client, make):
    _, owner = make.workspace_with_owner()
    response = client.post("/login?next=/team", data={"email": owner.email, "password": PASSWORD})
    assert response.headers["Location"] == "/team"


def test_remember_me_lasts_at_most_thirty_days(client, make):
    _, owner = make.workspace_with_owner()
    response = client.post(
        "/login", data={"email": owner.email, "password": PASSWORD, "remember": "y"}
    )
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)


def test_deactivated_member_can_no_longer_sign_in(client, make):
    tenant, _ = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    membership = make.membership_of(tenant, closer)
    membership.active = False
    db.session.commit()
    response = client.post("/login", data={"email": closer.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "no active workspace" in response.text
    assert client.get("/").status_code == 302


def test_member_deactivated_mid_session_loses_that_workspace_at_once(client, make, login):
    tenant, _ = make.workspace_with_owner(name="First")
    other, _ = make.workspace_with_owner(name="Second")
    closer = make.member(tenant, Role.CLOSER)
    make.member(other, Role.CLOSER, email=closer.email)
    login(closer.email)
    assert "First" in client.get("/").text
    make.membership_of(tenant, closer).active = False
    db.session.commit()
    page = client.get("/")
    assert "<h1>Second</h1>" in page.text


def test_password_reset_by_emailed_link(client, make, run_jobs, mailbox):
    _, owner = make.workspace_with_owner()
    response = client.post("/password/forgot", data={"email": owner.email.upper()})
    assert response.status_code == 302
    assert run_jobs() == 1
    [message] = mailbox.to(owner.email)
    assert message.get_body(preferencelist=("html",)) is not None
    link = re.search(r"http://conveyor.test(/password/reset/\S+)", mailbox.text(message)).group(1)
    form = client.get(link)
    assert form.status_code == 200
    done = client.post(
        link, data={"password": "brand new secret 9", "confirm": "brand new secret 9"}
    )
    assert done.status_code == 302
    assert (
        client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 200
    )
    assert (
        client.post(
            "/login", data={"email": owner.email, "password": "brand new secret 9"}
        ).status_code
        == 302
    )
    client.post("/logout")
    reused = client.get(link)
    assert reused.status_code == 302 and "/password/forgot" in reused.headers["Location"]


def test_password_reset_for_an_unknown_email_says_the_same_and_sends_nothing(
    client, ctx, run_jobs, mailbox
):
    response = client.post(
        "/password/forgot", data={"email": "ghost@example.com"}, follow_redirects=True
    )
    assert "If an account uses that email" in response.text
    assert run_jobs() == 0
    assert len(mailbox) == 0


def test_email_change_needs_the_current_password(client, make, login):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    refused = client.post(
        "/account/email",
        data={"email-new_email": "new@example.com", "email-current_password": "nope nope"},
    )
    assert refused.status_code == 422 and "The current password is wrong." in refused.text
    accepted = client.post(
        "/account/email",
        data={"email-new_email": "New@Example.com", "email-current_password": PASSWORD},
    )
    assert accepted.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, owner.id).email == "new@example.com"


def test_password_change_signs_out_every_other_session(app, client, make, login):
    _, owner = make.workspace_with_owner()
    other_device = app.test_client()
    login(owner.email)
    login(owner.email, test_client=other_device)
    response = client.post(
        "/account/password",
        data={"pw-current_password": PASSWORD, "pw-new_password": "another strong one 7"},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert other_device.get("/").status_code == 302


def test_login_is_rate_limited_per_account(client, make):
    _, owner = make.workspace_with_owner()
    answers = [
        client.post(
            "/login",
            data={"email": owner.email, "password": "wrong guess"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
        ).status_code
        for i in range(11)
    ]
    assert answers[:10] == [200] * 10
    assert answers[10] == 429


def test_login_is_rate_limited_per_address(client, ctx):
    answers = [
        client.post(
            "/login", data={"email": f"u{i}@example.com", "password": "wrong guess"}
        ).status_code
        for i in range(21)
    ]
    assert 429 not in answers[:20] and answers[20] == 429


def test_logout_needs_a_post(client, make, login):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200
    client.post("/logout")
    assert client.get("/").status_code == 302


def _signup_from(client, accept_language: str, timezone: str, email: str, **extra):
    return client.post(
        "/signup",
        data={
            "business_name": "Corner Shop",
            "name": "Ana",
            "email": email,
            "password": "a long enough pass 1",
            "timezone": timezone,
            **extra,
        },
        headers={"Accept-Language": accept_language},
    )


def _confirm(client, run_jobs, mailbox, email):
    run_jobs()
    link = _emailed_link(mailbox, email, "/signup/confirm/")
    assert client.post(link).status_code == 302
    return db.session.scalar(sa.select(Tenant))


def test_signup_asks_for_the_country_the_browser_points_at(client):
    british = client.get("/signup", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert '<option selected value="GB">' in british
    russian = client.get("/signup", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).text
    assert '<option selected value="RU">Россия</option>' in russian


def test_a_uk_signup_gets_pounds_london_time_and_british_phones(client, ctx, run_jobs, mailbox):
    response = _signup_from(
        client, "en-GB,en;q=0.8", "Europe/London", "uk@example.com", country="GB"
    )
    assert response.status_code == 302
    tenant = _confirm(client, run_jobs, mailbox, "uk@example.com")
    assert (tenant.country, tenant.currency, tenant.timezone, tenant.language) == (
        "GB",
        "GBP",
        "Europe/London",
        "en",
    )
    from app.intake.services import phone_region

    assert phone_region(tenant) == "GB"


def test_a_russian_signup_gets_roubles_moscow_time_and_russian_words(
    client, ctx, run_jobs, mailbox
):
    # Without a country in the post (no JavaScript, an old form) the browser's guess holds.
    response = _signup_from(client, "ru-RU,ru;q=0.9", "", "ru@example.com")
    assert response.status_code == 302
    tenant = _confirm(client, run_jobs, mailbox, "ru@example.com")
    assert (tenant.country, tenant.currency, tenant.timezone, tenant.language) == (
        "RU",
        "RUB",
        "Europe/Moscow",
        "ru",
    )
    stages = db.session.scalars(sa.select(Stage.name).order_by(Stage.position)).all()
    assert stages[:2] == ["Новый", "Связались"]


def test_the_browser_timezone_is_kept_when_it_lies_in_the_country(client, ctx, run_jobs, mailbox):
    _signup_from(client, "ru", "Asia/Yekaterinburg", "ural@example.com", country="RU")
    assert _confirm(client, run_jobs, mailbox, "ural@example.com").timezone == "Asia/Yekaterinburg"


def test_a_browser_timezone_elsewhere_gives_way_to_the_country(client, ctx, run_jobs, mailbox):
    _signup_from(client, "en-US", "America/Chicago", "away@example.com", country="GB")
    assert _confirm(client, run_jobs, mailbox, "away@example.com").timezone == "Europe/London"
