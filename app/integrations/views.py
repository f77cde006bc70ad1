"""Settings → API and webhooks (the owner): tokens, endpoints, their delivery logs."""

from flask import Blueprint, flash, g, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from app.api import tokens
from app.htmx import redirect_to, render
from app.integrations.forms import EndpointForm, TokenForm
from app.models import ApiToken, Membership, TokenAccess, WebhookDelivery, WebhookEndpoint
from app.policy import members_who, requires
from app.tenancy import get_for_tenant_or_404
from app.webhooks import addresses
from app.webhooks import endpoints as service
from app.webhooks.wake import wake

bp = Blueprint("integrations", __name__, url_prefix="/settings/integrations")


def _token_form() -> TokenForm:
    form = TokenForm(prefix="token")
    seats = members_who(g.tenant_id, "workspace.view")
    form.membership_id.choices = [
        SelectChoice(m.id, f"{m.user.name} ({m.user.email})") for m in seats
    ]
    if form.membership_id.data is None:
        form.membership_id.data = g.membership.id
    return form


def _page(token_form=None, endpoint_form=None, secret=None, status=200):
    return render(
        "integrations/index.html",
        http_status=status,
        token_form=token_form or _token_form(),
        endpoint_form=endpoint_form or EndpointForm(prefix="endpoint"),
        tokens=tokens.tokens_of(g.tenant),
        endpoints=service.endpoints_of(g.tenant),
        new_secret=secret,
    )


@bp.get("")
@requires("integrations.manage")
def index():
    return _page()


@bp.post("/tokens")
@requires("integrations.manage")
def create_token():
    form = _token_form()
    if not form.validate_on_submit():
        return _page(token_form=form, status=422)
    membership = get_for_tenant_or_404(Membership, form.membership_id.data)
    _, secret = tokens.create_token(
        g.tenant, current_user, form.name.data, TokenAccess(form.access.data), membership
    )
    # Shown on this answer only: it is never stored, and never put in the session. The
    # address bar shows the list, so a reload lists the tokens instead of answering 405.
    response = _page(secret=secret)
    response.headers["HX-Push-Url"] = url_for("integrations.index")
    return response


@bp.post("/tokens/<int:token_id>/revoke")
@requires("integrations.manage")
def revoke_token(token_id: int):
    tokens.revoke_token(get_for_tenant_or_404(ApiToken, token_id))
    flash(_("The token is revoked: calls with it are refused from now on."), "success")
    return redirect_to(url_for("integrations.index"))


@bp.post("/endpoints")
@requires("integrations.manage")
def create_endpoint():
    form = EndpointForm(prefix="endpoint")
    if form.validate_on_submit():
        try:
            endpoint = service.create_endpoint(
                g.tenant, g.membership, form.url.data, form.description.data, form.events.data
            )
        except addresses.Refused as refusal:
            form.url.errors.append(str(refusal))
        else:
            flash(_("Endpoint added. Copy its signing secret below."), "success")
            return redirect_to(url_for("integrations.endpoint", endpoint_id=endpoint.id))
    return _page(endpoint_form=form, status=422)


@bp.route("/endpoints/<int:endpoint_id>", methods=["GET", "POST"])
@requires("integrations.manage")
def endpoint(endpoint_id: int):
    row = get_for_tenant_or_404(WebhookEndpoint, endpoint_id)
    form = EndpointForm(prefix="endpoint", obj=row)
    status = 200
    if form.validate_on_submit():
        try:
            service.update_endpoint(row, form.url.data, form.description.data, form.events.data)
        except addresses.Refused as refusal:
            form.url.errors.append(str(refusal))
        else:
            flash(_("Endpoint saved."), "success")
            return redirect_to(url_for("integrations.endpoint", endpoint_id=row.id))
    if form.errors:
        status = 422
    return render(
        "integrations/endpoint.html",
        http_status=status,
        endpoint=row,
        form=form,
        log=service.delivery_log(row),
        previous_secret_in_force=service.previous_secret_in_force(row),
        statuses={
            "pending": _("waiting"),
            "sending": _("sending"),
            "delivered": _("delivered"),
            "failed": _("failed"),
        },
    )


@bp.post("/endpoints/<int:endpoint_id>/rotate")
@requires("integrations.manage")
def rotate_secret(endpoint_id: int):
    service.rotate_secret(get_for_tenant_or_404(WebhookEndpoint, endpoint_id))
    flash(_("New secret made. The old one keeps signing too for 24 hours."), "success")
    return redirect_to(url_for("integrations.endpoint", endpoint_id=endpoint_id))


@bp.post("/endpoints/<int:endpoint_id>/enable")
@requires("integrations.manage")
def enable(endpoint_id: int):
    service.set_enabled(get_for_tenant_or_404(WebhookEndpoint, endpoint_id), True)
    return redirect_to(url_for("integrations.endpoint", endpoint_id=endpoint_id))


@bp.post("/endpoints/<int:endpoint_id>/disable")
@requires("integrations.manage")
def disable(endpoint_id: int):
    service.set_enabled(get_for_tenant_or_404(WebhookEndpoint, endpoint_id), False)
    return redirect_to(url_for("integrations.endpoint", endpoint_id=endpoint_id))


@bp.post("/endpoints/<int:endpoint_id>/delete")
@requires("integrations.manage")
def delete(endpoint_id: int):
    service.delete_endpoint(get_for_tenant_or_404(WebhookEndpoint, endpoint_id))
    flash(_("Endpoint deleted."), "success")
    return redirect_to(url_for("integrations.index"))


@bp.post("/deliveries/<int:delivery_id>/redeliver")
@requires("integrations.manage")
def redeliver(delivery_id: int):
    delivery = get_for_tenant_or_404(WebhookDelivery, delivery_id)
    service.redeliver(delivery)
    wake()
    flash(_("Queued to be sent again, with the same webhook-id."), "success")
    return redirect_to(url_for("integrations.endpoint", endpoint_id=delivery.endpoint_id))
