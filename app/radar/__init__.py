"""Conflict radar: source quality, funnel figures, alerts and the list of conflicts."""

from flask import Blueprint

bp = Blueprint("radar", __name__)

from app.radar import views  # noqa: E402,F401
