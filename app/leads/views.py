"""The incoming-leads list, refreshed by htmx so new leads appear without a reload."""

from flask import g, request

from app.htmx import render
from app.leads import bp, services
from app.policy import requires


@bp.route("/leads")
@requires("leads.generation")
def incoming():
    before = request.args.get("before", type=int)
    leads, has_more = services.incoming(g.membership, before)
    fragment = "leads/_rows.html" if before else "leads/_list.html"
    return render(
        "leads/incoming.html", fragment, leads=leads, has_more=has_more, paged=bool(before)
    )


@bp.app_template_global()
def contact_card(lead) -> services.ContactCard:
    """Who the lead is about, as the signed-in member may see it."""
    return services.contact_card(g.get("membership"), lead)
