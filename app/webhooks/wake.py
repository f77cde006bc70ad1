"""Waking the delivery job after a commit that wrote events: one queued run at a time.

Without Redis the events wait for the periodic run (``app.periodic``), a minute at most.
"""

from flask import current_app, has_app_context
from redis.exceptions import RedisError

from app.queue import enqueue, get_redis

DELIVER_JOB = "app.tasks.webhooks.deliver"
FLAG_SECONDS = 60


def _flag() -> str:
    return f"{current_app.config['RQ_QUEUE']}:webhooks-queued"


def wake() -> None:
    if not has_app_context():
        return
    try:
        if get_redis().set(_flag(), 1, nx=True, ex=FLAG_SECONDS):
            enqueue(DELIVER_JOB, result_ttl=600, failure_ttl=86400)
    except RedisError:
        current_app.logger.warning("could not wake the webhook job; the periodic run will")


def starting() -> None:
    try:
        get_redis().delete(_flag())
    except RedisError:
        current_app.logger.warning("could not clear the webhook job's flag", exc_info=True)
