"""Chaos under load: a worker killed mid-batch, Redis and PostgreSQL restarted.

One run on servers of its own (the machine's PostgreSQL and Redis are shared, so
they are never touched): a private PostgreSQL cluster and a private redis-server
(append-only file) on free ports, gunicorn and two ``worker.py``. Posts arrive at
``--rate`` (10 % repeating an earlier key); a 503 or a transport error is sent again
with the same key until it is answered 2xx. While they arrive:

1. SIGKILL one worker (its process group, the job's forked child with it) while it
   builds a batch, and start it again;
2. stop Redis (SIGTERM) and start it again ``--down`` seconds later;
3. stop PostgreSQL (``pg_ctl -m fast``) and start it again ``--down`` seconds later.

Then, once the builder has taken every pending post: every 2xx receipt must be
exactly one lead, and every post that saw a 503 must have been answered 2xx in the end.

    .venv/bin/python benchmarks/chaos.py [--rate 100] [--seconds 40] [--down 2]

Run as root: the private cluster runs as the ``postgres`` user (``runuser``).
"""

import contextlib
import signal
import sys
import threading
import time

import harness as h
import psycopg


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]
    return []


def kill_mid_batch(proc: h.Proc, db: h.Database, tenant_id: int) -> str:
    """SIGKILL the worker while its job's child runs and posts are pending."""

    def building() -> bool:
        with contextlib.suppress(psycopg.Error):
            return bool(children(proc.pid)) and h.pending_posts(db, tenant_id) > 0
        return False

    h.wait_for(building, 20, "the worker to be building", 0.02)
    horse = children(proc.pid)
    proc.signal(signal.SIGKILL)
    proc.popen.wait(10)
    return f"killed worker {proc.pid} with its job's child {horse} while posts were pending"


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--rate", type=float, default=100, help="posts a second")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--down", type=float, default=2, help="seconds each server is down")
    args = parser.parse_args()
    events: list[str] = []
    with (
        h.workdir("chaos", args.ref) as root,
        h.PrivatePostgres(root) as pg,
        h.PrivateRedis(root) as redis,
        h.Database("chaos", pg.dsn) as db,
    ):
        env = h.app_env(db.dsn, redis.url)
        workspace = h.set_up_workspace(env)
        tenant_id = workspace["tenant_id"]
        web = h.gunicorn("web", "wsgi:app", env, root)
        workers = [h.worker(env, root, f"worker-{n}") for n in (1, 2)]
        try:
            web.start()
            for proc in workers:
                proc.start(health=None)
            posts = h.intake_posts(workspace["path"], int(args.rate * args.seconds), 0.1)
            answers = [h.Answer(p) for p in posts]
            load = threading.Thread(
                target=h.send,
                args=(web.port, posts, 16, args.rate, args.seconds + 120, 60, 10, answers),
                daemon=True,
            )
            started = time.monotonic()
            load.start()

            def at(second: float, what: str) -> None:
                time.sleep(max(0.0, started + second - time.monotonic()))
                events.append(f"{time.monotonic() - started:5.1f} s: {what}")
                h.log(events[-1])

            at(args.seconds * 0.15, "kill a worker mid-batch")
            events.append(kill_mid_batch(workers[0], db, tenant_id))
            workers[0] = h.worker(env, root, "worker-1b").start(health=None)
            at(args.seconds * 0.4, "stop Redis")
            redis.stop()
            at(args.seconds * 0.4 + args.down, "start Redis")
            redis.start()
            at(args.seconds * 0.7, "stop PostgreSQL")
            pg.stop("fast")
            at(args.seconds * 0.7 + args.down, "start PostgreSQL")
            pg.start()
            load.join(args.seconds + 240)
            h.log("load done; waiting for the builder")
            drained = h.wait_built(db, tenant_id, 240)
            check = h.check_leads(db, tenant_id, answers)
            errors = {p.name: p.log_count("Traceback") for p in [web, *workers]}
        finally:
            for proc in [*workers, web]:
                proc.stop()
    retried = [a for a in answers if any(s in h.RETRY for s in a.statuses)]
    retried_ok = sum(1 for a in retried if a.status in (200, 202))
    statuses: dict = {}
    for a in answers:
        for s in a.statuses:
            statuses[s] = statuses.get(s, 0) + 1
    passed = (
        not check["lost"]
        and not check["duplicated"]
        and not check["split"]
        and not check["unanswered"]
        and retried_ok == len(retried)
    )
    h.report(
        [
            h.Figure(
                "chaos",
                h.command(),
                f"{len(posts):,} posts, answers {statuses}: {check['receipts']:,} receipts, "
                f"{check['lost']} lost, {check['duplicated'] + check['split']} duplicated; "
                f"{len(retried)} posts saw a 503 or an error, {retried_ok} of them 2xx on retry; "
                f"inbox drained {drained:.1f} s after the load",
                "",
                "",
                "every 2xx one lead; every 503 retried to 2xx",
                passed,
            )
        ],
        [*events, f"Tracebacks in the logs: {errors} (expected while the servers are down)."],
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
