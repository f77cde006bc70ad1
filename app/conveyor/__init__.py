from flask import Blueprint

bp = Blueprint("conveyor", __name__)

from app.conveyor import views  # noqa: E402,F401
