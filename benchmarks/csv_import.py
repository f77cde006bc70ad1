"""CSV import through the lead builder: rows per second, against a plain COPY of the file.

Each round, on a fresh database: a workspace with two lead generators (the CLI), a
CSV of ``--rows`` new leads (5 % of them with a bad email, 5 % repeating an earlier
row's email) kept, mapped and started through the app's import services, then
``worker.py --burst`` runs the job. Rows/s is the job's own clock (``started_at`` to
``finished_at``); the worker's and PostgreSQL's CPU are measured around it. The
baseline is ``COPY`` of the same file into a bare table, in the same round.

    .venv/bin/python benchmarks/csv_import.py [--rounds 5] [--rows 100000]

``--statements``: one import run in this process instead of the worker, each SQL statement
(and each ``COPY``, and each commit) timed, with the CPU its PostgreSQL backend spent on
it: where an import's time goes, Python or which statement.
"""

import collections
import contextlib
import csv
import io
import os
import re
import resource
import sys
import time
import uuid

import harness as h

TARGET = 8000


def make_csv(rows: int) -> bytes:
    tag = uuid.uuid4().hex[:6]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "Phone", "Company", "Message", "Budget", "Decision date"])
    for n in range(rows):
        email = f"row{n}.{tag}@bench.example.com"
        if n % 20 == 7:
            email = "not-an-email"
        elif n % 20 == 13:
            email = f"row{n - 13}.{tag}@bench.example.com"
        writer.writerow(
            [
                f"Row Person {n}",
                email,
                f"+1646{n:07d}",
                f"Company {n % 1999}",
                "Met at the fair; wants a call",
                f"{(n % 50) * 1000}",
                "2026-12-15",
            ]
        )
    return out.getvalue().encode()


def copy_baseline(db: h.Database, content: bytes) -> float:
    """Rows/s of COPY of the same CSV into a bare table (the floor)."""
    import psycopg

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bare_row (name text, email text, phone text, company text,"
            " message text, budget text, decision_date text)"
        )
        started = time.perf_counter()
        with conn.cursor().copy("COPY bare_row FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write(content)
        rows = conn.execute("SELECT count(*) FROM bare_row").fetchone()[0]
        return rows / (time.perf_counter() - started)


def queue_import(env: dict, workspace: dict, content: bytes) -> int:
    """Keep, map and start the upload as the import pages do (the app's services)."""
    app = h.make_app(env)
    from app.extensions import db
    from app.imports import services
    from app.models import ImportMode, Tenant, User
    from app.tenancy import tenant_scope

    with app.app_context(), tenant_scope(workspace["tenant_id"]) as tenant:
        owner = db.session.scalar(db.select(User).where(User.email == workspace["owner"]))
        tenant = db.session.get(Tenant, workspace["tenant_id"])
        job = services.store_upload(tenant, owner, "bench.csv", content)
        services.save_mapping(job, dict(job.mapping), ImportMode.LEADS, None)
        services.start_import(job)
        job_id = job.id
        db.session.remove()
    return job_id


def one_round(number: int, args, content: bytes, logdir) -> dict:
    with h.Database("csv") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        job_id = queue_import(env, workspace, content)
        worker = h.worker(env, logdir, f"worker-{number}", "--burst", "--no-periodic")
        with h.CpuMeter({"worker": -1}, db.dsn) as cpu:
            worker.start(health=None)
            cpu.roots["worker"] = worker.pid
            worker.popen.wait(args.seconds)
        status, done, imported, merged, rejected, seconds = db.one(
            "SELECT status, rows_done, rows_imported, rows_merged, rows_rejected,"
            " extract(epoch FROM finished_at - started_at) FROM import_job WHERE id = %s",
            job_id,
        )
        leads = db.one("SELECT count(*) FROM lead WHERE tenant_id = %s", workspace["tenant_id"])[0]
        errors = worker.log_count("Traceback")
        copy_rate = copy_baseline(db, content)
        h.flush_redis()
    rate = done / float(seconds or "nan")
    result = {
        "rate": rate,
        "copy": copy_rate,
        "ok": status == "done" and done == args.rows and leads == imported and not errors,
        "counts": f"{imported:,} leads ({merged:,} joined a known contact), {rejected:,} refused",
        "cpu": cpu.per(done),
        "busy": cpu.busy,
        "worker_share": cpu.seconds["worker"] / max(1e-9, float(seconds or 0)),
    }
    h.log(
        f"round {number}: {status}, {done:,} rows in {float(seconds or 0):.1f} s = {rate:,.0f} "
        f"rows/s (COPY {copy_rate:,.0f}); {result['counts']}; leads {leads:,}; CPU ms/row "
        f"{result['cpu']}; worker {result['worker_share']:.2f} cores; machine "
        f"{100 * cpu.busy:.0f} % busy"
    )
    return result


def _backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def statement_timer(backend_pid: list):
    """{statement: [count, wall seconds, backend CPU seconds]} while it is open."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from app.builder import bulk

    times = collections.defaultdict(lambda: [0, 0.0, 0.0])

    def cpu() -> float:
        return _backend_cpu(backend_pid[0]) if backend_pid else 0.0

    def add(key: str, started: float, cpu_then: float) -> None:
        entry = times[key]
        entry[0] += 1
        entry[1] += time.perf_counter() - started
        entry[2] += cpu() - cpu_then

    def before(conn, cursor, statement, *_):
        conn.info["bench_started"] = (time.perf_counter(), cpu())

    def after(conn, cursor, statement, *_):
        add(re.sub(r"\s+", " ", statement)[:80], *conn.info.pop("bench_started"))

    real_copy, real_commit = bulk._CopyPlan.copy, Session.commit

    def copy(plan, connection, rows):
        started = (time.perf_counter(), cpu())
        real_copy(plan, connection, rows)
        add(f"COPY {plan.table.name} (rows formatted and sent)", *started)

    def commit(session):
        started = (time.perf_counter(), cpu())
        real_commit(session)
        add("COMMIT", *started)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
    bulk._CopyPlan.copy, Session.commit = copy, commit
    try:
        yield times
    finally:
        bulk._CopyPlan.copy, Session.commit = real_copy, real_commit
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", after)


def statements_round(args, content: bytes) -> int:
    """One import in this process, each statement timed (see the module's docstring)."""
    with h.Database("csv") as db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        job_id = queue_import(env, workspace, content)
        app = h.make_app(env)
        import sqlalchemy as sa

        from app.extensions import db as app_db
        from app.imports import services
        from app.models import ImportJob
        from app.tenancy import tenant_scope

        with app.app_context():
            backend = [app_db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()]
            app_db.session.commit()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu0, own0, wall0 = _backend_cpu(backend[0]), time.process_time(), time.perf_counter()
            with statement_timer(backend) as times, tenant_scope(workspace["tenant_id"]) as tenant:
                services.run_import(tenant, app_db.session.get(ImportJob, job_id))
            wall = time.perf_counter() - wall0
            own, pg = time.process_time() - own0, _backend_cpu(backend[0]) - cpu0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            judging = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
            done = app_db.session.get(ImportJob, job_id).rows_done
            app_db.session.remove()
    per_row = 1e6 / max(1, done)
    h.log(
        f"in process: {done:,} rows in {wall:.1f} s = {done / wall:,.0f} rows/s; CPU us/row: "
        f"this process {own * per_row:.0f}, the judging child {judging * per_row:.0f}, "
        f"PostgreSQL backend {pg * per_row:.0f}; machine load {os.getloadavg()[0]:.1f}"
    )
    print("\n| statement | count | wall s | backend CPU s | backend CPU us/row |")
    print("|---|---|---|---|---|")
    for key, (count, seconds, cpu) in sorted(times.items(), key=lambda kv: -kv[1][1])[:20]:
        print(f"| `{key}` | {count} | {seconds:.2f} | {cpu:.2f} | {cpu * per_row:.1f} |")
    untimed = wall - sum(seconds for _, seconds, _ in times.values())
    print(f"\n- Outside any statement (Python, waiting for the judging child): {untimed:.1f} s.")
    return 0


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600, help="bound on one import")
    parser.add_argument(
        "--statements", action="store_true", help="one import in this process, statements timed"
    )
    args = parser.parse_args()
    content = make_csv(args.rows)
    h.log(f"{len(content) / 1e6:.1f} MB of CSV; machine busy {100 * h.machine_busy():.0f} %")
    if args.statements:
        with h.workdir("csv", args.ref):
            return statements_round(args, content)
    with h.workdir("csv", args.ref) as logdir:
        rounds = [one_round(n, args, content, logdir) for n in range(1, args.rounds + 1)]
    rate = h.median(r["rate"] for r in rounds)
    copy_rate = h.median(r["copy"] for r in rounds)
    ok = all(r["ok"] for r in rounds)
    each = ", ".join(f"{r['rate']:,.0f}" for r in rounds)
    h.report(
        [
            h.Figure(
                "CSV import",
                h.command(),
                f"**{rate:,.0f} rows/s** (rounds: {each}); {rounds[0]['counts']}"
                + ("" if ok else "; **a round failed its checks**"),
                f"COPY of the file {copy_rate:,.0f} rows/s",
                f"{rate / copy_rate:.2f}",
                f"≥ {TARGET:,} rows/s",
                rate >= TARGET and ok,
            )
        ],
        [
            f"CPU ms per row (round 1): {rounds[0]['cpu']}; the worker used "
            f"{rounds[0]['worker_share']:.2f} cores; machine {100 * rounds[0]['busy']:.0f} % busy."
        ],
    )
    return 0 if rate >= TARGET and ok else 1


if __name__ == "__main__":
    sys.exit(main())
