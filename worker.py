"""Run RQ workers with the scheduler, inside the app context.

    python worker.py            # one worker with the scheduler
    python worker.py --burst    # run what is queued (and due), then exit

Start as many as you like against one Redis and one database.
"""

import argparse
import os

from rq import Worker

from app import create_app
from app.extensions import db
from app.queue import get_queue, get_redis


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args(argv)

    app = create_app()
    with app.app_context():
        # Each job runs in a forked child: it must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        worker = Worker([get_queue()], connection=get_redis())
        worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()
