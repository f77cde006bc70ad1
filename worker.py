"""Run RQ workers with the scheduler, inside the app context.

    python worker.py            # one worker with the scheduler
    python worker.py --burst    # run what is queued (and due), then exit

Start as many as you like against one Redis and one database.
"""

import argparse
import os
import threading
import time
from datetime import UTC, datetime

from rq import Worker

from app import create_app
from app.extensions import db
from app.queue import get_queue, get_redis

TICK_SECONDS = 60


def enqueue_ticks(app, stop: threading.Event) -> None:
    """Queue the engine's tick once a minute and billing's check once a day.

    Several workers may do this: the job ids name the minute and the day, and the
    jobs write nothing twice. Living outside Redis, this loop survives Redis being
    flushed or restarted."""
    while not stop.is_set():
        minute = datetime.now(UTC).strftime("%Y%m%d%H%M")
        try:
            with app.app_context():
                queue = get_queue()
                if queue.fetch_job(f"engine-tick-{minute}") is None:
                    queue.enqueue(
                        "app.tasks.engine.tick",
                        job_id=f"engine-tick-{minute}",
                        result_ttl=3600,
                        failure_ttl=86400,
                    )
        except Exception:  # noqa: BLE001 - Redis down: try again next minute
            app.logger.exception("could not queue the engine tick")
        stop.wait(TICK_SECONDS - time.time() % TICK_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--no-ticks", action="store_true", help="do not queue the engine tick")
    args = parser.parse_args(argv)

    app = create_app()
    stop = threading.Event()
    if not args.burst and not args.no_ticks:
        threading.Thread(target=enqueue_ticks, args=(app, stop), daemon=True).start()
    with app.app_context():
        # Each job runs in a forked child: it must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        worker = Worker([get_queue()], connection=get_redis())
        try:
            worker.work(burst=args.burst, with_scheduler=True)
        finally:
            stop.set()


if __name__ == "__main__":
    main()
