"""Source quality and funnel figures for a period, in a handful of grouped queries."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import InboxItem, InboxStatus, Lead, LostReason, Source, Tenant


def count_if(condition):
    """How many rows of a group meet ``condition`` (``count(*) FILTER (WHERE ...)``)."""
    return sa.func.count().filter(condition)


@dataclass
class SourceFigures:
    source: Source
    leads: int = 0
    spam: int = 0
    junk: int = 0
    unreachable: int = 0
    qualified: int = 0
    won: int = 0
    revenue_minor: int = 0
    paid_leads: int = 0  # captured while active: what the partner is paid for
    median_first_touch_hours: float | None = None
    lost_reasons: dict[str, int] = field(default_factory=dict)

    def share(self, count: int) -> float | None:
        return count / self.leads if self.leads else None

    @property
    def cost_minor(self) -> int:
        return self.paid_leads * self.source.cost_per_lead_minor

    def cost_per(self, count: int) -> int | None:
        return round(self.cost_minor / count) if count else None


def source_figures(tenant: Tenant, start: datetime, end: datetime) -> list[SourceFigures]:
    """Every source's figures for leads that arrived in [start, end)."""
    sources = db.session.scalars(
        sa.select(Source).where(Source.tenant_id == tenant.id).order_by(Source.name)
    ).all()
    figures = {source.id: SourceFigures(source) for source in sources}
    in_period = sa.and_(
        Lead.tenant_id == tenant.id,
        Lead.created_at >= start,
        Lead.created_at < end,
        Lead.source_id.is_not(None),
    )

    totals = db.session.execute(
        sa.select(
            Lead.source_id,
            sa.func.count(Lead.id),
            count_if(Lead.lost_reason == LostReason.JUNK.value),
            count_if(Lead.lost_reason == LostReason.UNREACHABLE.value),
            count_if(Lead.qualified_at.is_not(None)),
            count_if(Lead.won_at.is_not(None)),
            sa.func.coalesce(
                sa.func.sum(sa.case((Lead.won_at.is_not(None), Lead.value_minor), else_=0)), 0
            ),
            count_if(Lead.flagged.is_(False)),
        )
        .where(in_period)
        .group_by(Lead.source_id)
    )
    for source_id, leads, junk, unreachable, qualified, won, revenue, paid in totals:
        if source_id in figures:
            row = figures[source_id]
            row.leads, row.junk, row.unreachable = leads, junk or 0, unreachable or 0
            row.qualified, row.won, row.revenue_minor, row.paid_leads = (
                qualified or 0,
                won or 0,
                revenue,
                paid or 0,
            )
    spam = db.session.execute(
        sa.select(InboxItem.source_id, sa.func.count(InboxItem.id))
        .where(
            InboxItem.tenant_id == tenant.id,
            InboxItem.status == InboxStatus.SPAM,
            InboxItem.received_at >= start,
            InboxItem.received_at < end,
        )
        .group_by(InboxItem.source_id)
    )
    for source_id, count in spam:
        if source_id in figures:
            figures[source_id].spam = count
    reasons = db.session.execute(
        sa.select(Lead.source_id, Lead.lost_reason, sa.func.count(Lead.id))
        .where(in_period, Lead.lost_reason.is_not(None))
        .group_by(Lead.source_id, Lead.lost_reason)
    )
    for source_id, reason, count in reasons:
        if source_id in figures:
            figures[source_id].lost_reasons[reason] = count
    hours = sa.extract("epoch", Lead.first_touch_at - Lead.created_at) / 3600
    medians = db.session.execute(
        sa.select(Lead.source_id, sa.func.percentile_cont(0.5).within_group(hours))
        .where(in_period, Lead.first_touch_at.is_not(None))
        .group_by(Lead.source_id)
    )
    for source_id, median in medians:
        if source_id in figures:
            figures[source_id].median_first_touch_hours = float(median)
    return list(figures.values())


@dataclass
class TrendPoint:
    first: date
    last: date
    leads: int = 0
    qualified: int = 0
    junk: int = 0
    won: int = 0

    def share(self, count: int) -> float | None:
        return count / self.leads if self.leads else None


def _local_day(column, zone: str):
    """The calendar day of ``column`` in the workspace's timezone, as SQL."""
    return sa.func.date(sa.func.timezone(zone, column))


def trend(
    tenant: Tenant, first: date, last: date, start: datetime, end: datetime, source_id=None
) -> list[TrendPoint]:
    """Leads and verdicts per day (periods up to two weeks) or per week, oldest first.

    Leads are counted on the day they arrived; their verdicts count there too, so a
    recent week's qualified share still grows as leads are judged.
    """
    span = (last - first).days + 1
    step = 1 if span <= 14 else 7
    points = []
    day = first
    while day <= last:
        points.append(TrendPoint(day, min(day + timedelta(days=step - 1), last)))
        day += timedelta(days=step)
    day_column = _local_day(Lead.created_at, tenant.timezone)

    query = (
        sa.select(
            day_column,
            sa.func.count(Lead.id),
            count_if(Lead.qualified_at.is_not(None)),
            count_if(Lead.lost_reason == LostReason.JUNK.value),
            count_if(Lead.won_at.is_not(None)),
        )
        .where(
            Lead.tenant_id == tenant.id,
            Lead.created_at >= start,
            Lead.created_at < end,
            Lead.source_id.is_not(None),
        )
        .group_by(day_column)
    )
    if source_id:
        query = query.where(Lead.source_id == source_id)
    for day_value, leads, qualified, junk, won in db.session.execute(query):
        if isinstance(day_value, str):
            day_value = date.fromisoformat(day_value)
        index = (day_value - first).days // step
        if 0 <= index < len(points):
            point = points[index]
            point.leads += leads
            point.qualified += qualified or 0
            point.junk += junk or 0
            point.won += won or 0
    return points
