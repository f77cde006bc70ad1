"""Source quality, partner reports, and the conflicts list (owner only, but the partner link)."""

import io
import secrets
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, abort, flash, g, render_template, request, url_for
from flask_babel import gettext as _

from app import clock, csvfile
from app.extensions import db, limiter
from app.htmx import local_path_or, redirect_to, render
from app.models import Conflict, ConflictKind, ConflictStatus, Lead, LostReason, Source
from app.money import major_text
from app.policy import requires
from app.radar import bp, conflicts, funnel, stats
from app.tenancy import ALL_TENANTS, get_for_tenant_or_404

PERIODS = (7, 30, 90)
# A custom period: at most two years (about 105 weekly trend points), within dates a
# workspace can have leads on. Longer spans cost seconds per request and help nobody.
MAX_PERIOD_DAYS = 730
EARLIEST_DAY = date(2000, 1, 1)


def _period() -> tuple[datetime, datetime, dict]:
    """[start, end) in UTC from ?days= or ?start=&end= (workspace dates, end inclusive)."""
    zone = ZoneInfo(g.tenant.timezone)
    today = clock.workspace_today(g.tenant)
    try:
        first = date.fromisoformat(request.args["start"])
        last = date.fromisoformat(request.args["end"])
        days = None
    except (KeyError, ValueError):
        days = request.args.get("days", 30, type=int)
        days = days if days in PERIODS else 30
        first, last = today - timedelta(days=days - 1), today
    if last < first:
        first, last = last, first
    error = None
    latest = date(today.year + 1, 12, 31)
    if first < EARLIEST_DAY or last > latest:
        error = _(
            "Pick dates between %(earliest)s and %(latest)s.",
            earliest=EARLIEST_DAY.isoformat(),
            latest=latest.isoformat(),
        )
        days, first, last = 30, today - timedelta(days=29), today
    elif (last - first).days >= MAX_PERIOD_DAYS:
        error = _("A period is two years at most: this one now starts two years before its end.")
        first = last - timedelta(days=MAX_PERIOD_DAYS - 1)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end, {"days": days, "first": first, "last": last, "error": error}


def _trend_source() -> Source | None:
    """The source chosen for the trend (?source=ID of this workspace), or None: all."""
    wanted = request.args.get("source", type=int)
    if not wanted:
        return None
    return db.session.scalar(
        sa.select(Source).where(Source.id == wanted, Source.tenant_id == g.tenant.id)
    )


@bp.route("/radar")
@requires("radar.view")
def sources():
    start, end, period = _period()
    figures = stats.source_figures(g.tenant, start, end)
    trend_source = _trend_source()
    return render(
        "radar/sources.html",
        figures=figures,
        period=period,
        periods=PERIODS,
        trend=stats.trend(
            g.tenant,
            period["first"],
            period["last"],
            start,
            end,
            trend_source.id if trend_source else None,
        ),
        trend_source=trend_source,
        lost_reasons=list(LostReason),
    )


@bp.route("/radar/funnel", endpoint="funnel")
@requires("radar.view")
def funnel_view():
    """The funnel by stage and by person: its own request, loaded into the radar page
    once the page is shown (a whole page without htmx)."""
    start, end, period = _period()
    return render(
        "radar/funnel.html",
        "radar/_funnel.html",
        period=period,
        stages=funnel.by_stage(g.tenant, start, end),
        people=funnel.by_person(g.tenant, start, end),
    )


def _money(minor: int | None) -> str:
    return "" if minor is None else major_text(minor, g.tenant.currency)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _source_rows(start, end):
    yield [
        "source",
        "leads",
        "spam",
        "junk",
        "unreachable",
        "qualified",
        "won",
        "revenue",
        "cost_per_lead",
        "cost_per_qualified_lead",
        "cost_per_sale",
        "median_hours_to_first_touch",
    ]
    for row in stats.source_figures(g.tenant, start, end):
        yield [
            row.source.name,
            row.leads,
            row.spam,
            row.junk,
            row.unreachable,
            row.qualified,
            row.won,
            _money(row.revenue_minor),
            _money(row.source.cost_per_lead_minor),
            _money(row.cost_per(row.qualified)),
            _money(row.cost_per(row.won)),
            "" if row.median_first_touch_hours is None else f"{row.median_first_touch_hours:.1f}",
        ]


def _trend_rows(start, end, period):
    source = _trend_source()
    yield ["from", "to", "leads", "qualified", "junk", "won", "qualified_pct", "junk_pct"]
    for point in stats.trend(
        g.tenant, period["first"], period["last"], start, end, source.id if source else None
    ):
        yield [
            point.first.isoformat(),
            point.last.isoformat(),
            point.leads,
            point.qualified,
            point.junk,
            point.won,
            _share(point.share(point.qualified)),
            _share(point.share(point.junk)),
        ]


def _stage_rows(start, end):
    yield ["stage", "entered", "went_on", "conversion_pct", "median_days_in_stage"]
    for row in funnel.by_stage(g.tenant, start, end):
        yield [
            row.stage.name,
            row.entered,
            row.went_on,
            _share(row.conversion),
            _days(row.median_days),
        ]


def _person_rows(start, end):
    yield [
        "person",
        "leads",
        "qualified",
        "won",
        "stage_stays",
        "went_on",
        "conversion_pct",
        "median_days_in_stage",
    ]
    for row in funnel.by_person(g.tenant, start, end):
        yield [
            row.name,
            row.leads,
            row.qualified,
            row.won,
            row.stays,
            row.went_on,
            _share(row.conversion),
            _days(row.median_days),
        ]


CSV_TABLES = {"sources", "trend", "stages", "people"}


@bp.route("/radar/sources.csv")
@requires("radar.view")
def sources_csv():
    """One of the radar page's tables as CSV: ?table=sources (default), trend, stages, people."""
    start, end, period = _period()
    table = request.args.get("table", "sources")
    if table not in CSV_TABLES:
        abort(404)
    if table == "trend":
        rows = _trend_rows(start, end, period)
    elif table == "stages":
        rows = _stage_rows(start, end)
    elif table == "people":
        rows = _person_rows(start, end)
    else:
        rows = _source_rows(start, end)
    out = io.StringIO()
    csvfile.writer(out).writerows(rows)
    name = "source-quality" if table == "sources" else f"radar-{table}"
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@bp.route("/conflicts")
@requires("radar.view")
def conflict_list():
    kind, status = request.args.get("kind") or None, request.args.get("status") or None
    page = max(1, request.args.get("page", 1, type=int))
    rows, has_more = conflicts.listing(g.tenant, kind, status, page)
    users, source_names = conflicts.people_and_sources(rows)
    return render(
        "radar/conflicts.html",
        conflicts=rows,
        has_more=has_more,
        page_number=page,
        kind=kind,
        status_filter=status,
        kinds=list(ConflictKind),
        statuses=list(ConflictStatus),
        users=users,
        source_names=source_names,
        deals=conflicts.deals_named(rows),
    )


@bp.route("/conflicts/<int:conflict_id>", methods=["GET", "POST"])
@requires("radar.view")
def conflict(conflict_id: int):
    row = get_for_tenant_or_404(Conflict, conflict_id)
    if request.method == "POST":
        try:
            status = ConflictStatus(request.form.get("status", ""))
        except ValueError:
            abort(400)
        conflicts.update(row, status, request.form.get("note", ""))
        flash(_("Conflict updated."), "success")
        return redirect_to(url_for("radar.conflict", conflict_id=row.id))
    users, source_names = conflicts.people_and_sources([row])
    source = db.session.get(Source, row.source_id) if row.source_id else None
    return render(
        "radar/conflict.html",
        conflict=row,
        lead=db.session.get(Lead, row.lead_id) if row.lead_id else None,
        users=users,
        source_names=source_names,
        source=source,
        statuses=list(ConflictStatus),
    )


@bp.route("/conflicts/monthly")
@requires("radar.view")
def conflicts_monthly():
    today = clock.workspace_today(g.tenant)
    year = request.args.get("year", today.year, type=int)
    month = request.args.get("month", today.month, type=int)
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        abort(400)
    return render(
        "radar/monthly.html",
        report=conflicts.monthly(g.tenant, year, month),
        year=year,
        month=month,
    )


@bp.route("/sources/<int:source_id>/partner-link", methods=["POST"])
@requires("radar.view")
def partner_link(source_id: int):
    source = get_for_tenant_or_404(Source, source_id)
    source.partner_report_token = secrets.token_urlsafe(24)
    db.session.commit()
    flash(_("A new partner link is ready; any older one stopped working."), "success")
    return redirect_to(
        local_path_or(url_for("sources.connect", source_id=source.id), request.form.get("next"))
    )


@bp.route("/sources/<int:source_id>/partner-link/revoke", methods=["POST"])
@requires("radar.view")
def revoke_partner_link(source_id: int):
    source = get_for_tenant_or_404(Source, source_id)
    source.partner_report_token = None
    db.session.commit()
    flash(_("The partner link no longer works."), "info")
    return redirect_to(url_for("sources.connect", source_id=source.id))


@bp.route("/partner/<token>")
@limiter.limit("60/minute")
def partner_report(token: str):
    """What a partner may see of the leads they send: counts and verdicts, nothing else."""
    source = (
        db.session.scalar(
            sa.select(Source)
            .where(Source.partner_report_token == token)
            .execution_options(**ALL_TENANTS)
        )
        if token
        else None
    )
    if source is None:
        abort(404)

    # As for the payouts: leads flagged (captured while the source was paused, or while the
    # workspace's billing had lapsed) are not the partner's.
    counted = sa.and_(
        Lead.tenant_id == source.tenant_id, Lead.source_id == source.id, Lead.flagged.is_(False)
    )
    leads, qualified = db.session.execute(
        sa.select(sa.func.count(Lead.id), stats.count_if(Lead.qualified_at.is_not(None)))
        .where(counted)
        .execution_options(**ALL_TENANTS)
    ).one()
    rejections = db.session.execute(
        sa.select(Lead.lost_reason, sa.func.count(Lead.id))
        .where(counted, Lead.lost_reason.is_not(None))
        .group_by(Lead.lost_reason)
        .execution_options(**ALL_TENANTS)
    ).all()
    return render_template(
        "radar/partner.html",
        source=source,
        leads=leads,
        qualified=qualified or 0,
        rejections=rejections,
    )
