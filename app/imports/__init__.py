from flask import Blueprint

bp = Blueprint("imports", __name__)

from app.imports import views  # noqa: E402,F401
