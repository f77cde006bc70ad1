"""CSV import of an existing client base: rows per second on PostgreSQL, and what was stored.

One run, everything on 127.0.0.1 and bounded in time:

1. a fresh PostgreSQL database (``conveyor_bench_csv_*``, dropped at the end), migrated;
   one workspace per mode, each with an owner, 3 lead generators, 4 account managers
   and 2,000 contacts already known (bulk Core inserts, as the other benchmarks seed);
2. a generated CSV of ``--rows`` rows (default 100,000) per mode, UTF-8 with commas or
   Windows-1251 with semicolons (``--encoding``), as a spreadsheet exports it: names,
   emails, phones in mixed formats, companies, notes with commas, quotes and line
   breaks, last-contact dates in four formats, and per mode the account manager's
   email (clients) or decision date and budget (leads). About 5 % of the rows repeat
   an earlier row's email or phone (written differently), 1 % are contacts the
   workspace already has, and 2 % must be rejected (no email and no phone, a bad
   email, a bad date);
3. the import the way the product runs it: ``services.store_upload`` (what the upload
   view calls), ``services.save_mapping`` with the columns the mapping form shows
   (guessed from the headers), ``services.start_import`` (which queues the RQ job),
   then the queued RQ job's own function, ``app.tasks.imports.run_import``, called
   synchronously in this process inside an app context, as the worker calls it;
4. timing of that job (rows/s), peak resident memory during it (VmHWM, reset just
   before), the CPU split between this process, its PostgreSQL backends and other
   work on the box, and the outcome checked with SQL: leads, contacts, merges,
   rejections with their reasons, no two contacts with one email or phone, owners,
   stage and ``stage_entered_at``;
5. a baseline in the same run on the same bytes: decode, ``csv.reader`` and a bare bulk
   insert into a table with one text column per CSV column, once with psycopg
   ``COPY ... FROM STDIN`` and once with psycopg ``executemany`` (one transaction each).

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/csv_import.py [--rows 100000] [--mode both|leads|clients]
        [--encoding utf-8|cp1251] [--json PATH] [--ref HEAD] [--profile PATH] [--dump DIR]

``--ref HEAD`` imports the app as committed at that ref (unpacked with ``git archive``)
instead of the working tree. ``--profile PATH`` runs the import job under cProfile
(slower: the headline figures are then not comparable) and writes the stats to PATH.
``--dump DIR`` writes what each import stored, without the timestamps set at write time,
as CSV files: two versions of the app can then be compared with ``cmp``. The job runs
after ``gc.freeze()``, as ``worker.py`` runs every job (``--no-gc-freeze``: without, as
the worker did before). A what-if that is not the product's setting: ``--batch-size N``.
Redis: the job is queued on a queue of its own (``bench-csv-<pid>``) in
``--redis-url`` (default db 12), whose keys are deleted at the end; nothing is flushed.

Exit status: 0 when every check passed, 1 when one failed, 2 when the run could not be
set up or was aborted. The 10,000 rows/s target does not change the exit status.
"""

import argparse
import cProfile
import csv
import gc
import io
import json
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from _seed import REPO, FreshDatabase, HardTimeout, log  # noqa: E402

TARGET_ROWS_PER_S = 10_000
EXISTING_CONTACTS = 2_000
LEAD_GENERATORS, ACCOUNT_MANAGERS = 3, 4
SHARE_REJECTED, SHARE_DUPLICATE, SHARE_KNOWN = 0.02, 0.05, 0.01
EXISTING_OFFSET = 5_000_000  # phone serials of the seeded contacts, apart from the file's

HEADERS = {
    ("leads", "utf-8"): [
        "Name", "Email", "Phone", "Company", "Notes", "Budget", "Decision date",
        "Last contact", "Source",
    ],
    ("clients", "utf-8"): [
        "Name", "Email", "Phone", "Company", "Last contact", "Manager", "Customer ID",
        "Notes", "City",
    ],
    ("leads", "cp1251"): [
        "ФИО", "E-mail", "Телефон", "Компания", "Комментарий", "Бюджет", "Дата решения",
        "Последний контакт", "Источник",
    ],
    ("clients", "cp1251"): [
        "ФИО", "E-mail", "Телефон", "Компания", "Последний контакт", "Менеджер",
        "Код клиента", "Примечание", "Город",
    ],
}  # fmt: skip
# The mapping the owner submits: the guessed one (checked against this), column by column.
FIELDS = {
    "leads": [
        "name", "email", "phone", "company", "message", "budget", "decision_date",
        "last_touch_date", None,
    ],
    "clients": [
        "name", "email", "phone", "company", "last_touch_date", "account_manager_email",
        "external_id", "message", None,
    ],
}  # fmt: skip
LATIN_FIRST = ("Anna", "Maria", "James", "Emma", "Noah", "Mia", "Lucas", "Sofia", "Grace",
               "Omar", "Pierre", "Lars", "Piotr", "Olivia")  # fmt: skip
LATIN_LAST = ("Smith", "Johnson", "Garcia", "Miller", "Brown", "Lee", "Martin", "Walker",
              "Young", "King", "O'Neil", "Nguyen")  # fmt: skip
CYRILLIC = {  # name -> the Latin spelling people use in their email
    "Анна": "anna", "Мария": "maria", "Ольга": "olga", "Елена": "elena", "Иван": "ivan",
    "Дмитрий": "dmitry", "Сергей": "sergey", "Наталья": "natalia", "Алексей": "alexey",
    "Татьяна": "tatiana", "Юрий": "yury", "Светлана": "svetlana", "Пётр": "petr",
    "Ксения": "ksenia",
}  # fmt: skip
CYRILLIC_LAST = {
    "Иванов": "ivanov", "Петров": "petrov", "Смирнов": "smirnov", "Кузнецов": "kuznetsov",
    "Попов": "popov", "Соколов": "sokolov", "Лебедев": "lebedev", "Козлов": "kozlov",
    "Новиков": "novikov", "Морозов": "morozov", "Волков": "volkov", "Фёдоров": "fedorov",
    "Зайцев": "zaitsev", "Павлов": "pavlov",
}  # fmt: skip
COMPANIES = ("Northwind Traders", "Blue Fern Dental", "Harbor & Hill Law", "Maple Bakery",
             "Quantum Roofing", "Pixel Forge", "Acme, Inc.", 'Studio "Light"', "ООО «Ромашка»",
             "ИП Сидоров", "АО Уральская логистика", "Север-Строй")  # fmt: skip
DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "outlook.com", "example.org",
           "corp.example.com")  # fmt: skip
NOTES = ("Asked for a callback", "Wants a discount, call after 15:00",
         'Came from the "Spring" campaign', "Two offices; talk to the CFO first",
         "Звонить после обеда", "Просил прислать КП, договор на согласовании",
         "Line one\nline two of a note written in Excel")  # fmt: skip
CITIES = ("Moscow", "Kazan", "Boston", "Austin", "Berlin", "Москва", "Екатеринбург", "")
SOURCES = ("fair", "website", "referral", "cold call", "")
US_AREAS = ("212", "646", "718", "415", "312", "617", "202")
RU_OPERATORS = ("912", "903", "916", "925", "985", "999", "951")
BARE_BATCH = 5000


# --------------------------------------------------------------------------- the file


@dataclass
class Planned:
    """A generated file and what importing it must give."""

    mode: str
    content: bytes
    headers: list[str]
    mapping: dict[str, int]
    rows: int = 0
    good: int = 0
    new_contacts: int = 0
    merged_in_file: int = 0
    merged_known: int = 0
    reasons: Counter = field(default_factory=Counter)
    owners: Counter = field(default_factory=Counter)  # clients: manager email or "" -> rows
    with_extra: int = 0
    duplicates_by_phone_only: int = 0

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    @property
    def merged(self) -> int:
        return self.merged_in_file + self.merged_known


def phone_digits(serial: int, russian: bool) -> str:
    """A unique national number for a serial below 8,000,000."""
    prefixes = RU_OPERATORS if russian else US_AREAS
    return f"{prefixes[serial % 7]}{200 + (serial // 10_000) % 800:03d}{serial % 10_000:04d}"


def written_phone(digits: str, russian: bool, rng: random.Random) -> str:
    """The number as people type it: with or without a country code, spaced, dashed."""
    a, b, c = digits[:3], digits[3:6], digits[6:]
    if russian:
        forms = (
            f"+7{digits}",
            f"8 ({a}) {b}-{c[:2]}-{c[2:]}",
            f"+7 {a} {b}-{c[:2]}-{c[2:]}",
            f"8{digits}",
            f"{a} {b} {c[:2]} {c[2:]}",
        )
    else:
        forms = (
            f"+1{digits}",
            f"({a}) {b}-{c}",
            f"+1 {a} {b} {c}",
            f"{a}-{b}-{c}",
            f"1 ({a}) {b}-{c}",
            digits,
        )
    return rng.choice(forms)


def e164(digits: str, russian: bool) -> str:
    return ("+7" if russian else "+1") + digits


def written_date(day: date, rng: random.Random) -> str:
    return rng.choice(
        (
            day.isoformat(),
            day.strftime("%d.%m.%Y"),
            day.strftime("%d.%m.%y"),
            f"{day.isoformat()} {rng.randrange(9, 19):02d}:{rng.choice(('00', '30'))}",
        )
    )


def shout(text: str, rng: random.Random) -> str:
    """The same email as someone else typed it: some capitals, stray spaces."""
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.3:
        local, _, domain = text.partition("@")
        text = f"{local}@{domain.upper()}"
    return f" {text} " if rng.random() < 0.1 else text


def person(n: int, cyrillic: bool, rng: random.Random) -> tuple[str, str]:
    """(display name, email local part) for person ``n`` (unique by ``n``)."""
    if cyrillic:
        first, last = rng.choice(list(CYRILLIC)), rng.choice(list(CYRILLIC_LAST))
        return f"{first} {last}", f"{CYRILLIC[first]}.{CYRILLIC_LAST[last]}.{n}"
    first, last = rng.choice(LATIN_FIRST), rng.choice(LATIN_LAST)
    return f"{first} {last}", f"{first}.{last.replace(chr(39), '')}.{n}".lower()


def known_contacts(count: int, russian: bool, rng: random.Random) -> list[dict]:
    """The contacts the workspace already has (email and phone each)."""
    found = []
    for n in range(count):
        name, local = person(EXISTING_OFFSET + n, russian, rng)
        found.append(
            {
                "name": name,
                "email": f"{local}@{rng.choice(DOMAINS)}",
                "phone": e164(phone_digits(EXISTING_OFFSET + n, russian), russian),
                "digits": phone_digits(EXISTING_OFFSET + n, russian),
                "company": rng.choice(COMPANIES),
            }
        )
    return found


def plan_file(
    mode: str,
    rows: int,
    encoding: str,
    delimiter: str,
    known: list[dict],
    managers: list[str],
    today: date,
    seed: int,
) -> Planned:
    """Generate the CSV and count, row by row, what the import must make of it."""
    rng = random.Random(f"{seed}-{mode}")
    russian = encoding == "cp1251"
    headers = HEADERS[(mode, "cp1251" if russian else "utf-8")]
    mapping = {name: index for index, name in enumerate(FIELDS[mode]) if name}
    plan = Planned(mode, b"", headers, mapping)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    with_email: list[tuple[str, str | None]] = []  # (email, phone digits) of new contacts
    with_phone: list[str] = []  # phone digits of new contacts
    extra_column = len(headers) - 1
    for n in range(rows):
        cyrillic = russian or rng.random() < 0.3
        name, local = person(n, cyrillic, rng)
        email: str | None = f"{local}@{rng.choice(DOMAINS)}"
        digits: str | None = phone_digits(n, russian)
        if rng.random() < 0.08:
            email = None
        elif rng.random() < 0.27:
            digits = None
        company = rng.choice(COMPANIES) if rng.random() < 0.6 else ""
        last_touch = today - timedelta(days=rng.randrange(1, 400))
        last_touch_text = written_date(last_touch, rng) if rng.random() < 0.8 else ""
        reject, draw = None, rng.random()
        kind = "new"
        if draw < SHARE_REJECTED:
            reject = rng.choice(("missing_contact", "invalid_email", "invalid_date"))
        elif draw < SHARE_REJECTED + SHARE_DUPLICATE and with_email:
            kind = "duplicate"
            if rng.random() < 0.2 and with_phone:
                email, digits = None, rng.choice(with_phone)
                plan.duplicates_by_phone_only += 1
            else:
                email, digits = rng.choice(with_email)
                email = shout(email, rng)
                digits = digits if digits and rng.random() < 0.5 else None
        elif draw < SHARE_REJECTED + SHARE_DUPLICATE + SHARE_KNOWN:
            kind = "known"
            contact = rng.choice(known)
            email = shout(contact["email"], rng)
            digits = contact["digits"] if rng.random() < 0.3 else None

        email_cell = email or ""
        phone_cell = written_phone(digits, russian, rng) if digits else ""
        if reject == "missing_contact":
            email_cell = phone_cell = ""
        elif reject == "invalid_email":
            email_cell = rng.choice(
                (f"{local} at {DOMAINS[0]}", f"{local}@@{DOMAINS[1]}", f"{local}@", local)
            )
        elif reject == "invalid_date":
            last_touch_text = rng.choice(("31/31/2026", "2026-13-45", "32.01.2026", "вчера"))
        if reject == "invalid_date" and not (email_cell or phone_cell):
            email_cell = f"{local}@{DOMAINS[0]}"

        extra = ""
        if mode == "leads":
            decision = today + timedelta(days=rng.randrange(5, 120))
            extra = rng.choice(SOURCES)
            cells = [
                name,
                email_cell,
                phone_cell,
                company,
                rng.choice(NOTES) if rng.random() < 0.3 else "",
                f"{rng.randrange(1, 500) * 1000}" if rng.random() < 0.3 else "",
                written_date(decision, rng) if rng.random() < 0.3 else "",
                last_touch_text,
                extra,
            ]
        else:
            draw_manager = rng.random()
            if draw_manager < 0.85:
                manager = rng.choice(managers)
                manager_cell = manager.upper() if rng.random() < 0.1 else manager
            elif draw_manager < 0.95:
                manager, manager_cell = "", ""
            else:
                manager, manager_cell = "", "former.manager@example.org"
            extra = rng.choice(CITIES)
            cells = [
                name,
                email_cell,
                phone_cell,
                company,
                last_touch_text,
                manager_cell,
                f"C-{n:07d}" if rng.random() < 0.7 else "",
                rng.choice(NOTES) if rng.random() < 0.2 else "",
                extra,
            ]
        writer.writerow(cells)
        plan.rows += 1
        if reject:
            plan.reasons[
                reject if reject != "invalid_date" else "invalid_date:last_touch_date"
            ] += 1
            continue
        plan.good += 1
        plan.with_extra += bool(cells[extra_column].strip())
        if mode == "clients":
            plan.owners[manager] += 1
        if kind == "duplicate":
            plan.merged_in_file += 1
        elif kind == "known":
            plan.merged_known += 1
        else:
            plan.new_contacts += 1
            if email:
                with_email.append((email, digits))
            if digits:
                with_phone.append(digits)
    plan.content = out.getvalue().encode(encoding)
    return plan


# --------------------------------------------------------------------------- the app


def app_snapshot(ref: str, into: Path) -> tuple[Path, str]:
    """The app as committed at ``ref``, unpacked into ``into`` (as intake.py does)."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", ref],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    target = into / f"conveyor-{commit[:12]}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target, commit


def seed(app, database: FreshDatabase, modes: list[str], russian: bool, rng, now) -> dict:
    """One workspace per mode: owner, lead generators, account managers, known contacts."""
    from app.models import Contact

    engine = _seed.seed_engine(database.dsn)
    seeded = {}
    try:
        with engine.begin() as conn:
            specs = [
                {
                    "slug": f"csv-{mode}",
                    "timezone": "Europe/Moscow" if russian else "America/New_York",
                    "language": "ru" if russian else "en",
                    "currency": "RUB" if russian else "USD",
                    "members": {
                        "lead_generator": LEAD_GENERATORS,
                        "account_manager": ACCOUNT_MANAGERS,
                    },
                }
                for mode in modes
            ]
            for mode, ws in zip(modes, _seed.seed_workspaces(conn, specs, now), strict=True):
                known = known_contacts(EXISTING_CONTACTS, russian, rng)
                _seed.insert_rows(
                    conn,
                    Contact.__table__,
                    [
                        {
                            "tenant_id": ws.id,
                            "name": c["name"],
                            "email": c["email"],
                            "phone": c["phone"],
                            "company": c["company"],
                            "created_at": now - timedelta(days=200),
                        }
                        for c in known
                    ],
                )
                seeded[mode] = {"workspace": ws, "known": known}
    finally:
        engine.dispose()
    _seed.analyze(app)
    return seeded


def checkpoint(dsn: str) -> None:
    """Start each measured phase with no dirty buffers left by the one before."""
    import psycopg

    with psycopg.connect(
        dsn.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("CHECKPOINT")


def peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) for this process; False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return _seed.max_rss_mb()


def run_import(
    app, database, plan: Planned, ws, profile: Path | None, freeze: bool = False
) -> dict:
    """Upload, map and start as the views do, then run the queued job as the worker does."""
    from app.extensions import db
    from app.imports import forms, services
    from app.models import ImportMode, Tenant, User
    from app.queue import get_queue

    result: dict = {"mode": plan.mode}
    with app.app_context():
        tenant = db.session.get(Tenant, ws.id)
        owner = db.session.get(User, ws.members["owner"][0])
        started = time.perf_counter()
        job = services.store_upload(tenant, owner, f"{plan.mode}.csv", plan.content)
        result["upload_s"] = time.perf_counter() - started
        if len(plan.content) > forms.MAX_UPLOAD_BYTES:
            log(f"NOTE: {len(plan.content):,} bytes: the upload form would refuse this file")
        result["guessed_mapping"] = dict(job.mapping)
        if job.mapping != plan.mapping:
            log(f"NOTE: guessed mapping {job.mapping} differs; submitting {plan.mapping}")
        default_manager = ws.members["account_manager"][0] if plan.mode == "clients" else None
        services.save_mapping(job, plan.mapping, ImportMode(plan.mode), default_manager)
        services.start_import(job)
        result.update(import_id=job.id, encoding=job.encoding, delimiter=job.delimiter)
        result["rows_total"] = job.rows_total
        queued = get_queue().jobs
        if len(queued) != 1 or queued[0].func_name != "app.tasks.imports.run_import":
            raise RuntimeError(f"expected one queued import job, found {queued}")
        # Nobody else runs it: this process does, below, with what the worker would load.
        job_function, job_args, job_kwargs = queued[0].func, queued[0].args, queued[0].kwargs
        get_queue().remove(queued[0])
        queued[0].delete()
        db.session.remove()
    checkpoint(database.dsn)

    profiler = cProfile.Profile() if profile else None
    if freeze:
        gc.collect()
        gc.freeze()  # as worker.py does before its first job
    have_hwm = peak_rss_reset()
    rss_before = _seed.current_rss_mb()
    gc_watch = _seed.GcWatch()
    own_cpu = sum(os.times()[:2])
    load = _seed.MachineLoad(database.name)
    with app.app_context():
        counter = _seed.QueryCounter(db.engine)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        # What the worker does with the dequeued job: call its function with its arguments.
        returned = job_function(*job_args, **job_kwargs)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        db.session.remove()
        _seed.sa.event.remove(db.engine, "before_cursor_execute", counter._before)
        _seed.sa.event.remove(db.engine, "after_cursor_execute", counter._after)
    result["load"] = load.stop()
    own_cpu = sum(os.times()[:2]) - own_cpu
    full_gcs, full_gc_ms = gc_watch.stop()
    if freeze:
        gc.unfreeze()
    capacity_s = seconds * (os.cpu_count() or 1)
    result.update(
        job_returned=returned,
        cpu_us_per_row={
            "this_process": own_cpu / plan.rows * 1e6,
            "postgres": result["load"]["postgres"] * capacity_s / plan.rows * 1e6,
        },
        full_gcs=full_gcs,
        full_gc_ms=full_gc_ms,
        seconds=seconds,
        rows_per_s=plan.rows / seconds,
        statements=counter.count,
        sql_seconds=counter.seconds,
        rss_before_mb=rss_before,
        peak_rss_mb=peak_rss_mb() if have_hwm else _seed.max_rss_mb(),
        peak_rss_kind="VmHWM reset before the job" if have_hwm else "ru_maxrss of the process",
    )
    if profiler:
        profiler.dump_stats(profile.with_suffix(f".{plan.mode}.pstats"))
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
        result["profile_top"] = stream.getvalue()
    return result


def verify(app, plan: Planned, ws, import_id: int) -> dict:
    """What was stored, counted with SQL, against what the file must give."""
    from app.extensions import db

    sql = _seed.sa.text
    with app.app_context():

        def one(statement: str, **params):
            return db.session.execute(sql(statement), {"t": ws.id, **params}).scalar()

        job = db.session.execute(
            sql(
                "SELECT status, rows_total, rows_done, rows_imported, rows_merged, rows_rejected "
                "FROM import_job WHERE id = :id"
            ),
            {"id": import_id},
        ).one()
        stage_phase = "generation" if plan.mode == "leads" else "account"
        first_stage = one(
            "SELECT id FROM stage WHERE tenant_id = :t AND phase = :p AND NOT is_won "
            "AND NOT is_lost ORDER BY position LIMIT 1",
            p=stage_phase,
        )
        reasons = Counter()
        for (codes,) in db.session.execute(
            sql("SELECT reasons::text FROM import_rejection WHERE import_id = :id"),
            {"id": import_id},
        ):
            for code in json.loads(codes):
                reasons[code] += 1
        owners = dict(
            db.session.execute(
                sql("SELECT owner_id, count(*) FROM lead WHERE tenant_id = :t GROUP BY owner_id"),
                {"t": ws.id},
            ).all()
        )
        found = {
            "job": dict(job._mapping),
            "leads": one("SELECT count(*) FROM lead WHERE tenant_id = :t"),
            "leads_in_first_stage": one(
                "SELECT count(*) FROM lead WHERE tenant_id = :t AND stage_id = :s", s=first_stage
            ),
            "leads_without_stage_entered_at": one(
                "SELECT count(*) FROM lead WHERE tenant_id = :t AND stage_entered_at IS NULL"
            ),
            "leads_with_extra": one(
                "SELECT count(*) FROM lead WHERE tenant_id = :t AND extra::text <> '{}'"
            ),
            "contacts": one("SELECT count(*) FROM contact WHERE tenant_id = :t"),
            "emails_on_several_contacts": one(
                "SELECT count(*) FROM (SELECT lower(email) FROM contact WHERE tenant_id = :t "
                "AND email IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x"
            ),
            "phones_on_several_contacts": one(
                "SELECT count(*) FROM (SELECT phone FROM contact WHERE tenant_id = :t "
                "AND phone IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x"
            ),
            "rejections": one(
                "SELECT count(*) FROM import_rejection WHERE import_id = :id", id=import_id
            ),
            "rejection_reasons": dict(reasons),
            "owners": {str(k): v for k, v in owners.items()},
        }
        db.session.remove()

    expected_contacts = EXISTING_CONTACTS + plan.new_contacts
    checks = {
        "job done": found["job"]["status"] == "done",
        "rows_done == rows in the file": found["job"]["rows_done"] == plan.rows,
        "leads == good rows": found["leads"] == plan.good,
        "job rows_imported == good rows": found["job"]["rows_imported"] == plan.good,
        "job rows_merged == merges": found["job"]["rows_merged"] == plan.merged,
        "job rows_rejected == rejected rows": found["job"]["rows_rejected"] == plan.rejected,
        "rejection rows == rejected rows": found["rejections"] == plan.rejected,
        "rejection reasons as planned": Counter(found["rejection_reasons"]) == plan.reasons,
        "contacts == known + new": found["contacts"] == expected_contacts,
        "no email on two contacts": found["emails_on_several_contacts"] == 0,
        "no phone on two contacts": found["phones_on_several_contacts"] == 0,
        "every lead in the first stage of its phase": found["leads_in_first_stage"] == plan.good,
        "stage_entered_at filled": found["leads_without_stage_entered_at"] == 0,
        "unmapped column kept as extra": found["leads_with_extra"] == plan.with_extra,
    }
    if plan.mode == "leads":
        counts = [found["owners"].get(str(uid), 0) for uid in ws.members["lead_generator"]]
        checks["round robin over the lead generators"] = (
            sum(counts) == plan.good and max(counts) - min(counts) <= 1
        )
    else:
        by_user = Counter()
        default_manager = ws.members["account_manager"][0]
        ids = {ws.emails[uid]: uid for uid in ws.members["account_manager"]}
        for manager, count in plan.owners.items():
            by_user[str(ids.get(manager, default_manager))] += count
        checks["owners: the file's manager, else the default"] = found["owners"] == dict(by_user)
    found["expected"] = {
        "leads": plan.good,
        "merged": plan.merged,
        "rejected": plan.rejected,
        "contacts": expected_contacts,
        "reasons": dict(plan.reasons),
    }
    found["checks"] = checks
    return found


DUMPS = {
    "contacts": "SELECT id, name, email, phone, company FROM contact WHERE tenant_id = {t} "
    "ORDER BY id",
    "leads": "SELECT id, contact_id, source_id, stage_id, owner_id, title, value_minor, message, "
    "budget, external_id, decision_date, next_touch_on, last_touch_at, utm::text, extra::text, "
    "flagged, CASE WHEN last_activity_at = created_at THEN 'at creation' "
    "ELSE last_activity_at::text END, stage_entered_at IS NOT NULL "
    "FROM lead WHERE tenant_id = {t} ORDER BY id",
    "rejections": "SELECT row_number, reasons::text, cells::text FROM import_rejection "
    "WHERE tenant_id = {t} ORDER BY row_number",
    "rotation": "SELECT user_id, role FROM membership WHERE tenant_id = {t} "
    "ORDER BY last_assigned_at NULLS FIRST, id",
    "job": "SELECT status, rows_total, rows_done, rows_imported, rows_merged, rows_rejected "
    "FROM import_job WHERE tenant_id = {t}",
}


def dump(dsn: str, ws, folder: Path, mode: str) -> None:
    """What the import stored, without timestamps, as CSV: to compare two versions."""
    import psycopg

    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for name, query in DUMPS.items():
            with (folder / f"{mode}-{name}.csv").open("wb") as out, conn.cursor() as cursor:
                statement = f"COPY ({query.format(t=int(ws.id))}) TO STDOUT WITH (FORMAT csv)"
                with cursor.copy(statement) as copy:
                    for data in copy:
                        out.write(data)


# --------------------------------------------------------------------------- baseline


def baseline(dsn: str, plan: Planned, encoding: str, delimiter: str) -> dict:
    """Decode, split with csv.reader, bulk insert into one text column per CSV column."""
    import psycopg

    columns = [f"col{i}" for i in range(len(plan.headers))]
    create = (
        "CREATE TABLE bare_import (row_number integer NOT NULL, "
        + ", ".join(f"{c} text" for c in columns)
        + ")"
    )
    conninfo = dsn.replace("postgresql+psycopg://", "postgresql://")
    results = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bare_import")
        conn.execute(create)
        for method in ("copy", "executemany"):
            conn.execute("TRUNCATE bare_import")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            text = plan.content.decode(encoding)
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            next(reader)
            width = len(columns)
            rows = (
                (number, *(cells + [""] * width)[:width])
                for number, cells in enumerate(reader, start=2)
            )
            with conn.transaction(), conn.cursor() as cursor:
                if method == "copy":
                    names = ", ".join(["row_number", *columns])
                    with cursor.copy(f"COPY bare_import ({names}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    insert = f"INSERT INTO bare_import VALUES ({', '.join(['%s'] * (width + 1))})"
                    while batch := [row for _, row in zip(range(BARE_BATCH), rows, strict=False)]:
                        cursor.executemany(insert, batch)
            seconds = time.perf_counter() - started
            stored = conn.execute("SELECT count(*) FROM bare_import").fetchone()[0]
            results[method] = {
                "seconds": seconds,
                "rows_per_s": plan.rows / seconds,
                "rows_stored": stored,
            }
        conn.execute("DROP TABLE bare_import")
    return results


# --------------------------------------------------------------------------- report


def print_report(report: dict) -> None:
    print(f"\n== CSV import, {report['date']} ({report['app']})")
    print(f"command: {report['command']}")
    print(
        f"machine: {os.cpu_count()} CPUs; busy before the run {report['busy_before']:.0%}; "
        f"load average {report['loadavg']}"
    )
    for mode, run in report["modes"].items():
        plan, stored = run["plan"], run["stored"]
        print(
            f"\n-- mode {mode}: {plan['rows']:,} rows, {plan['bytes'] / 1e6:.1f} MB "
            f"({run['import']['encoding']}, delimiter {run['import']['delimiter']!r})"
        )
        imp = run["import"]
        print(f"  upload (store_upload: read layout, count rows, store): {imp['upload_s']:.2f} s")
        print(
            f"  import job: {imp['seconds']:.2f} s = {imp['rows_per_s']:,.0f} rows/s "
            f"(target >= {TARGET_ROWS_PER_S:,}: "
            f"{'met' if imp['rows_per_s'] >= TARGET_ROWS_PER_S else 'NOT met'})"
        )
        print(
            f"  SQL statements through SQLAlchemy (COPY not counted): {imp['statements']:,} "
            f"({imp['sql_seconds']:.2f} s inside the cursor calls)"
        )
        print(
            f"  peak RSS during the job {imp['peak_rss_mb']:.0f} MB ({imp['peak_rss_kind']}), "
            f"{imp['rss_before_mb']:.0f} MB before it"
        )
        cpu = imp["cpu_us_per_row"]
        print(
            f"  CPU per row: this process {cpu['this_process']:.0f} µs, its PostgreSQL backends "
            f"{cpu['postgres']:.0f} µs; {imp['full_gcs']} full garbage collections, "
            f"{imp['full_gc_ms']:.0f} ms in all"
        )
        print(f"  {_seed.MachineLoad.describe(imp['load'])}")
        others = imp["load"]["machine_busy"] - imp["load"]["this_process"] - imp["load"]["postgres"]
        if others > 0.10:
            print(f"  WARNING: other work took {others:.0%} of the CPUs: figures are low and noisy")
        job = stored["job"]
        print(
            f"  job counters: imported {job['rows_imported']:,}, merged {job['rows_merged']:,}, "
            f"rejected {job['rows_rejected']:,} (expected {plan['good']:,} / "
            f"{plan['merged']:,} / {plan['rejected']:,})"
        )
        print(
            f"  stored: {stored['leads']:,} leads, {stored['contacts']:,} contacts "
            f"(expected {stored['expected']['contacts']:,}), {stored['rejections']:,} rejection "
            f"rows {json.dumps(stored['rejection_reasons'])}"
        )
        for name, ok in stored["checks"].items():
            print(f"    [{'ok' if ok else 'FAILED'}] {name}")
        for method, figures in run.get("baseline", {}).items():
            print(
                f"  baseline {method}: {figures['seconds']:.2f} s = "
                f"{figures['rows_per_s']:,.0f} rows/s ({figures['rows_stored']:,} rows); "
                f"import/baseline = {imp['rows_per_s'] / figures['rows_per_s']:.3f}"
            )
        if imp.get("profile_top"):
            print("  cProfile (tottime), top 25:\n" + imp["profile_top"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each file")
    parser.add_argument("--mode", choices=("both", "leads", "clients"), default="both")
    parser.add_argument("--encoding", choices=("utf-8", "cp1251"), default="utf-8")
    parser.add_argument("--delimiter", help="default: ',' for UTF-8, ';' for Windows-1251")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--ref", help="import the app as committed at this git ref")
    parser.add_argument("--profile", type=Path, help="run the job under cProfile; stats here")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() before the job, as worker.py does (default: on)",
    )
    parser.add_argument(
        "--dump", type=Path, help="write what was stored (no timestamps) as CSV files here"
    )
    parser.add_argument(
        "--batch-size", type=int, help="what-if: set app.imports.loading.BATCH_SIZE for this run"
    )
    parser.add_argument("--redis-url", default=_seed.REDIS_URL)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=int, default=600, help="hard bound for the run (s)")
    args = parser.parse_args()
    if not 100 <= args.rows <= 1_000_000:
        parser.error("--rows must be 100..1000000")
    delimiter = args.delimiter or (";" if args.encoding == "cp1251" else ",")
    modes = ["leads", "clients"] if args.mode == "both" else [args.mode]

    _seed.install_hard_timeout(args.timeout)
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python benchmarks/csv_import.py", *sys.argv[1:]]),
        "settings": {
            "gc_freeze": args.gc_freeze,
            "rows": args.rows,
            "modes": modes,
            "encoding": args.encoding,
            "delimiter": delimiter,
        },
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "modes": {},
    }
    snapshot_dir = None
    queue_name = f"bench-csv-{os.getpid()}"
    app = None
    exit_code = 0
    try:
        if args.ref:
            snapshot_dir = Path(tempfile.mkdtemp(prefix="conveyor-bench-csv-"))
            app_dir, commit = app_snapshot(args.ref, snapshot_dir)
            sys.path.insert(0, str(app_dir))
            report["app"] = f"git archive {args.ref} = {commit[:12]}"
        else:
            app_dir = REPO
            report["app"] = f"working tree {REPO}"
        import app as app_package
        from app.imports import loading

        if args.batch_size:
            loading.BATCH_SIZE = args.batch_size
        report["settings"]["batch_size"] = loading.BATCH_SIZE

        if Path(app_package.__file__).resolve().parent.parent != app_dir.resolve():
            raise RuntimeError(f"app imported from {app_package.__file__}, not {app_dir}")
        report["busy_before"] = _seed.machine_busy_share()
        log(f"app under test: {report['app']}; machine busy {report['busy_before']:.0%}")
        rng = random.Random(args.seed)
        now = datetime.now(UTC)
        with FreshDatabase("csv") as database:
            from flask_migrate import upgrade

            app = _seed.make_app(
                database.dsn, migrate=False, REDIS_URL=args.redis_url, RQ_QUEUE=queue_name
            )
            with app.app_context():
                upgrade(directory=str(app_dir / "migrations"))
            seeded = seed(app, database, modes, args.encoding == "cp1251", rng, now)
            for mode in modes:
                ws = seeded[mode]["workspace"]
                managers = [ws.emails[uid] for uid in ws.members["account_manager"]]
                started = time.perf_counter()
                plan = plan_file(
                    mode,
                    args.rows,
                    args.encoding,
                    delimiter,
                    seeded[mode]["known"],
                    managers,
                    now.date(),
                    args.seed,
                )
                log(
                    f"{mode}: {plan.rows:,} rows, {len(plan.content) / 1e6:.1f} MB generated in "
                    f"{time.perf_counter() - started:.1f} s; importing"
                )
                run = {
                    "plan": {
                        "rows": plan.rows,
                        "bytes": len(plan.content),
                        "good": plan.good,
                        "new_contacts": plan.new_contacts,
                        "merged": plan.merged,
                        "merged_in_file": plan.merged_in_file,
                        "merged_with_known_contacts": plan.merged_known,
                        "duplicates_by_phone_only": plan.duplicates_by_phone_only,
                        "rejected": plan.rejected,
                        "reasons": dict(plan.reasons),
                    }
                }
                run["import"] = run_import(
                    app, database, plan, ws, args.profile, freeze=args.gc_freeze
                )
                log(
                    f"{mode}: {run['import']['rows_per_s']:,.0f} rows/s "
                    f"({run['import']['seconds']:.1f} s); checking"
                )
                run["stored"] = verify(app, plan, ws, run["import"]["import_id"])
                run["stored"]["checks"]["the job function returned True"] = (
                    run["import"]["job_returned"] is True
                )
                if not all(run["stored"]["checks"].values()):
                    exit_code = 1
                if args.dump:
                    dump(database.dsn, ws, args.dump, mode)
                if not args.skip_baseline:
                    run["baseline"] = baseline(database.dsn, plan, args.encoding, delimiter)
                report["modes"][mode] = run
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()
        print_report(report)
    except (HardTimeout, KeyboardInterrupt, RuntimeError, subprocess.SubprocessError) as error:
        log(f"ABORTED: {error.__class__.__name__}: {error}")
        exit_code = 2
    except Exception:  # noqa: BLE001 - a failed setup or import: report it, clean up
        traceback.print_exc()
        log("ABORTED: see the traceback above")
        exit_code = 2
    finally:
        if app is not None:
            try:
                from app.queue import get_queue

                with app.app_context():
                    get_queue().delete(delete_jobs=True)
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                log(f"WARNING: could not delete queue {queue_name}: {error}")
        if snapshot_dir:
            shutil.rmtree(snapshot_dir, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        signal.alarm(0)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
