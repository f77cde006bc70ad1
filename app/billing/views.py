"""The owner's billing page, the ways to Checkout and the portal, and Stripe's webhook."""

import stripe
from flask import current_app, flash, g, jsonify, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from app.billing import bp, events, services
from app.billing.access import billing_banner
from app.billing.forms import CheckoutForm, PortalForm
from app.billing.stripe_client import billing_enabled
from app.extensions import csrf, limiter
from app.htmx import redirect_to, render
from app.policy import requires

bp.add_app_template_global(billing_banner, "billing_banner")


@bp.route("/billing")
@requires("billing.manage")
def index():
    return render(
        "billing/index.html",
        enabled=billing_enabled(),
        summary=services.summary(g.tenant),
        plan_names=services.PLAN_NAMES,
        status_names=services.STATUS_NAMES,
        checkout_form=CheckoutForm(),
        portal_form=PortalForm(),
        just_paid=request.args.get("checkout") == "done",
    )


@bp.route("/billing/checkout", methods=["POST"])
@requires("billing.manage")
def checkout():
    """Off to Stripe Checkout to subscribe for the workspace's seats."""
    form = CheckoutForm()
    if not form.validate_on_submit():
        flash(_("Choose a plan."), "error")
        return redirect_to(url_for("billing.index"))
    return _to_stripe(
        lambda: services.start_checkout(g.tenant, current_user, form.plan.data, str(get_locale()))
    )


@bp.route("/billing/portal", methods=["POST"])
@requires("billing.manage")
def portal():
    """Off to Stripe's customer portal: card, invoices, plan, cancelling."""
    if not PortalForm().validate_on_submit():
        return redirect_to(url_for("billing.index"))
    return _to_stripe(lambda: services.open_portal(g.tenant, current_user, str(get_locale())))


def _to_stripe(open_page):
    """Redirect to the Stripe page ``open_page`` returns, or back with the reason."""
    try:
        return redirect_to(open_page())
    except services.BillingError as error:
        flash(str(error), "error")
    except stripe.StripeError:
        current_app.logger.exception("Stripe refused or did not answer")
        flash(_("Stripe did not answer. Try again in a moment."), "error")
    return redirect_to(url_for("billing.index"))


@bp.route("/billing/webhook", methods=["POST"])
@csrf.exempt
@limiter.exempt
def webhook():
    """Stripe's events: verified and stored now (2xx fast), processed by the worker."""
    if not billing_enabled():
        return jsonify({"error": "billing is off on this server"}), 400
    try:
        received = events.receive(
            request.get_data(cache=False), request.headers.get("Stripe-Signature")
        )
    except events.BadEvent as error:
        return jsonify({"error": str(error)}), 400
    return jsonify({"status": "received" if received.new else "duplicate"})
