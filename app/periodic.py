"""The one list of periodic jobs. ``worker.py`` walks it; a job in no list never runs.

Each entry is queued once per period under a job id that names the period, so
several workers queue it once, a worker that starts mid-period queues the current
period's run within a minute (a deploy never waits a day for a daily job), and a
flushed or restarted Redis only means the current period is queued again. Every
job here must therefore be safe to run twice and concurrently.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from rq import Retry

from app import clock


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    func: str  # dotted path of the callable the worker runs, taking no arguments
    retry_after: tuple[int, ...] = ()  # seconds between tries of a failed run

    def period(self, at: datetime) -> int:
        """The number of the period that ``at`` falls in (periods counted from the epoch)."""
        return int(at.timestamp() // self.every.total_seconds())

    def job_id(self, at: datetime) -> str:
        return f"periodic-{self.name}-{self.period(at)}"

    @property
    def keep_for(self) -> int:
        """Seconds a finished run's record stays in Redis: past the end of its period."""
        return int(max(self.every * 2, timedelta(hours=1)).total_seconds())


JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("engine-tick", timedelta(minutes=1), "app.tasks.engine.tick"),
    # Posts wake the lead builder as they arrive; this builds what waited while no worker ran.
    PeriodicJob("build-leads", timedelta(minutes=1), "app.tasks.leads.build_leads"),
    # Updates wake a job as they arrive; this acts on any stored while the queue was away.
    PeriodicJob("telegram-updates", timedelta(minutes=1), "app.tasks.telegram.process_pending"),
    # Commits wake webhook delivery; this sends retries as they fall due.
    PeriodicJob("webhooks", timedelta(minutes=1), "app.tasks.webhooks.deliver"),
    PeriodicJob("webhooks-overdue", timedelta(hours=1), "app.tasks.webhooks.touch_overdue"),
    PeriodicJob(
        "billing-check",
        timedelta(days=1),
        "app.tasks.billing.check_trials",
        retry_after=(60, 600, 3600),  # a failed daily run is not left for tomorrow
    ),
)


def enqueue_due(queue, at: datetime | None = None) -> list[str]:
    """Queue each job's run for the current period unless it is already known to Redis.

    Returns the ids queued now. Two workers racing here may both queue one id: RQ keeps
    one job under an id, and the jobs themselves are safe to run twice.
    """
    at = at or clock.now()
    queued = []
    for job in JOBS:
        job_id = job.job_id(at)
        if queue.fetch_job(job_id) is None:
            queue.enqueue(
                job.func,
                job_id=job_id,
                result_ttl=job.keep_for,
                failure_ttl=job.keep_for,
                description=f"periodic: {job.name}",
                retry=Retry(max=len(job.retry_after), interval=list(job.retry_after))
                if job.retry_after
                else None,
            )
            queued.append(job_id)
    return queued
