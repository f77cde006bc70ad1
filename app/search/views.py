"""The header's search box: results as you type, or a page without JavaScript."""

from flask import Blueprint, g, request

from app.htmx import render
from app.intake.services import phone_region
from app.policy import requires
from app.search import services

bp = Blueprint("search", __name__)


@bp.route("/search")
@requires("search.use")
def results():
    found = services.search(g.membership, request.args.get("q", ""), phone_region(g.tenant))
    return render("search/page.html", "search/_results.html", results=found)
