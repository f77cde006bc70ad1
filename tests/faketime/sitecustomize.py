"""Python under Debian's faketime: ``dev.py test`` puts this folder on PYTHONPATH.

With ``faketime -f +400d``, libfaketime 0.9.10 moves the monotonic clock too, and
CPython's timed lock waits (``sem_clockwait`` on that clock, which libfaketime does not
wrap) then wait 400 days: every ``Event.wait(timeout)`` hangs. So the run leaves the
monotonic clock alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``); but then libfaketime's
``clock_nanosleep`` rejects CPython's absolute monotonic deadline, and ``time.sleep``
fails with EINVAL. This module makes ``time.sleep`` wait in ``select`` instead, in every
Python process of the run (the test process and the workers it starts). It changes
nothing when the process is not under faketime.
"""

import os
import select
import time

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
