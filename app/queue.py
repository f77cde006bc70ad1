"""Redis connection and the RQ queue the web app hands work to."""

import redis
from flask import current_app
from rq import Queue


def get_redis() -> redis.Redis:
    """A plain client for the configured Redis (one per app, reused)."""
    client = current_app.extensions.get("conveyor_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["conveyor_redis"] = client
    return client


def get_queue() -> Queue:
    return Queue(current_app.config["RQ_QUEUE"], connection=get_redis())


def enqueue(func: str, *args, **kwargs):
    """Queue a job by dotted path. Call after the transaction that it reads has committed."""
    return get_queue().enqueue(func, *args, **kwargs)


def limiter_storage_uri(redis_url: str) -> str:
    """Flask-Limiter spells a unix-socket Redis URL differently from redis-py."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url
