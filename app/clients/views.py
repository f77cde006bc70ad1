"""Account management: the client list, the hand-off inbox, export and new sales."""

from flask import Response, abort, flash, g, request, url_for
from flask_babel import gettext as _

from app.clients import bp, services
from app.conveyor import handoff
from app.conveyor.forms import ChurnForm, FlagForm
from app.conveyor.services import MoveRefused, lead_for_member_or_404, local_today
from app.extensions import db
from app.htmx import redirect_to, render
from app.models import ChurnReason, Phase, Promise
from app.policy import can, requires
from app.tenancy import get_for_tenant_or_404


def _manager_filter() -> int | None:
    return request.args.get("manager", type=int) if can("clients.filter_by_manager") else None


@bp.app_context_processor
def _waiting_handoffs() -> dict:
    """The account manager's menu and home count the hand-offs waiting for them."""
    if g.get("membership") is None or not can("handoffs.receive"):
        return {}
    return {"waiting_handoffs": handoff.waiting_handoffs(g.membership)}


@bp.route("/clients")
@requires("clients.manage")
def index():
    page = max(1, request.args.get("page", 1, type=int))
    manager_id = _manager_filter()
    churned = request.args.get("status") == "churned"
    clients, has_more = services.client_page(g.membership, manager_id, page, churned)
    return render(
        "clients/index.html",
        clients=clients,
        churned=churned,
        has_more=has_more,
        page_number=page,
        manager_id=manager_id,
        today=local_today(g.tenant),
        is_due=services.is_due,
        managers=services.account_managers(g.tenant) if can("clients.filter_by_manager") else [],
    )


@bp.route("/clients/export.csv")
@requires("data.export")
def export():
    body = services.export_csv(g.membership, _manager_filter(), g.tenant)
    return Response(
        "\ufeff" + body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="clients-{g.tenant.slug}.csv"'},
    )


@bp.route("/handoffs")
@requires("clients.manage")
def handoffs():
    return render(
        "clients/handoffs.html",
        handoffs=handoff.pending_handoffs(g.membership),
        flag_form=FlagForm(),
    )


def _promise_for_member(promise_id: int) -> Promise:
    promise = get_for_tenant_or_404(Promise, promise_id)
    lead_for_member_or_404(g.membership, promise.lead_id)
    return promise


@bp.route("/promises/<int:promise_id>/accept", methods=["POST"])
@requires("clients.manage")
def accept_promise(promise_id: int):
    promise = _promise_for_member(promise_id)
    try:
        handoff.decide_promise(g.membership, promise, accept=True)
    except MoveRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    return redirect_to(url_for("clients.handoffs"))


@bp.route("/promises/<int:promise_id>/flag", methods=["POST"])
@requires("clients.manage")
def flag_promise(promise_id: int):
    promise = _promise_for_member(promise_id)
    form = FlagForm()
    if not form.validate_on_submit():
        flash(_("Say why the promise cannot be kept."), "error")
        return redirect_to(url_for("clients.handoffs"))
    try:
        handoff.decide_promise(g.membership, promise, accept=False, reason=form.reason.data)
    except MoveRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    else:
        flash(_("Flagged: the owner sees it as a conflict."), "info")
    return redirect_to(url_for("clients.handoffs"))


@bp.route("/clients/<int:lead_id>/churn", methods=["POST"])
@requires("clients.churn")
def churn(lead_id: int):
    """The client stopped buying: marked churned with a reason, kept in the base."""
    client = lead_for_member_or_404(g.membership, lead_id)
    if client.stage.phase != Phase.ACCOUNT:
        abort(404)
    form = ChurnForm()
    if not form.validate_on_submit():
        flash(_("Say why they stopped buying."), "error")
        return redirect_to(url_for("conveyor.lead", lead_id=client.id))
    try:
        services.churn(g.membership, client, ChurnReason(form.reason.data), form.note.data or "")
    except MoveRefused as refusal:
        flash(str(refusal), "error")
    else:
        flash(_("Marked churned. The client stays in the base."), "info")
    return redirect_to(url_for("conveyor.lead", lead_id=client.id))


@bp.route("/clients/<int:lead_id>/new-sale", methods=["POST"])
@requires("clients.manage")
def new_sale(lead_id: int):
    client = lead_for_member_or_404(g.membership, lead_id)
    if client.stage.phase != Phase.ACCOUNT:
        abort(404)
    deal = services.new_sale(g.membership, client)
    if deal.owner:
        flash(_("New sale opened for %(name)s.", name=deal.owner.name), "success")
    else:
        flash(_("New sale opened; the owner assigns a closer."), "info")
    return redirect_to(url_for("conveyor.lead", lead_id=client.id))
