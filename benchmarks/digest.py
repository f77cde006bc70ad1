"""The engine's minute tick on the morning every workspace's digest is due.

One run on a fresh database: ``--workspaces`` workspaces (made by the workspace
services, one owner for all: argon2 once) with ``--clients`` clients each, made by the
app's builder as the clients import makes them (account phase, owned by the owner,
due to be touched from three days ago to three days on: a seventh of them each day),
every workspace's digest hour set to the hour of the tick through ``update_settings``.
Then, in a process of its own (so that its memory is the tick's): the same hour's ticks
of the three days before (the outbox's history, then ``ANALYZE``, as a live database
has its statistics), and ``schedule.tick(now)`` as the worker's engine job runs it,
twice: the first records the day, the second must write nothing (unique keys).

    .venv/bin/python benchmarks/digest.py [--workspaces 200] [--clients 500]
"""

import json
import subprocess
import sys
from datetime import UTC, datetime

import harness as h

TARGET_S = 5.0
TICK = r"""
import json, resource, sys, time
from datetime import datetime, timedelta
import sqlalchemy as sa
from app import create_app
from app.engine import schedule
from app.extensions import db
app = create_app()
now = datetime.fromisoformat(sys.argv[1])
with app.app_context():
    history = [schedule.tick(now - timedelta(days=d))["rows"] for d in (3, 2, 1)]
    db.session.execute(sa.text("ANALYZE outbox_message"))
    db.session.commit()
runs = []
for _ in range(2):
    with app.app_context():
        started = time.perf_counter()
        result = schedule.tick(now)
        runs.append({**result, "s": time.perf_counter() - started})
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"runs": runs, "rss_mb": rss, "history": history}))
"""


def seed(env: dict, workspaces: int, clients: int, hour: int) -> list[int]:
    app = h.make_app(env)
    from app.extensions import db
    from app.workspace import services

    with app.app_context():
        owner = services.create_user("digest-owner@bench.example.com", "Owner", h.PASSWORD)
        ids = []
        for n in range(workspaces):
            tenant = services.create_workspace(f"Digest {n:04d}", owner)
            db.session.commit()
            services.update_settings(tenant, {"timezone": "UTC", "digest_hour": hour})
            ids.append(tenant.id)
        owner_id = owner.id
        db.session.remove()
    for tenant_id in ids:
        h.build_leads(
            app, tenant_id, clients, phase="account", owner_id=owner_id, tag=str(tenant_id)
        )
    return ids


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--clients", type=int, default=500, help="per workspace")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(minute=0, second=30, microsecond=0)
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("digest", args.ref), h.Database("digest") as db:
        env = h.app_env(db.dsn)
        h.flask(env, "db", "upgrade")
        seed(env, args.workspaces, args.clients, now.hour)
        h.analyze(db.dsn)
        done = subprocess.run(
            [h.PYTHON, "-c", TICK, now.isoformat()],
            env=env,
            cwd=h.APP_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        outbox = db.one("SELECT count(*) FROM outbox_message")[0]
    first, second = result["runs"]
    met = first["s"] < TARGET_S and second["rows"] == 0
    h.report(
        [
            h.Figure(
                "digest",
                h.command(),
                f"tick with {first['workspaces_due']} workspaces due, "
                f"{args.workspaces * args.clients:,} clients: **{first['s']:.2f} s**, "
                f"{first['rows']:,} outbox rows ({outbox:,} stored); again: {second['s']:.2f} s, "
                f"{second['rows']} rows; peak RSS {result['rss_mb']:.0f} MB; the three days "
                f"before recorded {sum(result['history']):,} rows",
                "",
                "",
                f"< {TARGET_S:.0f} s",
                met,
            )
        ],
        ["Recording only: sending the outbox is the same job's second half, not timed here."],
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
