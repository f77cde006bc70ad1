"""The lead builder's job: woken as posts arrive, and run by the periodic sweep."""

import time

from app.builder import inbox, wake

# A run under a steady stream of posts hands over to the next one before RQ's timeout.
RUN_SECONDS = 60


def build_leads() -> int:
    """Build every pending post into its lead; safe to run at once, twice.

    Returns the number of posts taken (built, or left in the inbox with their reason).
    """
    wake.starting()
    deadline = time.monotonic() + RUN_SECONDS
    taken = 0
    while claimed := inbox.build_pending():
        taken += claimed
        if time.monotonic() > deadline:
            wake.wake()  # more may be waiting: the next run continues
            break
    return taken
