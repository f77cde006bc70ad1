"""The constant contact engine: digests, reminders, escalations, notifications."""

from flask import Blueprint

bp = Blueprint("engine", __name__)

from app.engine import views  # noqa: E402,F401
