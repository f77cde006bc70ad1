"""The bot's jobs: act on a received update, and sweep up any the queue lost."""

from app.telegram import updates


def process_update(update_row_id: int) -> bool:
    return updates.process(update_row_id)


def process_pending() -> int:
    """Updates stored while Redis or the workers were away (safe beside the jobs)."""
    return sum(1 for row_id in updates.pending_ids() if updates.process(row_id))
