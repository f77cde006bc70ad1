"""Where an intake post's CPU goes: posts through the app in this process, timed by part.

On a fresh database (the machine's PostgreSQL, as ``intake.py``), ``--posts`` JSON posts
(10 % repeats) are passed to the app's WSGI callable one at a time, with no HTTP server;
the process's CPU time is summed per part (Flask's hooks, the source's lookup, judging,
the claim, the commit, the builder's wake) and the PostgreSQL backends' CPU per post is
read from /proc. The same posts then go through the bare baseline (``bare_app.py``).
``--cprofile FILE`` also writes a cProfile of the app's run (its figures are inflated by
the profiler; the table's are not).

    .venv/bin/python benchmarks/intake_profile.py [--posts 2000] [--ref worktree]
"""

import collections
import functools
import os
import sys
import time

import harness as h
import psutil
import psycopg
from werkzeug.test import EnvironBuilder

WARMUP = 300


def backends_cpu(db: h.Database) -> float:
    """CPU seconds of this database's PostgreSQL backends (but the asking one)."""
    pids = [
        row[0]
        for row in db.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    ]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run(app, posts: list[h.Request]) -> collections.Counter:
    statuses: collections.Counter = collections.Counter()

    def start_response(status, _headers, _exc_info=None):
        statuses[status] += 1

    for post in posts:
        environ = EnvironBuilder(
            path=post.path, method="POST", data=post.body, headers=post.headers
        ).get_environ()
        for _ in app(environ, start_response):
            pass
    return statuses


def timed(parts: collections.Counter, label: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            parts[label] += time.process_time() - started

    return wrapper


def measure(app, db: h.Database, posts: list[h.Request], profile: str | None = None) -> dict:
    """CPU per post of this process and of PostgreSQL (after a warm-up the caller ran)."""
    postgres = backends_cpu(db)
    started = time.process_time()
    if profile:
        import cProfile

        with cProfile.Profile() as profiler:
            statuses = run(app, posts)
        profiler.dump_stats(profile)
    else:
        statuses = run(app, posts)
    return {
        "cpu": (time.process_time() - started) / len(posts),
        "postgres": (backends_cpu(db) - postgres) / len(posts),
        "statuses": dict(statuses),
    }


def instrument(app, parts: collections.Counter) -> collections.Counter:
    """Time the parts of ``receive`` and each app-wide hook (names as the code has them);
    the SQL statements sent are counted in the counter returned."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.intake import fields, keys, services, views

    for module, name in (
        (services, "find_source"),
        (services, "seconds_until_allowed"),
        (services, "raw_item"),
        (services, "_claim"),
        (views, "_read_body"),
        (fields, "parse_body"),
        (fields, "judge"),
        (keys, "take_turns"),
        (services, "wake"),
    ):
        setattr(module, name, timed(parts, f"{module.__name__}.{name}", getattr(module, name)))
    db.session.commit = timed(parts, "db.session.commit", db.session.commit)
    view = app.view_functions["intake.receive"]
    app.view_functions["intake.receive"] = timed(parts, "the view (all of the above)", view)
    for kind in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs"):
        for key, hooks in getattr(app, kind).items():
            getattr(app, kind)[key] = [
                timed(parts, f"{kind.removesuffix('_funcs')}: {getattr(f, '__qualname__', f)}", f)
                for f in hooks
            ]
    session = app.session_interface
    session.open_session = timed(parts, "session: open", session.open_session)
    session.save_session = timed(parts, "session: save", session.save_session)
    statements = collections.Counter()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", lambda *_a, **_k: statements.update(["n"]))
    return statements


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--cprofile", help="write a cProfile of the app's run here")
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("intake-profile", args.ref), h.Database("profile") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        app = h.make_app(env)
        parts: collections.Counter = collections.Counter()
        statements = instrument(app, parts)
        posts = h.intake_posts(workspace["path"], args.posts + WARMUP)
        run(app, posts[:WARMUP])
        parts.clear()
        statements.clear()
        conveyor = measure(app, db, posts[WARMUP:], args.cprofile)
        per_post = statements["n"] / args.posts
        h.flush_redis()
    with h.Database("profile_bare") as bare_db:
        with psycopg.connect(bare_db.dsn, autocommit=True) as conn:
            conn.execute(h.BARE_SCHEMA)
        os.environ["BENCH_BARE_DSN"] = bare_db.dsn
        import bare_app

        posts = h.intake_posts("/in/bench", args.posts + WARMUP)
        run(bare_app.app, posts[:WARMUP])
        bare = measure(bare_app.app, bare_db, posts[WARMUP:])
        bare_app.connection().close()
    h.log(
        f"Conveyor: {1000 * conveyor['cpu']:.3f} ms CPU per post in this process, PostgreSQL "
        f"{1000 * conveyor['postgres']:.3f} ms, {per_post:.2f} SQL statements per post; "
        f"{conveyor['statuses']}"
    )
    h.log(
        f"bare: {1000 * bare['cpu']:.3f} ms CPU per post in this process, PostgreSQL "
        f"{1000 * bare['postgres']:.3f} ms; {bare['statuses']}"
    )
    for label, seconds in parts.most_common():
        print(f"  {1000 * seconds / args.posts:7.3f} ms  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
