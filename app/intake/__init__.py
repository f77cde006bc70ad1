from flask import Blueprint

bp = Blueprint("intake", __name__)

from app.intake import views  # noqa: E402,F401
