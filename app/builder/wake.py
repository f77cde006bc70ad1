"""Waking the lead builder as posts arrive: at most one run waits in the queue at a time.

A post's transaction commits first, then ``wake`` sets a flag in Redis; only the
post that sets it queues a run. The run clears the flag before it claims anything,
so a post committed after that queues the next run, and a burst of posts becomes
one pending run. When Redis is unreachable the post is kept all the same: the
periodic sweep (``app.periodic``) builds whatever is pending.
"""

from flask import current_app
from redis.exceptions import RedisError

from app.queue import enqueue, get_redis

BUILD_JOB = "app.tasks.leads.build_leads"
# A queued run whose flag outlives this is presumed lost (a flushed queue): queue again.
FLAG_SECONDS = 60


def _flag() -> str:
    return f"{current_app.config['RQ_QUEUE']}:build-leads-queued"


def wake() -> None:
    """Make sure a run of the lead builder is queued. Call after the commit."""
    try:
        if get_redis().set(_flag(), 1, nx=True, ex=FLAG_SECONDS):
            enqueue(BUILD_JOB, result_ttl=600, failure_ttl=86400)
    except RedisError:
        current_app.logger.warning(
            "could not wake the lead builder; the periodic sweep will", exc_info=True
        )


def starting() -> None:
    """A run is starting: posts committed from now on queue the next one."""
    try:
        get_redis().delete(_flag())
    except RedisError:
        current_app.logger.warning("could not clear the lead builder's flag", exc_info=True)
