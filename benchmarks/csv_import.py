"""CSV import through the lead builder: rows per second, against a plain COPY of the file.

Each round, on a fresh database: a workspace with two lead generators (the CLI), a
CSV of ``--rows`` new leads (5 % of them with a bad email, 5 % repeating an earlier
row's email) kept, mapped and started through the app's import services, then
``worker.py --burst`` runs the job. Rows/s is the job's own clock (``started_at`` to
``finished_at``); the worker's and PostgreSQL's CPU are measured around it. The
baseline is ``COPY`` of the same file into a bare table, in the same round.

    .venv/bin/python benchmarks/csv_import.py [--rounds 5] [--rows 100000]
"""

import csv
import io
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


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600, help="bound on one import")
    args = parser.parse_args()
    content = make_csv(args.rows)
    h.log(f"{len(content) / 1e6:.1f} MB of CSV; machine busy {100 * h.machine_busy():.0f} %")
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
