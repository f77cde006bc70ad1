from flask import Blueprint

bp = Blueprint("leads", __name__)

from app.leads import views  # noqa: E402,F401
