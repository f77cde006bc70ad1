"""The one clock: every piece of application code reads the time from here.

Tests pin it with time-machine, which moves ``datetime.now``; PostgreSQL's ``now()``
and Redis's clock do not move with it, so code never asks them for the time. A
function that is given ``now`` uses that value for everything it writes.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    return datetime.now(UTC)


def local_now(timezone: str, at: datetime | None = None) -> datetime:
    """The moment ``at`` (by default now) on the wall clock of ``timezone``."""
    return (at or now()).astimezone(ZoneInfo(timezone))


def today(timezone: str, at: datetime | None = None) -> date:
    """The calendar date in ``timezone`` at ``at`` (by default now)."""
    return local_now(timezone, at).date()


def workspace_today(tenant, at: datetime | None = None) -> date:
    """The workspace's "today": the date on its wall clock. Every page, job and rule
    that asks what day it is for a workspace asks here."""
    return today(tenant.timezone, at)
