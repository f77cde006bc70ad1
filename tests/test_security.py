"""Headers, cookies, CSRF and configuration that keep a workspace safe."""

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine

from app import create_app
from app.auth import tokens
from app.config import ConfigError, load_config
from app.engine import delivery, schedule
from app.extensions import db
from app.models import Conflict, ConflictKind, Role
from tests.factories import PASSWORD


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "HX-Request" in response.headers["Vary"]


def test_the_inline_htmx_fallback_carries_the_policy_nonce(client):
    response = client.get("/login")
    nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">window.htmx ||' in response.text
    assert 'src="/static/js/htmx-2.0.11.min.js"' in response.text
    assert '"allowEval": false' in response.text and '"historyCacheSize": 0' in response.text


def test_local_htmx_copy_is_served(client):
    response = client.get("/static/js/htmx-2.0.11.min.js")
    assert response.status_code == 200 and b"htmx" in response.data[:2000]
    response.close()


def test_session_cookie_is_httponly_and_samesite_lax(client, make):
    _, owner = make.workspace_with_owner()
    response = client.post(
        "/login", data={"email": owner.email, "password": "correct horse battery"}
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure_and_need_a_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVEYOR_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        load_config(str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    config = load_config(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["MAIL_TRANSPORT"] == "smtp"


def test_mail_server_in_development_means_real_smtp(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVEYOR_ENV", "development")
    monkeypatch.delenv("MAIL_SERVER", raising=False)
    assert load_config(str(tmp_path))["MAIL_TRANSPORT"] == "outbox"
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    assert load_config(str(tmp_path))["MAIL_TRANSPORT"] == "smtp"


def test_postgres_urls_use_psycopg_3(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/conveyor")
    assert load_config(str(tmp_path))["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


@pytest.fixture
def csrf_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def test_forms_without_a_csrf_token_are_refused(client, make, csrf_on):
    _, owner = make.workspace_with_owner()
    response = client.post(
        "/login", data={"email": owner.email, "password": "correct horse battery"}
    )
    assert response.status_code == 400
    assert "The form expired" in response.text


def test_htmx_requests_send_the_token_from_the_body_header(client, make, csrf_on):
    _, owner = make.workspace_with_owner()
    page = client.get("/login").text
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]
    response = client.post(
        "/login",
        data={"email": owner.email, "password": "correct horse battery"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/"


def test_htmx_validation_errors_come_back_as_the_form_fragment(client, ctx):
    response = client.post(
        "/login", data={"email": "", "password": ""}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith("<form")
    assert "<html" not in response.text


def _signups_until_refused(client, forwarded_for: str) -> int:
    """Post the (empty) signup form from one claimed address until it is refused."""
    for number in range(1, 20):
        answer = client.post("/signup", data={}, headers={"X-Forwarded-For": forwarded_for})
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) > 0  # when to come back
            return number
    return 0


def test_a_429_says_when_to_come_back_and_x_forwarded_for_is_ignored_by_default(client):
    assert _signups_until_refused(client, "203.0.113.7") == 11  # 10 an hour per address
    # Without a trusted proxy, a forged header does not buy a new address.
    assert _signups_until_refused(client, "198.51.100.9") == 1


def test_behind_a_trusted_proxy_limits_count_the_visitors_address(app, client, monkeypatch):
    from app.security import trust_proxies

    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app)  # restored after the test
    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 1)
    trust_proxies(app)
    assert _signups_until_refused(client, "203.0.113.7") == 11
    assert _signups_until_refused(client, "198.51.100.9") == 11  # another visitor
    page = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain HTTP


def test_a_server_started_without_conveyor_env_is_production(monkeypatch, tmp_path):
    """gunicorn, `flask run` or a container with nothing set: no forgeable secret."""
    monkeypatch.delenv("CONVEYOR_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    config = load_config(str(tmp_path))
    assert config["ENV_NAME"] == "production" and not config["DEV_OUTBOX_ROUTE"]
    assert config["SESSION_COOKIE_SECURE"] and config["MAIL_TRANSPORT"] == "smtp"


def test_development_is_only_what_was_asked_for(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("CONVEYOR_ENV", "development")
    assert load_config(str(tmp_path))["DEV_OUTBOX_ROUTE"]
    assert 'env.setdefault("CONVEYOR_ENV", "development")' in Path("dev.py").read_text()


@pytest.fixture
def dev_outbox(app, monkeypatch, tmp_path):
    """The development outbox switched on, holding one reset link."""
    message = EmailMessage()
    message["To"], message["Subject"] = "victim@example.com", "Reset your password"
    message.set_content("http://conveyor.test/password/reset/secret-token")
    (tmp_path / "1.eml").write_bytes(message.as_bytes())
    monkeypatch.setitem(app.config, "DEV_OUTBOX_ROUTE", True)
    monkeypatch.setitem(app.config, "MAIL_TRANSPORT", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))


def test_the_dev_outbox_needs_a_signed_in_user_on_the_same_machine(client, make, login, dev_outbox):
    anonymous = client.get("/dev/outbox")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    _, owner = make.workspace_with_owner()
    login(owner.email)
    local = client.get("/dev/outbox", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200 and "secret-token" in local.text
    remote = client.get("/dev/outbox", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert remote.status_code == 404 and "secret-token" not in remote.text


REMINDER_DAY = date(2026, 12, 1)


def test_a_name_with_a_line_break_cannot_add_headers_and_its_reminder_is_delivered(make, mailbox):
    tenant, _ = make.workspace_with_owner()
    manager = make.member(tenant, Role.ACCOUNT_MANAGER)
    client = make.lead(tenant, "Client", owner=manager)
    client.contact.name = "Eve\rBcc: victim@example.com"
    client.next_touch_on = REMINDER_DAY
    db.session.commit()
    at = datetime(2026, 12, 1, 8, 5, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        schedule.tick(at)
        delivery.deliver_due(at + timedelta(minutes=1))
    [reminder] = [m for m in mailbox.to(manager.email) if "Time to touch" in m["Subject"]]
    assert reminder["Subject"] == "Time to touch Eve Bcc: victim@example.com"
    assert reminder["Bcc"] is None and not mailbox.to("victim@example.com")


def test_a_source_named_with_a_line_break_still_alerts_the_owner(make, mailbox):
    from app.tasks.radar import send_quality_alert

    tenant, owner = make.workspace_with_owner()
    source = make.source(tenant, "Partner\rBcc: victim@example.com")
    details = {"judged": 5, "junk_share": 40, "junk_max": 30}
    details |= {"qualified_share": 20, "qualified_min": 10}
    conflict = Conflict(
        tenant_id=tenant.id, kind=ConflictKind.SOURCE_QUALITY, source_id=source.id, details=details
    )
    db.session.add(conflict)
    db.session.commit()
    assert send_quality_alert(tenant.id, conflict.id) == 1
    [alert] = mailbox.to(owner.email)
    assert alert["Subject"] == "Lead quality dropped at Partner Bcc: victim@example.com"
    assert alert["Bcc"] is None


def test_the_policy_allows_only_the_two_cdn_files_the_pages_load(client):
    response = client.get("/login")
    script_src = next(
        part.split()[1:]
        for part in response.headers["Content-Security-Policy"].split(";")
        if part.split()[:1] == ["script-src"]
    )
    external = sorted(source for source in script_src if source.startswith("https:"))
    loaded = sorted(re.findall(r'<script src="(https:[^"]+)"', response.text))
    assert len(loaded) == 2 and external == loaded
    assert all(source.endswith(".js") for source in external)  # files, not the whole host


def _cookie(test_client, name):
    return test_client.get_cookie(name)


def test_keep_me_signed_in_survives_the_next_request_and_a_browser_restart(app, client, make):
    _, owner = make.workspace_with_owner()
    signed_in = client.post(
        "/login", data={"email": owner.email, "password": PASSWORD, "remember": "y"}
    )
    assert signed_in.status_code == 302
    assert client.get("/").status_code == 200  # the second request
    assert client.get("/").status_code == 200
    remember = _cookie(client, "remember_token")
    assert remember is not None
    assert remember.expires - datetime.now(UTC) > timedelta(days=29)
    for days in (1, 29):
        restarted = app.test_client()  # the browser closed: only the lasting cookie is left
        restarted.set_cookie("remember_token", remember.value)
        with time_machine.travel(datetime.now(UTC) + timedelta(days=days)):
            assert restarted.get("/").status_code == 200, days
            assert restarted.get("/team").status_code == 200, days


def _device_with(app, *cookies):
    device = app.test_client()
    for cookie in cookies:
        device.set_cookie(cookie.key, cookie.value)
    return device


def test_signing_out_ends_copies_of_the_session_and_remember_cookies(app, client, make):
    _, owner = make.workspace_with_owner()
    client.post("/login", data={"email": owner.email, "password": PASSWORD, "remember": "y"})
    session_cookie = _cookie(client, "session")
    remember = _cookie(client, "remember_token")
    assert _device_with(app, session_cookie, remember).get("/").status_code == 200
    client.post("/logout")
    assert _device_with(app, session_cookie).get("/").status_code == 302
    assert _device_with(app, remember).get("/").status_code == 302
    assert client.get("/").status_code == 302
    assert (
        client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 302
    )  # signing in again works


def test_a_password_reset_signs_out_every_other_device(app, client, make, login):
    _, owner = make.workspace_with_owner()
    other_device = app.test_client()
    other_device.post("/login", data={"email": owner.email, "password": PASSWORD, "remember": "y"})
    remember = _cookie(other_device, "remember_token")
    with app.test_request_context():
        link = "/password/reset/" + tokens.password_reset_token(owner)
    done = client.post(
        link, data={"password": "brand new secret 9", "confirm": "brand new secret 9"}
    )
    assert done.status_code == 302
    assert other_device.get("/").status_code == 302
    assert _device_with(app, remember).get("/").status_code == 302


def _wrong_guesses(client, email, count):
    return [
        client.post(
            "/login",
            data={"email": email, "password": "wrong guess"},
            environ_base={"REMOTE_ADDR": f"10.0.1.{i}"},
        ).status_code
        for i in range(count)
    ]


def test_signing_in_many_times_is_not_a_failure(app, make):
    _, owner = make.workspace_with_owner()
    answers = []
    for _ in range(12):
        device = app.test_client()
        answers.append(
            device.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code
        )
        device.post("/logout")
    assert answers == [302] * 12


def test_a_stranger_guessing_cannot_lock_out_the_browser_that_signed_in_before(app, client, make):
    _, owner = make.workspace_with_owner()
    assert (
        client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 302
    )
    client.post("/logout")
    stranger = app.test_client()
    assert _wrong_guesses(stranger, owner.email, 11)[-1] == 429
    assert (
        client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 302
    )
    assert client.get("/").status_code == 200
    new_browser = app.test_client()  # never signed in here: the lock holds
    assert (
        new_browser.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code
        == 429
    )


def test_the_lockout_page_says_how_long_to_wait_in_the_readers_language(app, make):
    _, owner = make.workspace_with_owner()
    _wrong_guesses(app.test_client(), owner.email, 10)
    browser = app.test_client()
    refused = browser.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "<h1>429</h1>" in refused.text and "Try again in 15 minutes." in refused.text
    browser.post("/account/language", data={"language": "ru"})
    russian = browser.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert russian.status_code == 429 and "Попробуйте снова через 15 минут." in russian.text
