from flask import Blueprint

bp = Blueprint("sources", __name__)

from app.sources import views  # noqa: E402,F401
