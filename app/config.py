"""Configuration read from the environment.

PostgreSQL is the only database and ``DATABASE_URL`` is always required: ``dev.py`` and
the tests point it at an embedded PostgreSQL in ``instance/pg`` (beside an embedded
Redis). Outside development a missing ``SECRET_KEY`` stops the start too.
Development is only ever asked for (``CONVEYOR_ENV=development``, which ``dev.py run``
sets): a server started any other way runs by production rules.
"""

import os
from datetime import timedelta


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a safe configuration."""


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


STRIPE_SETTINGS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_STARTER",
    "STRIPE_PRICE_TEAM",
)


def _stripe_settings(strict: bool) -> dict:
    """Billing is on when ``STRIPE_SECRET_KEY`` is set; then it needs the rest too."""
    settings = {name: os.environ.get(name) or None for name in STRIPE_SETTINGS}
    # Another address for Stripe's API (a local stand-in in tests); None is Stripe's own.
    settings["STRIPE_API_BASE"] = os.environ.get("STRIPE_API_BASE") or None
    missing = [name for name in STRIPE_SETTINGS if not settings[name]]
    if strict and settings["STRIPE_SECRET_KEY"] and missing:
        raise ConfigError("with STRIPE_SECRET_KEY set, also set " + ", ".join(missing))
    return settings


def _telegram_settings(strict: bool) -> dict:
    """The bot is on when ``TELEGRAM_BOT_TOKEN`` is set; then its webhook needs a secret."""
    settings = {
        "TELEGRAM_BOT_TOKEN": os.environ.get("TELEGRAM_BOT_TOKEN") or None,
        "TELEGRAM_WEBHOOK_SECRET": os.environ.get("TELEGRAM_WEBHOOK_SECRET") or None,
        # Another address for the Bot API (a local stand-in in tests).
        "TELEGRAM_API_BASE": (
            os.environ.get("TELEGRAM_API_BASE") or "https://api.telegram.org"
        ).rstrip("/"),
    }
    if strict and settings["TELEGRAM_BOT_TOKEN"] and not settings["TELEGRAM_WEBHOOK_SECRET"]:
        raise ConfigError("with TELEGRAM_BOT_TOKEN set, also set TELEGRAM_WEBHOOK_SECRET")
    return settings


def load_config(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the config mapping from the environment, then apply ``overrides``."""
    env = os.environ.get("CONVEYOR_ENV", "production")
    overrides = overrides or {}
    testing = bool(overrides.get("TESTING"))
    development = env == "development"

    secret = os.environ.get("SECRET_KEY")
    if not secret:
        if development or testing:
            secret = "dev-only-" + instance_path
        else:
            raise ConfigError("SECRET_KEY must be set outside development")

    database_url = os.environ.get("DATABASE_URL") or overrides.get("SQLALCHEMY_DATABASE_URI")
    if not database_url:
        raise ConfigError(
            "DATABASE_URL must be set to a PostgreSQL server (postgresql://user:pass@host/db); "
            "`python3 dev.py run` starts an embedded one for development"
        )
    if not database_url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        raise ConfigError("DATABASE_URL must be a PostgreSQL URL (postgresql://user:pass@host/db)")
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    stripe = _stripe_settings(strict=not (development or testing))
    mail_server = os.environ.get("MAIL_SERVER")

    config = {
        "ENV_NAME": env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "conveyor"),
        # How long a message may stay claimed by a worker before another takes it over.
        "ENGINE_STALE_CLAIM_SECONDS": int(os.environ.get("ENGINE_STALE_CLAIM_SECONDS", "300")),
        "BASE_URL": os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        # Mail: Flask-Mail's setting names. Without MAIL_SERVER, development keeps mail
        # in instance/outbox instead of sending it.
        "MAIL_SERVER": mail_server or "localhost",
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _flag("MAIL_USE_SSL"),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get(
            "MAIL_DEFAULT_SENDER", "Conveyor <noreply@localhost>"
        ),
        "MAIL_TRANSPORT": "smtp" if (mail_server or not development) else "outbox",
        "MAIL_OUTBOX_DIR": os.path.join(instance_path, "outbox"),
        # Sessions and cookies
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not (development or testing),
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": not (development or testing),
        "PERMANENT_SESSION_LIFETIME": timedelta(days=30),
        "WTF_CSRF_TIME_LIMIT": None,
        # The largest request (a CSV upload); intake keeps only its first 64 KB anyway.
        "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        # A 429 says when to come back (Retry-After) and every limited answer its budget.
        "RATELIMIT_HEADERS_ENABLED": True,
        # How many reverse proxies (TLS terminators) stand in front of the app. Their
        # X-Forwarded-For/-Proto are trusted only then: per-address limits need the
        # visitor's address, and a header from anybody else must not pick it.
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        "RATELIMIT_KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", "conveyor"),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": {"en": "English", "ru": "Русский"},
        # Calls per API token (the limits library's notation).
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT", "600/minute"),
        # Webhook endpoints on loopback addresses (development and tests only: no SSRF
        # into the machine itself in production). Private and metadata addresses never.
        "WEBHOOKS_ALLOW_LOOPBACK": development or _flag("WEBHOOKS_ALLOW_LOOPBACK"),
        "DEV_OUTBOX_ROUTE": development,
        **stripe,
        **_telegram_settings(strict=not (development or testing)),
        "TESTING": testing,
    }
    config.update(overrides)
    return config
