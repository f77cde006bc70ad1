"""Quick add, suggestions while typing, the person page, editing and merging."""

from contextlib import suppress

from flask import Blueprint, flash, g, request, url_for
from flask_babel import gettext as _
from wtforms.validators import ValidationError

from app.conveyor import views as conveyor_views
from app.formatting import phone_text
from app.htmx import is_htmx_request, redirect_to, render
from app.people import quick_add as quick
from app.people import services
from app.people.forms import PersonForm, QuickAddForm
from app.policy import allows, requires

bp = Blueprint("people", __name__)


def quick_add_form(formdata=None) -> QuickAddForm:
    """The quick add form with the workspace's hand-entry sources to choose from."""
    form = QuickAddForm(formdata=formdata, prefix="qa")
    form.source.choices = quick.manual_choices(g.tenant)
    return form


@bp.app_context_processor
def _quick_add_kit() -> dict:
    """Pages that offer quick add build its form lazily (the sources come from the base)."""
    return {"quick_add_form": quick_add_form}


@bp.route("/quick-add", methods=["GET", "POST"])
@requires("leads.quick_add")
def add():
    """A new lead by hand. From the board's dialog the answer is the redrawn board
    (one request); elsewhere the member lands where they were, with a message."""
    came_from = request.values.get("from", "")
    if request.method == "GET":
        return render("people/quick_add.html", form=quick_add_form(), came_from=came_from)
    form = quick_add_form(request.form)
    if not form.validate():
        response = render(
            "people/quick_add.html",
            "people/_quick_add_form.html",
            http_status=422,
            form=form,
            came_from=came_from,
        )
        response.headers["HX-Retarget"] = "#quick-add-form"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    lead_id, joined = quick.quick_add(
        g.tenant,
        g.membership,
        quick.QuickLead(
            name=form.name.data.strip(),
            email=form.email_value,
            phone=form.phone_value,
            source_kind=form.source.data,
            company=(form.company.data or "").strip() or None,
            note=(form.note.data or "").strip() or None,
            budget=(form.budget.data or "").strip() or None,
            decision_date=form.decision_date.data,
        ),
    )
    message = (
        _("They already had an open lead: it is marked “asked again” and rises on the board.")
        if joined
        else _("Lead added.")
    )
    if came_from == "board" and is_htmx_request():
        response = conveyor_views._board_response(conveyor_views._filters())
        response.headers["HX-Trigger"] = "quick-added"
        response.headers["HX-Reswap"] = "outerHTML"
        response.headers["HX-Retarget"] = "#board"
        return response
    flash(message, "success")
    back = {"today": "conveyor.today_queue", "clients": "clients.index"}.get(came_from)
    if back:
        return redirect_to(url_for(back))
    if services.may_open_lead(g.membership, lead_id):
        return redirect_to(url_for("conveyor.lead", lead_id=lead_id))
    return redirect_to(url_for("conveyor.board"))


@bp.route("/quick-add/matches")
@requires("leads.quick_add")
def matches():
    """People already in the base that the typed details match. The owner sees who; a
    member who may not walk the base learns only that a match exists."""
    form = QuickAddForm(formdata=request.args, prefix="qa", meta={"csrf": False})
    for check, field in ((form.validate_email, form.email), (form.validate_phone, form.phone)):
        with suppress(ValidationError):  # a half-typed email or phone matches nothing yet
            check(field)
    found = quick.matches(
        g.tenant, (form.name.data or "").strip(), form.email_value, form.phone_value
    )
    return render(
        "people/_matches.html",
        "people/_matches.html",
        found=found,
        details=allows(g.membership, "people.browse"),
    )


@bp.route("/people/<int:contact_id>", methods=["GET", "POST"])
@requires("people.edit")
def person(contact_id: int):
    contact = services.person_for_member_or_404(g.membership, contact_id)
    form = PersonForm(obj=contact) if request.method == "GET" else PersonForm()
    if request.method == "GET":
        form.phone.data = phone_text(contact.phone)  # as people there write it
    if request.method == "POST" and form.validate():
        changed = services.edit(
            g.membership,
            contact,
            {
                "name": form.name.data.strip(),
                "email": form.email_value,
                "phone": form.phone_value,
                "company": (form.company.data or "").strip() or None,
            },
        )
        flash(_("Saved.") if changed else _("Nothing changed."), "success")
        return redirect_to(url_for("people.person", contact_id=contact.id))
    data = services.page(g.membership, contact)
    return render(
        "people/person.html",
        http_status=422 if form.errors else 200,
        person=data,
        form=form,
        actors=services.actors(data.history),
    )


@bp.route("/people/<int:contact_id>/merge", methods=["POST"])
@requires("people.merge")
def merge(contact_id: int):
    keep = services.person_for_member_or_404(g.membership, contact_id)
    other = services.person_for_member_or_404(
        g.membership, request.form.get("other", type=int) or 0
    )
    if other.id == keep.id:
        flash(_("Choose another person to merge."), "error")
    else:
        moved = services.merge(g.membership, keep, other)
        flash(_("Merged: %(num)d deals moved to this person.", num=moved), "success")
    return redirect_to(url_for("people.person", contact_id=keep.id))
