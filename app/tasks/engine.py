"""The engine's jobs: the minute tick and the sender. Both are safe to run at once, twice."""

import time

from app.engine import delivery, schedule

SEND_BUDGET_SECONDS = 50  # keep sending until the next minute's tick is near


def tick() -> dict:
    """Record what is due (unique keys make repeats harmless), then send it in batches."""
    recorded = schedule.tick()
    totals = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    deadline = time.monotonic() + SEND_BUDGET_SECONDS
    while time.monotonic() < deadline:
        counts = delivery.deliver_due()
        for name, count in counts.items():
            totals[name] += count
        if sum(counts.values()) < delivery.BATCH:
            break
    return {**recorded, **totals}
