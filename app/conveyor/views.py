"""The board, the lead page with the qualification gate, and the closer's Today queue."""

from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from flask import abort, current_app, flash, g, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf
from markupsafe import escape
from wtforms import SelectChoice

from app import clock
from app.conveyor import board as board_service
from app.conveyor import bp, handoff, services, timeline, today
from app.conveyor.forms import (
    CadenceForm,
    ChurnForm,
    LoseForm,
    NoteForm,
    QualificationForm,
    ScheduleTouchForm,
    TouchForm,
    WinForm,
    parse_money,
)
from app.extensions import db
from app.formatting import format_date
from app.htmx import is_htmx_request, local_path_or, redirect_to, render
from app.models import Membership, Phase, Source, Stage, User
from app.models.activity import LostReason, TouchChannel
from app.money import major_text
from app.policy import can, requires, users_who, visible_phases
from app.tenancy import get_for_tenant_or_404


def _filters() -> board_service.BoardFilters:
    return board_service.BoardFilters(
        source_id=request.values.get("source", type=int),
        owner_id=request.values.get("owner", type=int),
        text=(request.values.get("q") or "").strip()[:100],
        all_closed=request.values.get("closed") == "all",
    )


def _card_kit(stages) -> SimpleNamespace:
    """What every card repeats, worked out once per page: 225 cards add up. A namespace,
    not a dict: Jinja reads ``kit.x`` as an attribute first, and a dict's miss costs an
    exception each time."""
    options = "".join(
        f'<option value="{stage.id}">{escape(stage.name)}</option>' for stage in stages
    )
    return SimpleNamespace(
        lead_url=url_for("conveyor.lead", lead_id=0).replace("/0", "/{}", 1),
        move_url=url_for("conveyor.move", lead_id=0).replace("/0/", "/{}/", 1),
        stage_options=options,
        rot_days={
            stage.id: None if stage.is_won or stage.is_lost else stage.rot_days for stage in stages
        },
        csrf=generate_csrf(),
    )


def _board_response(filters, error: str | None = None, http_status: int = 200):
    columns = board_service.build(g.tenant, g.membership, filters)
    stages = [c.stage for c in columns]
    return render(
        "conveyor/board.html",
        "conveyor/_board.html",
        http_status=http_status,
        columns=columns,
        filters=filters,
        error=error,
        today=services.local_today(g.tenant),
        kit=_card_kit(stages),
        sources=_filter_sources(),
        owners=_filter_owners(),
        stamp=board_service.stamp_of(columns),
    )


def _filter_sources():
    if not can("sources.manage"):
        return []
    return list(
        db.session.scalars(
            sa.select(Source).where(Source.tenant_id == g.tenant.id).order_by(Source.name)
        )
    )


def _filter_owners():
    if not can("board.filter_by_owner"):
        return []
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == g.tenant.id)
            .order_by(User.name)
        )
    )


@bp.route("/board")
@requires("board.view")
def board():
    return _board_response(_filters())


@bp.route("/board/pulse")
@requires("board.view")
def board_pulse():
    """Polled by an open board: 204, plus the event that refreshes the board when
    what it shows has changed (a new lead, a move, a touch) since it was drawn."""
    response = current_app.response_class(status=204)
    if request.args.get("stamp") != board_service.stamp(g.membership, _filters()):
        response.headers["HX-Trigger"] = "board-changed"
    return response


@bp.route("/board/stages/<int:stage_id>/more")
@requires("board.view")
def more_cards(stage_id: int):
    stage = get_for_tenant_or_404(Stage, stage_id)
    if stage.phase not in visible_phases(g.membership):
        abort(404)
    try:
        activity, lead_id = request.args["after"].rsplit("|", 1)
        after = (datetime.fromisoformat(activity), int(lead_id))
    except (KeyError, ValueError):
        abort(400)
    # The board writes the cursor with its UTC offset and a real id; anything else
    # was made by hand and must not reach the database.
    if after[0].tzinfo is None or not 0 < after[1] < 2**31:
        abort(400)
    filters = _filters()
    cards = board_service.more_cards(g.membership, stage, filters, after)
    return render(
        "conveyor/_more_cards.html",
        cards=cards,
        stage=stage,
        filters=filters,
        has_more=len(cards) == board_service.CARDS_PER_PAGE,
        today=services.local_today(g.tenant),
        kit=_card_kit(board_service.build_stage_list(g.tenant, g.membership)),
    )


@bp.route("/deals/<int:lead_id>/move", methods=["POST"])
@requires("board.view")
def move(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    target = get_for_tenant_or_404(Stage, request.form.get("stage_id", type=int) or 0)
    error = None
    try:
        services.move_lead(g.membership, lead, target)
    except services.MoveRefused as refusal:
        db.session.rollback()
        error = str(refusal)
    if is_htmx_request() and request.form.get("from") == "board":
        return _board_response(_filters(), error=error, http_status=422 if error else 200)
    flash(error or _("Moved to %(stage)s.", stage=target.name), "error" if error else "success")
    return redirect_to(
        local_path_or(url_for("conveyor.lead", lead_id=lead.id), request.form.get("next"))
    )


def _lead_page(
    lead,
    qualification=None,
    lose_form=None,
    note_form=None,
    touch_form=None,
    cadence_form=None,
    http_status=200,
):
    tenant_today = services.local_today(g.tenant)
    qualification = qualification or QualificationForm(
        data={
            "problem": lead.problem,
            "money": lead.money,
            "decision_date": lead.decision_date,
            "value": major_text(lead.value_minor, g.tenant.currency),
        }
    )
    closers = users_who(g.tenant.id, "work.deals") if can("deals.assign") else []
    next_lead = None
    if can("deals.next_in_queue"):
        queue_ids = [item.id for item in today.queue(g.tenant, g.membership, tenant_today)]
        if lead.id in queue_ids and queue_ids.index(lead.id) + 1 < len(queue_ids):
            next_lead = queue_ids[queue_ids.index(lead.id) + 1]
    return render(
        "conveyor/lead.html",
        http_status=http_status,
        lead=lead,
        stage=lead.stage,
        events=timeline.lines(lead),
        qualification=qualification,
        lose_form=lose_form or LoseForm(),
        churn_form=ChurnForm(),
        note_form=note_form or NoteForm(),
        touch_form=touch_form or TouchForm(),
        closers=closers,
        next_lead=next_lead,
        promises=handoff.promises_of(lead),
        schedule_form=ScheduleTouchForm(),
        cadence_form=cadence_form or CadenceForm(data={"cadence_days": lead.cadence_days}),
        today=tenant_today,
        stages=services.stages(g.tenant, visible_phases(g.membership)),
    )


@bp.route("/deals/<int:lead_id>")
@requires("board.view")
def lead(lead_id: int):
    return _lead_page(services.lead_for_member_or_404(g.membership, lead_id))


@bp.route("/deals/<int:lead_id>/qualification", methods=["POST"])
@requires("leads.qualify")
def qualify(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = QualificationForm()
    if not form.validate_on_submit():
        return _lead_page(lead, qualification=form, http_status=422)
    services.save_qualification(
        g.membership,
        lead,
        form.problem.data or "",
        form.money.data or "",
        form.decision_date.data,
        parse_money(form.value.data),
    )
    if lead.is_qualified:
        flash(_("Qualified: problem, money and timing are recorded."), "success")
    else:
        flash(_("Saved. Record all three conditions to send it to conversion."), "info")
    return redirect_to(url_for("conveyor.lead", lead_id=lead.id))


@bp.route("/deals/<int:lead_id>/convert", methods=["POST"])
@requires("leads.qualify")
def convert(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    closer_id = request.form.get("closer_id", type=int)
    try:
        services.send_to_conversion(g.membership, lead, closer_id)
    except services.MoveRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return redirect_to(url_for("conveyor.lead", lead_id=lead.id))
    if lead.owner_id:
        flash(_("Sent to %(name)s for conversion.", name=lead.owner.name), "success")
    else:
        flash(_("Sent to conversion; no closer is free, so the owner assigns it."), "info")
    if can("deals.assign"):
        return redirect_to(url_for("conveyor.lead", lead_id=lead.id))
    return redirect_to(url_for("conveyor.board"))


@bp.route("/deals/<int:lead_id>/lose", methods=["POST"])
@requires("deals.lose")
def lose(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = LoseForm()
    if form.validate_on_submit():
        try:
            services.lose(g.membership, lead, LostReason(form.reason.data), form.note.data or "")
        except services.MoveRefused as refusal:
            db.session.rollback()
            # At the top of the page: a client's page has no lose form to show it in.
            flash(str(refusal), "error")
        else:
            flash(_("Closed as lost."), "info")
            return redirect_to(url_for("conveyor.board"))
    return _lead_page(lead, lose_form=form, http_status=422)


@bp.route("/deals/<int:lead_id>/notes", methods=["POST"])
@requires("board.view")
def add_note(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return _lead_page(lead, note_form=form, http_status=422)
    services.add_note(g.membership, lead, form.text.data)
    return redirect_to(url_for("conveyor.lead", lead_id=lead.id))


@bp.route("/deals/<int:lead_id>/touches", methods=["POST"])
@requires("board.view")
def log_touch(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = TouchForm()
    back = local_path_or(url_for("conveyor.lead", lead_id=lead.id), request.form.get("next"))
    if not form.validate_on_submit():
        if request.form.get("next"):
            flash(_("Say how it went: the outcome is needed."), "error")
            return redirect_to(back)
        return _lead_page(lead, touch_form=form, http_status=422)
    services.log_touch(
        g.membership, lead, TouchChannel(form.channel.data), form.outcome.data, form.note.data or ""
    )
    flash(_("Touch logged."), "success")
    return redirect_to(back)


@bp.route("/deals/<int:lead_id>/cadence", methods=["POST"])
@requires("clients.manage")
def set_cadence(lead_id: int):
    """A client's own touch cadence; empty goes back to the workspace's."""
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    if lead.stage.phase != Phase.ACCOUNT:
        abort(404)
    form = CadenceForm()
    if not form.validate_on_submit():
        return _lead_page(lead, cadence_form=form, http_status=422)
    services.set_cadence(g.membership, lead, form.cadence_days.data)
    flash(
        _("Next touch on %(date)s.", date=format_date(lead.next_touch_on)),
        "success",
    )
    return redirect_to(url_for("conveyor.lead", lead_id=lead.id))


@bp.route("/deals/<int:lead_id>/schedule", methods=["POST"])
@requires("board.view")
def schedule_touch(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = ScheduleTouchForm()
    if not form.validate_on_submit():
        flash(_("Give a date and time such as 2026-12-01 10:30."), "error")
    else:
        services.schedule_touch(g.membership, lead, form.at.data)
        flash(
            _("Planned: you will be reminded then.") if form.at.data else _("Plan cleared."),
            "success",
        )
    return redirect_to(url_for("conveyor.lead", lead_id=lead.id))


@bp.route("/today")
@requires("deals.convert")
def today_queue():
    tenant_today = services.local_today(g.tenant)
    leads = today.queue(g.tenant, g.membership, tenant_today)
    return render(
        "conveyor/today.html",
        leads=leads,
        planned=today.planned_touches(g.tenant, g.membership, clock.now()),
        today=tenant_today,
        in_window=today.in_window,
        touch_form=TouchForm(),
    )


def _win_form(lead) -> WinForm:
    form = WinForm()
    if request.method == "GET":
        form.value.data = major_text(lead.value_minor, g.tenant.currency)
    managers = handoff.account_managers(g.tenant.id)
    form.account_manager_id.choices = [SelectChoice(0, _("The least loaded account manager"))] + [
        SelectChoice(m.user_id, m.user.name) for m in managers
    ]
    return form


@bp.route("/deals/<int:lead_id>/win", methods=["GET", "POST"])
@requires("deals.convert")
def win(lead_id: int):
    lead = services.lead_for_member_or_404(g.membership, lead_id)
    form = _win_form(lead)
    if form.validate_on_submit():
        promises = [
            handoff.PromiseInput(p.text.data, p.discount_percent.data, p.due_on.data)
            for p in form.promises
            if (p.text.data or "").strip()
        ]
        try:
            handoff.win(
                g.membership,
                lead,
                parse_money(form.value.data),
                promises,
                form.account_manager_id.data or None,
            )
        except handoff.AlreadyWon as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
            return redirect_to(url_for("conveyor.today_queue"))
        except services.MoveRefused as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
        else:
            flash(_("Won and handed off with %(num)d promises.", num=len(promises)), "success")
            return redirect_to(url_for("conveyor.today_queue"))
    return render(
        "conveyor/win.html",
        http_status=422 if form.errors else 200,
        lead=lead,
        form=form,
        max_discount=g.tenant.max_discount_percent,
    )
