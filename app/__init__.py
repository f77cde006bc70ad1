"""Application factory: config → extensions → blueprints → errors → CLI. It only wires."""

import os

from flask import Flask, render_template
from flask_babel import gettext as _

from app.config import load_config
from app.extensions import babel, csrf, db, limiter, login_manager, migrate
from app.security import trust_proxies


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(load_config(app.instance_path, overrides))
    os.makedirs(app.instance_path, exist_ok=True)

    register_extensions(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_errors(app)
    register_cli(app)
    trust_proxies(app)
    return app


def register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (mappers before first use)
    from app.i18n import current_language, current_timezone, register_template_helpers
    from app.queue import limiter_storage_uri
    from app.security import register_security_headers
    from app.sessions import SessionInterface

    app.session_interface = SessionInterface()
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=current_language, timezone_selector=current_timezone)
    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app.config["REDIS_URL"]))
    limiter.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    # "basic": a session seen from another address or browser is no longer fresh.
    # "strong" dropped it, and with it the remember cookie: a remember-me login (which
    # has no session identifier yet) was signed out on its second request, and a phone
    # changing networks lost "keep me signed in". Sessions are revoked on the server
    # instead (the user's session version).
    login_manager.session_protection = "basic"
    login_manager.user_loader(_load_user)

    register_security_headers(app)
    register_template_helpers(app)


def _load_user(user_id: str):
    from app.models import User

    raw_id, _, version = user_id.partition(":")
    if not raw_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(raw_id))
    if user is None or user.session_version != int(version):
        return None
    return user


def register_blueprints(app: Flask) -> None:
    from app.api.views import bp as api_bp
    from app.auth import bp as auth_bp
    from app.billing import bp as billing_bp
    from app.clients import bp as clients_bp
    from app.conveyor import bp as conveyor_bp
    from app.engine import bp as engine_bp
    from app.imports import bp as imports_bp
    from app.intake import bp as intake_bp
    from app.integrations.views import bp as integrations_bp
    from app.leads import bp as leads_bp
    from app.main import bp as main_bp
    from app.people.views import bp as people_bp
    from app.radar import bp as radar_bp
    from app.search.views import bp as search_bp
    from app.sources import bp as sources_bp
    from app.telegram.views import bp as telegram_bp
    from app.workspace import bp as workspace_bp

    for blueprint in (
        main_bp,
        auth_bp,
        workspace_bp,
        intake_bp,
        sources_bp,
        leads_bp,
        imports_bp,
        conveyor_bp,
        clients_bp,
        engine_bp,
        radar_bp,
        billing_bp,
        telegram_bp,
        api_bp,
        integrations_bp,
        people_bp,
        search_bp,
    ):
        app.register_blueprint(blueprint)


def register_request_hooks(app: Flask) -> None:
    from app import policy
    from app.billing.access import refuse_writes_when_read_only
    from app.htmx import add_vary, navigate_after_redirect
    from app.tenancy import forget_current_tenant, load_current_tenant

    app.before_request(load_current_tenant)
    app.before_request(refuse_writes_when_read_only)
    app.teardown_request(forget_current_tenant)
    app.after_request(add_vary)
    app.after_request(navigate_after_redirect)
    app.jinja_env.globals["can"] = policy.can
    app.context_processor(_open_conflicts)


def _open_conflicts() -> dict:
    """The owner's navigation counts open conflicts (one small indexed query)."""
    from flask import g

    from app import policy
    from app.radar.conflicts import open_count

    if g.get("tenant") is None or not policy.can("radar.view"):
        return {}
    return {"open_conflicts": open_count(g.tenant)}


def register_errors(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    messages = {
        400: lambda: _("The request could not be understood."),
        403: lambda: _("Your role does not allow this."),
        404: lambda: _("There is nothing here."),
        405: lambda: _("This address does not accept that method."),
        413: lambda: _("That is too large to upload (25 MB at most)."),
        429: lambda: _("Too many attempts. Wait a little and try again."),
        500: lambda: _("Something broke on our side. Try again in a moment."),
    }

    def handle(error):
        code = getattr(error, "code", 500) or 500
        message = _wait_message() if code == 429 else messages.get(code, messages[500])()
        return render_template("errors/error.html", code=code, message=message), code

    def handle_csrf(error):
        message = _("The form expired. Reload the page and try again.")
        return render_template("errors/error.html", code=400, message=message), 400

    for code in messages:
        app.register_error_handler(code, handle)
    app.register_error_handler(CSRFError, handle_csrf)


def _wait_message() -> str:
    """A refused attempt says how long to wait (the Retry-After header, for people)."""
    from flask_babel import ngettext

    from app import clock

    limit = limiter.current_limit
    if limit is None:
        return _("Too many attempts. Wait a little and try again.")
    minutes = max(1, round((limit.reset_at - clock.now().timestamp()) / 60))
    return ngettext(
        "Too many attempts. Try again in %(num)d minute.",
        "Too many attempts. Try again in %(num)d minutes.",
        minutes,
    )


def register_cli(app: Flask) -> None:
    from app.cli import register

    register(app)
