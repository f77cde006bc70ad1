"""Run RQ workers with the scheduler, inside the app context.

    python worker.py            # one worker with the scheduler
    python worker.py --burst    # run what is queued (and due), then exit

Start as many as you like against one Redis and one database.
"""

import argparse
import contextlib
import gc
import os
import signal
import threading
import time

import redis
from rq import Worker

from app import clock, create_app, periodic
from app.extensions import db
from app.queue import get_queue

PERIODIC_SECONDS = 60  # how often the list of periodic jobs is walked
RESTART_SECONDS = 5
# RQ restarts its scheduler (which runs retries scheduled with backoff) during the
# worker's maintenance, every ten minutes by default; a scheduler that died with Redis
# then left retries waiting that long. The worker wakes at least every DEQUEUE_SECONDS
# and restarts a dead scheduler within MAINTENANCE_SECONDS.
MAINTENANCE_SECONDS = 20
WORKER_TTL = 45  # RQ waits for a job at most this less 15 seconds


def enqueue_periodic(app, stop: threading.Event) -> None:
    """Walk app.periodic.JOBS every minute, starting now, queueing each period's run.

    Several workers may do this: the job ids name the period and the jobs write
    nothing twice. Living outside Redis, this loop survives Redis being flushed or
    restarted."""
    while not stop.is_set():
        try:
            with app.app_context():
                periodic.enqueue_due(get_queue())
        except Exception:  # noqa: BLE001 - Redis down: try again next minute
            app.logger.exception("could not queue the periodic jobs")
        stop.wait(PERIODIC_SECONDS - clock.now().timestamp() % PERIODIC_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument(
        "--no-periodic", action="store_true", help="do not queue the periodic jobs (app.periodic)"
    )
    args = parser.parse_args(argv)

    app = create_app()
    # As in wsgi.py: what is loaded by now lives as long as the process (and each job's
    # forked child), so the collector's full passes need not walk it. A 100,000-row
    # import spent 1.3 s of its 27 s in full collections without this, 0.05 s with it.
    gc.freeze()
    stop = threading.Event()
    if not args.burst and not args.no_periodic:
        threading.Thread(target=enqueue_periodic, args=(app, stop), daemon=True).start()
    with app.app_context():
        # Each job runs in a forked child: it must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        try:
            while True:
                worker = None
                try:
                    # A Redis client of the worker's own, unused until RQ raises its socket
                    # timeout above the blocking wait for jobs. The shared client's
                    # connections (opened by the ticker) keep redis-py's 5 s default: each
                    # idle wait then timed out and RQ backed off for up to a minute before
                    # it looked at the queue again.
                    connection = redis.Redis.from_url(app.config["REDIS_URL"])
                    worker = _Worker(
                        [app.config["RQ_QUEUE"]],
                        connection=connection,
                        worker_ttl=WORKER_TTL,
                        maintenance_interval=MAINTENANCE_SECONDS,
                    )
                    worker.burst = args.burst
                    worker.work(burst=args.burst, with_scheduler=True)
                except redis.exceptions.RedisError:
                    if args.burst:
                        raise
                    app.logger.exception("the RQ worker lost Redis")
                if args.burst or (worker is not None and worker.stop_requested):
                    break
                # RQ quits on an error outside a job (Redis gone while it checks on one):
                # the ticker lives in this process, so start a new worker.
                app.logger.warning("the RQ worker quit; a new one starts in %s s", RESTART_SECONDS)
                for signum in (signal.SIGINT, signal.SIGTERM):  # RQ's belong to the old one
                    signal.signal(signum, signal.SIG_DFL)
                time.sleep(RESTART_SECONDS)
        finally:
            stop.set()


SCHEDULER_STOP_SECONDS = 5


class _Worker(Worker):
    """An RQ worker that remembers whether it was asked to stop (SIGTERM, Ctrl-C)."""

    stop_requested = False
    burst = False

    def run_maintenance_tasks(self):
        """A burst run queued what was due when it started and leaves soon: it cleans the
        registries but starts no scheduler process (RQ's maintenance would, 20 s into a
        long run, and stopping it at the run's end could race its start; see below)."""
        if self.burst:
            self.clean_registries()
            self.clean_group_registries()
            return
        super().run_maintenance_tasks()

    def stop_scheduler(self):
        """Stop the scheduler process, killing it if SIGTERM does not.

        The scheduler is forked with the worker's own SIGTERM handler and installs its own
        only once it runs: a SIGTERM in between merely asks the child's copy of the worker
        to stop, the scheduler then runs on, and RQ's plain ``join()`` waited for ever
        (seen at the end of burst runs).
        """
        process = self.scheduler._process if self.scheduler else None
        if not (process and process.pid):
            return
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
        process.join(SCHEDULER_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()

    def request_stop(self, signum, frame):
        self.stop_requested = True
        super().request_stop(signum, frame)

    def unsubscribe(self):
        """Stop listening for RQ's commands without waiting out the listener's poll.

        redis-py 8.2's ``PubSubWorkerThread.stop()`` joins the listener, which polls every
        60 s (RQ's choice), so every stopping worker (a burst run's end, a deploy's
        SIGTERM) waited up to a minute. The listener is a daemon thread; a short wait will do.
        """
        if not self.pubsub_thread:
            return
        self.pubsub.unsubscribe()
        try:
            self.pubsub_thread.stop(timeout=1)
        except TypeError:  # redis-py before 8.2: stop() takes no timeout and does not wait
            self.pubsub_thread.stop()
        self.pubsub_thread.join(timeout=1)
        self.pubsub.close()


if __name__ == "__main__":
    main()
