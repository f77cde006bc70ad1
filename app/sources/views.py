"""Managing lead sources, their Connect page, and the inbox of everything posted."""

from datetime import date

from flask import abort, flash, g, request, url_for
from flask_babel import gettext as _

from app.htmx import local_path_or, redirect_to, render
from app.intake import cap
from app.intake import services as intake
from app.intake.fields import FORM_CONTROL_FIELDS, KNOWN_FIELDS
from app.labels import readable_fields
from app.models import InboxItem, InboxStatus, Source, SourceKind
from app.money import major_text
from app.policy import can, requires
from app.radar import alerts
from app.sources import bp, services, verdicts
from app.sources.forms import CorrectionForm, SourceForm
from app.tenancy import get_for_tenant_or_404

LIMIT_FIELDS = ("junk_share_max", "qualified_share_min")


def _source_form(**kwargs) -> SourceForm:
    """The source form; its alert limits only for the one who may set them (the owner):
    the role the alarm watches never sees the switch."""
    form = SourceForm(**kwargs)
    if not can("alerts.limits"):
        for name in LIMIT_FIELDS:
            del form[name]
    return form


def _limits_refused(form: SourceForm, source: Source | None):
    """A post naming alert limits from someone who may not set them: refused whole."""
    if can("alerts.limits") or not any(name in request.form for name in LIMIT_FIELDS):
        return None
    flash(_("Only the owner sets alert limits."), "error")
    return render("sources/form.html", http_status=403, form=form, source=source)


@bp.route("/sources")
@requires("sources.manage")
def index():
    sources = services.list_sources(g.tenant)
    standings = {source.id: alerts.standing(source, g.tenant) for source, _count in sources}
    return render("sources/index.html", sources=sources, standings=standings)


@bp.route("/sources/new", methods=["GET", "POST"])
@requires("sources.manage")
def new():
    form = _source_form()
    refused = _limits_refused(form, None)
    if refused:
        return refused
    if form.validate_on_submit():
        try:
            source = services.create_source(
                g.tenant,
                form.name.data,
                SourceKind(form.kind.data),
                form.cost_minor,
                signed=form.signed.data,
                thank_you_url=form.thank_you_url.data,
                rate_limit_per_minute=form.rate_limit_per_minute.data,
                **{name: form[name].data for name in LIMIT_FIELDS if name in form},
            )
        except services.SourceError as error:
            form.name.errors = [*form.name.errors, str(error)]
        else:
            flash(_("Source %(name)s created. Connect it below.", name=source.name), "success")
            return redirect_to(url_for("sources.connect", source_id=source.id))
    return render(
        "sources/form.html", http_status=422 if form.errors else 200, form=form, source=None
    )


@bp.route("/sources/<int:source_id>/edit", methods=["GET", "POST"])
@requires("sources.manage")
def edit(source_id: int):
    source = get_for_tenant_or_404(Source, source_id)
    form = _source_form(obj=source)
    refused = _limits_refused(form, source)
    if refused:
        return refused
    if request.method == "GET":
        form.cost.data = major_text(source.cost_per_lead_minor, g.tenant.currency)
    if form.validate_on_submit():
        data = {**form.data, "cost_minor": form.cost_minor}
        try:
            services.update_source(g.tenant, source, data)
        except services.SourceError as error:
            form.name.errors = [*form.name.errors, str(error)]
        else:
            flash(_("Source saved."), "success")
            return redirect_to(url_for("sources.index"))
    return render(
        "sources/form.html", http_status=422 if form.errors else 200, form=form, source=source
    )


@bp.route("/sources/<int:source_id>/connect")
@requires("sources.manage")
def connect(source_id: int):
    source = get_for_tenant_or_404(Source, source_id)
    return render(
        "sources/connect.html",
        source=source,
        intake_url=services.intake_url(source),
        form_url=services.hosted_form_url(source),
        known_fields=KNOWN_FIELDS,
    )


def _source_action(source_id: int, action, message: str):
    source = get_for_tenant_or_404(Source, source_id)
    action(source)
    flash(message % {"name": source.name}, "success")
    return redirect_to(local_path_or(url_for("sources.index"), request.form.get("next")))


@bp.route("/sources/<int:source_id>/pause", methods=["POST"])
@requires("sources.manage")
def pause(source_id: int):
    return _source_action(
        source_id,
        lambda s: services.set_active(s, False),
        _("%(name)s is paused: its leads are still captured, flagged."),
    )


@bp.route("/sources/<int:source_id>/resume", methods=["POST"])
@requires("sources.manage")
def resume(source_id: int):
    return _source_action(
        source_id, lambda s: services.set_active(s, True), _("%(name)s is active again.")
    )


@bp.route("/sources/<int:source_id>/rotate-token", methods=["POST"])
@requires("sources.manage")
def rotate_token(source_id: int):
    return _source_action(
        source_id,
        services.rotate_token,
        _("%(name)s has a new address; the old one no longer works."),
    )


@bp.route("/sources/<int:source_id>/signing/rotate", methods=["POST"])
@requires("sources.manage")
def rotate_signing(source_id: int):
    return _source_action(
        source_id,
        services.rotate_signing_secret,
        _("%(name)s has a new signing secret; unsigned posts are refused."),
    )


@bp.route("/sources/<int:source_id>/signing/disable", methods=["POST"])
@requires("sources.manage")
def disable_signing(source_id: int):
    return _source_action(
        source_id, services.disable_signing, _("%(name)s no longer requires signatures.")
    )


@bp.route("/inbox")
@requires("sources.manage")
def inbox():
    status = request.args.get("status") or None
    source_id = request.args.get("source", type=int)
    page = max(1, request.args.get("page", 1, type=int))
    items, has_more = services.inbox_page(g.tenant, status, source_id, page)
    return render(
        "sources/inbox.html",
        "sources/_inbox_rows.html",
        items=items,
        has_more=has_more,
        counted=services.counted_minutes(g.tenant, source_id) if page == 1 else [],
        refused_kept=cap.REFUSED_POSTS_KEPT_PER_MINUTE,
        page_number=page,
        status_filter=status,
        source_id=source_id,
        statuses=list(InboxStatus),
        verdict=verdicts.verdict,
        answer_words=verdicts.answer_words,
        sources=[s for s, _ in services.list_sources(g.tenant)],
    )


def _posted_date(fields: dict) -> tuple[date | None, str]:
    """The posted decision date for the form's date field, and the text as posted when it
    is not a date the field can hold (shown beside it, to be corrected)."""
    posted = (fields.get("decision_date") or "").strip()
    try:
        return (date.fromisoformat(posted) if posted else None), ""
    except ValueError:
        return None, posted


def _as_posted(fields: dict) -> dict:
    """What the sender filled in: a bot's post keeps its whole body under "raw", less the
    form's own controls (honeypot, timing), which are no one's data."""
    if "raw" not in fields:
        return fields
    return {k: v for k, v in fields["raw"].items() if k not in FORM_CONTROL_FIELDS}


def _show_errors(form: CorrectionForm, errors: dict) -> None:
    """Each error of a field next to it (the page lists those of no field, such as no way
    to reach the person, above the form)."""
    for name, message in (errors or {}).items():
        if name in form and message not in form[name].errors:
            form[name].errors = [*form[name].errors, message]


@bp.route("/inbox/<int:item_id>", methods=["GET", "POST"])
@requires("sources.manage")
def inbox_item(item_id: int):
    item = get_for_tenant_or_404(InboxItem, item_id)
    fields = item.fields or {}
    decision_date, unreadable_date = _posted_date(fields)
    form = CorrectionForm(
        data={
            **{k: fields.get(k) for k in KNOWN_FIELDS if k in CorrectionForm.__dict__},
            "decision_date": decision_date,
        }
    )
    if request.method == "POST":
        if item.status != InboxStatus.REJECTED:
            abort(409)
        if form.validate_on_submit():
            corrected = {k: (form[k].data or "") for k in KNOWN_FIELDS if k != "decision_date"}
            if form.decision_date.data:
                corrected["decision_date"] = form.decision_date.data.isoformat()
            corrected = {**(fields.get("extra") or {}), **corrected}
            result = intake.reprocess(item, corrected)
            if result is None:  # re-processed at the same moment by someone else
                abort(409)
            if result.item.status == InboxStatus.REJECTED:
                _show_errors(form, result.item.errors)
            else:
                flash(_("Accepted: it joins the board in a moment."), "success")
                return redirect_to(url_for("sources.inbox_item", item_id=item.id))
    elif item.status == InboxStatus.REJECTED:
        _show_errors(form, item.errors)
    return render(
        "sources/inbox_item.html",
        http_status=422 if request.method == "POST" and form.errors else 200,
        item=item,
        form=form,
        verdict=verdicts.verdict(item),
        unreadable_date=unreadable_date,
        other_fields=readable_fields({"extra": fields.get("extra") or {}}),
        posted_fields=readable_fields(_as_posted(fields)),
        body_text=item.body.decode("utf-8", errors="replace"),
    )
