from flask import Blueprint

bp = Blueprint("workspace", __name__)

from app.workspace import views  # noqa: E402,F401
