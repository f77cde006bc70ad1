"""The engine's jobs: the minute tick and the sender. Both are safe to run at once, twice."""

from app.engine import delivery, schedule


def tick() -> dict:
    """Record what is due (unique keys make repeats harmless), then send it."""
    recorded = schedule.tick()
    sent = delivery.deliver_due()
    return {**recorded, **sent}
