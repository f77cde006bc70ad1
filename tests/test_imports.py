"""The owner imports an existing client base from a CSV file."""

import codecs
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from rq.registry import FailedJobRegistry

from app import clock
from app.builder import bulk, people
from app.extensions import db
from app.imports import forms, judging, loading, reading
from app.imports.rows import RowJudge
from app.models import Contact, ImportJob, ImportStatus, Lead, Membership, Phase, Role, Stage
from app.queue import get_queue
from app.sources import services as sources
from app.tasks.imports import run_import

CLIENTS_CP1251 = (
    "Имя;Телефон;E-mail;Компания;Последний контакт;Менеджер\r\n"
    "Анна Петрова;8 (912) 345-67-89;anna@example.ru;ООО «Ромашка»;01.10.2026;olga@example.com\r\n"
    "Борис Сидоров;+7 903 123-45-67;;ИП Сидоров;;\r\n"
).encode("cp1251")
LEADS_UTF8 = (
    "\ufeffName,Email,Phone,Company,Message,Budget,Decision date,Source\n"
    'Ann Lee,ann@example.com,,"Lee, Bakers",Needs flour,500,2026-12-31,fair\n'
    "Ben Ode,ben@example.com,+1 202 555 0143,,,,,\n"
    "Cy Ray,,+1 202 555 0177,,,,,\n"
    "Di Fox,di@example.com,,,,,,\n"
).encode()


class _FormValues(HTMLParser):
    """The values a browser would submit for the selects of a page, as rendered."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select:
            # The first option unless another one is marked selected.
            first = self._select not in self.values
            if first or "selected" in attrs:
                self.values[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def _upload(client, content: bytes, filename: str = "clients.csv"):
    return client.post(
        "/imports/new",
        data={"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def _upload_ok(client, content: bytes) -> int:
    response = _upload(client, content)
    assert response.status_code == 302, response.text
    return int(re.search(r"/imports/(\d+)/mapping", response.location).group(1))


def _map(client, import_id: int, mode: str, manager=None, **columns) -> object:
    """Submit the mapping form as shown (the guessed columns), with the owner's changes."""
    parser = _FormValues()
    parser.feed(client.get(f"/imports/{import_id}/mapping").text)
    data = {**parser.values, "mode": mode, **columns}
    data["default_account_manager"] = str(manager.id) if manager else ""
    return client.post(f"/imports/{import_id}/mapping", data=data)


def _import(client, run_jobs, content: bytes, mode: str, manager=None, **columns) -> ImportJob:
    import_id = _upload_ok(client, content)
    assert _map(client, import_id, mode, manager, **columns).status_code == 302
    assert client.post(f"/imports/{import_id}/start").status_code == 302
    run_jobs()
    return db.session.get(ImportJob, import_id)


def _forget_failed_jobs() -> None:
    """Clear RQ's record of failures already asserted, so ``run_jobs`` checks only new ones."""
    registry = FailedJobRegistry(queue=get_queue())
    for job_id in registry.get_job_ids():
        registry.remove(job_id)


def _leads(tenant) -> list[Lead]:
    return list(
        db.session.scalars(sa.select(Lead).where(Lead.tenant_id == tenant.id).order_by(Lead.id))
    )


def _contacts(tenant) -> list[Contact]:
    return list(
        db.session.scalars(
            sa.select(Contact).where(Contact.tenant_id == tenant.id).order_by(Contact.id)
        )
    )


def test_russian_excel_file_imports_clients_with_their_account_managers(
    client, make, login, run_jobs
):
    tenant, owner = make.workspace_with_owner(language="ru")
    tenant.country = "RU"  # phones without a country code are read as Russian
    db.session.commit()
    olga = make.member(tenant, Role.ACCOUNT_MANAGER, email="olga@example.com")
    ivan = make.member(tenant, Role.ACCOUNT_MANAGER, email="ivan@example.com")
    login(owner.email)

    job = _import(client, run_jobs, CLIENTS_CP1251, "clients", manager=ivan)

    assert (job.status, job.encoding, job.delimiter) == (ImportStatus.DONE, "cp1251", ";")
    assert job.rows_imported == 2
    anna, boris = _leads(tenant)
    assert anna.contact.name == "Анна Петрова"
    assert anna.contact.phone == "+79123456789"
    assert anna.contact.email == "anna@example.ru"
    assert anna.contact.company == "ООО «Ромашка»"
    assert anna.stage.phase == Phase.ACCOUNT
    assert anna.owner_id == olga.id
    assert anna.next_touch_on == date(2026, 10, 1) + timedelta(days=tenant.touch_cadence_days)
    assert boris.contact.name == "Борис Сидоров"
    assert boris.owner_id == ivan.id
    assert boris.next_touch_on == datetime.now(UTC).date()


def test_utf8_file_imports_leads_shared_round_robin_among_lead_generators(
    client, make, login, run_jobs
):
    tenant, owner = make.workspace_with_owner()
    first = make.member(tenant, Role.LEAD_GENERATOR)
    second = make.member(tenant, Role.LEAD_GENERATOR)
    login(owner.email)

    job = _import(client, run_jobs, LEADS_UTF8, "leads")

    assert (job.encoding, job.delimiter, job.rows_imported) == ("utf-8-sig", ",", 4)
    leads = _leads(tenant)
    assert [lead.contact.name for lead in leads] == ["Ann Lee", "Ben Ode", "Cy Ray", "Di Fox"]
    assert [lead.owner_id for lead in leads] == [first.id, second.id, first.id, second.id]
    new_stage = db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.phase == Phase.GENERATION)
        .order_by(Stage.position)
    )
    assert {lead.stage_id for lead in leads} == {new_stage.id}
    ann = leads[0]
    assert (ann.title, ann.message, ann.budget) == ("Lee, Bakers", "Needs flour", "500")
    assert ann.decision_date == date(2026, 12, 31)
    assert ann.extra == {"Source": "fair"}
    assert leads[2].contact.phone == "+12025550177"
    # Live intake carries on the rotation where the import left it.
    source = sources.create_source(tenant, "Site", "site_form")
    posting = client.post(f"/in/{source.intake_token}", json={"email": "e@example.com"})
    assert posting.status_code == 202
    run_jobs()
    posted = db.session.scalar(sa.select(Lead).where(Lead.source_id == source.id))
    assert posted.owner_id == first.id


def test_rows_are_read_as_written_whatever_the_line_ends_and_bad_bytes():
    content = (
        codecs.BOM_UTF8
        + 'Name;Note\r\nАнна;"line one\rline two"\r\n'.encode()
        + b"\xff bad;x\r\n\r\nBen;ok"
    )
    layout = reading.read_layout(content)
    assert (layout.encoding, layout.delimiter) == ("utf-8-sig", ";")
    assert list(reading.data_rows(content, layout)) == [
        (2, ["Анна", "line one\rline two"]),
        (3, ["\ufffd bad", "x"]),
        (5, ["Ben", "ok"]),
    ]
    utf16 = "Имя,Почта\nАнна,anna@example.ru\n".encode("utf-16")
    assert list(reading.data_rows(utf16, reading.read_layout(utf16))) == [
        (2, ["Анна", "anna@example.ru"])
    ]


def test_column_mapping_is_guessed_from_english_and_russian_headers(client, make, login):
    assert reading.guess_mapping(["Ф.И.О.", "Телефон", "Почта", "Компания", "Заметки"]) == {
        "name": 0,
        "phone": 1,
        "email": 2,
        "company": 3,
        "message": 4,
    }
    assert reading.guess_mapping(["E-mail", "Full name", "Mobile", "Last contact", "Misc"]) == {
        "email": 0,
        "name": 1,
        "phone": 2,
        "last_touch_date": 3,
    }
    _, owner = make.workspace_with_owner()
    login(owner.email)
    import_id = _upload_ok(client, CLIENTS_CP1251)
    page = client.get(f"/imports/{import_id}/mapping")
    assert "Анна Петрова" in page.text  # the preview
    parser = _FormValues()
    parser.feed(page.text)
    assert {name: parser.values[f"map_{name}"] for name in reading.IMPORT_FIELDS} == {
        "name": "0",
        "phone": "1",
        "email": "2",
        "company": "3",
        "last_touch_date": "4",
        "account_manager_email": "5",
        "message": "",
        "budget": "",
        "decision_date": "",
        "external_id": "",
    }


@pytest.mark.parametrize(("batch_size", "lookup_chunk"), [(1000, 1000), (1000, 1), (1, 1000)])
def test_duplicates_merge_with_known_contacts_and_within_the_file(
    client, make, login, run_jobs, monkeypatch, batch_size, lookup_chunk
):
    monkeypatch.setattr(loading, "BATCH_SIZE", batch_size)
    monkeypatch.setattr(people, "LOOKUP_CHUNK", lookup_chunk)
    tenant, owner = make.workspace_with_owner()
    known = Contact(tenant_id=tenant.id, name="Anna (known)", email="anna@example.com")
    db.session.add(known)
    db.session.commit()
    login(owner.email)
    content = (
        b"Name,Email,Phone\n"
        b"Anna,Anna@Example.com,+1 202 555 0100\n"  # the known contact, now with a phone
        b"Anna again,,(202) 555-0100\n"  # the same phone written differently
        b"Boris,boris@example.com,\n"
        b"Boris B,BORIS@example.com,+1 202 555 0199\n"  # an earlier row of this file
    )

    job = _import(client, run_jobs, content, "leads")

    contacts = _contacts(tenant)
    assert [(c.name, c.email, c.phone) for c in contacts] == [
        ("Anna (known)", "anna@example.com", "+12025550100"),
        ("Boris", "boris@example.com", "+12025550199"),
    ]
    leads = _leads(tenant)
    assert [lead.contact_id for lead in leads] == [contacts[0].id] * 2 + [contacts[1].id] * 2
    assert (job.rows_imported, job.rows_merged) == (4, 3)


def test_bulk_inserts_store_what_a_core_insert_stores(make):
    """On PostgreSQL the batch's rows go in with COPY: the same values, defaults and JSON."""
    tenant, _ = make.workspace_with_owner()
    stage = db.session.scalar(
        sa.select(Stage).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
    )
    now = clock.now() - timedelta(hours=1)
    contact_ids = bulk.insert_rows_returning_ids(
        Contact.__table__,
        [
            {"tenant_id": tenant.id, "name": name, "email": email, "phone": None,
             "company": 'Ромашка "R"', "created_at": now}
            for name, email in [("Анна\tП.", "anna@example.com"), ("Ben", None)]
        ],
    )  # fmt: skip
    lead = {
        "tenant_id": tenant.id,
        "contact_id": contact_ids[0],
        "source_id": None,
        "stage_id": stage.id,
        "owner_id": None,
        "value_minor": 0,
        "message": "line one\nline two\t\\ end",
        "budget": None,
        "external_id": "C-1",
        "decision_date": date(2026, 12, 31),
        "next_touch_on": None,
        "last_activity_at": now,
        "last_touch_at": None,
        "utm": {},
        "extra": {"Город": "Москва", "note": 'a "quote", a \\ and a\nbreak'},
        "flagged": False,
        "created_at": now,
    }
    before = clock.now()
    bulk.insert_rows(Lead.__table__, [{**lead, "title": "bulk"}])
    db.session.execute(sa.insert(Lead.__table__), [{**lead, "title": "core"}])
    db.session.commit()

    contacts = _contacts(tenant)
    assert [(c.id, c.name, c.email, c.company) for c in contacts] == [
        (contact_ids[0], "Анна\tП.", "anna@example.com", 'Ромашка "R"'),
        (contact_ids[1], "Ben", None, 'Ромашка "R"'),
    ]
    columns = [c for c in Lead.__table__.columns if c.key not in ("id", "title")]
    stored = db.session.execute(
        sa.select(
            *columns,
            sa.cast(Lead.extra, sa.Text).label("extra_as_stored"),
            sa.cast(Lead.utm, sa.Text).label("utm_as_stored"),
        )
        .where(Lead.tenant_id == tenant.id)
        .order_by(Lead.id)
    ).all()
    copied, inserted = (dict(row._mapping) for row in stored)
    # A callable default is called per row, as it is for a Core insert.
    assert copied.pop("stage_entered_at") >= before <= inserted.pop("stage_entered_at")
    assert copied == inserted


def test_rejected_rows_are_reported_with_their_reasons_and_nothing_is_lost(
    client, make, login, run_jobs
):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    content = (
        b"Name;Email;Phone;Decision date\n"
        b"Nobody;;;\n"
        b"Bad Email;not-an-email;;\n"
        b"\n"
        b"Bad Phone;;12;\n"
        b"Bad Date;ok@example.com;;31/31/2026\n"
        b"Good;good@example.com;;31.12.2026\n"
    )

    job = _import(client, run_jobs, content, "leads")

    assert (job.rows_total, job.rows_imported, job.rows_rejected) == (5, 1, 4)
    assert db.session.scalar(sa.select(ImportJob.content).where(ImportJob.id == job.id)) == content
    assert [lead.decision_date for lead in _leads(tenant)] == [date(2026, 12, 31)]

    report = client.get(f"/imports/{job.id}/rejected.csv")
    assert report.status_code == 200
    assert report.mimetype == "text/csv"
    assert "attachment" in report.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(report.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Row", "Reason", "Name", "Email", "Phone", "Decision date"]
    assert [(row[0], row[2]) for row in rows[1:]] == [
        ("2", "Nobody"),
        ("3", "Bad Email"),
        ("5", "Bad Phone"),
        ("6", "Bad Date"),
    ]
    reasons = [row[1] for row in rows[1:]]
    assert "No email and no phone" in reasons[0]
    assert "not a valid email" in reasons[1]
    assert "not a valid phone" in reasons[2]
    assert "Decision date is not a date" in reasons[3]
    assert rows[4][2:] == ["Bad Date", "ok@example.com", "", "31/31/2026"]

    page = client.get(f"/imports/{job.id}")
    assert "not a valid phone number" in page.text
    # A real download: hx-boost would otherwise fetch the CSV and swap it into the page.
    assert f'/imports/{job.id}/rejected.csv" download hx-boost="false"' in page.text


def test_an_interrupted_import_resumes_without_duplicating_rows(
    client, make, login, run_jobs, monkeypatch
):
    monkeypatch.setattr(loading, "BATCH_SIZE", 2)
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    real_load_batch, calls = loading.load_batch, []

    def crash_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("database went away")
        return real_load_batch(*args, **kwargs)

    monkeypatch.setattr(loading, "load_batch", crash_on_second_batch)
    import_id = _upload_ok(client, LEADS_UTF8)
    _map(client, import_id, "leads")
    client.post(f"/imports/{import_id}/start")
    run_jobs(allow_failures=True)
    job = db.session.get(ImportJob, import_id)
    assert (job.status, job.rows_done, len(_leads(tenant))) == (ImportStatus.FAILED, 2, 2)
    assert "database went away" in client.get(f"/imports/{import_id}").text

    _forget_failed_jobs()
    client.post(f"/imports/{import_id}/start")
    run_jobs()
    db.session.expire_all()
    assert (job.status, job.rows_done, job.rows_imported) == (ImportStatus.DONE, 4, 4)
    assert [lead.contact.name for lead in _leads(tenant)] == [
        "Ann Lee",
        "Ben Ode",
        "Cy Ray",
        "Di Fox",
    ]


def test_a_failure_while_judging_ahead_stops_the_import_after_the_batches_built(
    client, make, login, run_jobs, monkeypatch
):
    """Rows are judged a batch ahead in a second process: its error is the job's error,
    the batches built before it stay, and starting again finishes the file."""
    monkeypatch.setattr(loading, "BATCH_SIZE", 2)
    monkeypatch.setattr(judging, "PART_ROWS", 1)  # each batch crosses in two messages
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    real_judge_batch = RowJudge.judge_batch

    def fail_on_cy(self, batch):
        if any("Cy Ray" in cells for _, cells in batch):
            raise ValueError("the judge choked on row 4")
        return real_judge_batch(self, batch)

    monkeypatch.setattr(RowJudge, "judge_batch", fail_on_cy)
    import_id = _upload_ok(client, LEADS_UTF8)
    _map(client, import_id, "leads")
    client.post(f"/imports/{import_id}/start")
    run_jobs(allow_failures=True)
    job = db.session.get(ImportJob, import_id)
    assert (job.status, job.rows_done, len(_leads(tenant))) == (ImportStatus.FAILED, 2, 2)
    assert "the judge choked on row 4" in client.get(f"/imports/{import_id}").text

    monkeypatch.setattr(RowJudge, "judge_batch", real_judge_batch)
    _forget_failed_jobs()
    client.post(f"/imports/{import_id}/start")
    run_jobs()
    db.session.expire_all()
    assert (job.status, job.rows_done, job.rows_imported) == (ImportStatus.DONE, 4, 4)
    assert [lead.contact.name for lead in _leads(tenant)] == [
        "Ann Lee",
        "Ben Ode",
        "Cy Ray",
        "Di Fox",
    ]


def test_running_a_finished_import_again_changes_nothing(client, make, login, run_jobs):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    job = _import(client, run_jobs, LEADS_UTF8, "leads")
    # A stale copy of the job, or an owner's second click, must not import twice.
    assert client.post(f"/imports/{job.id}/start").status_code == 302
    assert run_import(tenant.id, job.id) is False
    db.session.expire_all()
    job.status = ImportStatus.RUNNING  # as if a duplicate worker picked it up again
    db.session.commit()
    run_import(tenant.id, job.id)
    assert (len(_leads(tenant)), len(_contacts(tenant))) == (4, 4)
    assert (job.status, job.rows_imported) == (ImportStatus.DONE, 4)


def test_progress_fragment_polls_every_second_until_the_import_is_done(
    client, make, login, run_jobs
):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    import_id = _upload_ok(client, LEADS_UTF8)
    _map(client, import_id, "leads")
    client.post(f"/imports/{import_id}/start")
    url = f"/imports/{import_id}/progress"

    waiting = client.get(url, headers={"HX-Request": "true"})
    assert "<html" not in waiting.text
    assert 'hx-trigger="every 1s"' in waiting.text
    assert '<progress value="0" max="4">' in waiting.text

    run_jobs()
    done = client.get(url, headers={"HX-Request": "true"})
    assert '<progress value="4" max="4">' in done.text
    assert "hx-trigger" not in done.text
    assert "Done" in done.text
    assert "4 of 4 rows processed: 4 imported" in done.text


def test_upload_refuses_large_empty_and_unreadable_files_with_field_errors(
    client, make, login, monkeypatch
):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    monkeypatch.setattr(forms, "MAX_UPLOAD_BYTES", 100 * 1024)
    too_large = _upload(client, b"Name,Email\n" + b"x,x@example.com\n" * 8_000)
    assert too_large.status_code == 422
    assert "larger than 0.1 MB" in too_large.text
    header_only = _upload(client, b"Name,Email\n")
    assert "no rows under it" in header_only.text
    binary = _upload(client, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "does not look like a CSV file" in binary.text
    assert db.session.scalar(sa.select(sa.func.count(ImportJob.id))) == 0


def test_mapping_needs_a_contact_column_and_an_account_manager_for_clients(client, make, login):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    import_id = _upload_ok(client, LEADS_UTF8)
    no_contact = _map(client, import_id, "leads", map_email="", map_phone="")
    assert no_contact.status_code == 422
    assert "emails or phones" in no_contact.text
    no_manager = _map(client, import_id, "clients")
    assert no_manager.status_code == 422
    assert "Invite an account manager" in no_manager.text
    twice = _map(client, import_id, "leads", map_company="0")
    assert "This column already feeds Name" in twice.text
    assert db.session.get(ImportJob, import_id).status == ImportStatus.UPLOADED


def test_imports_list_starts_empty_and_shows_past_imports(client, make, login, run_jobs):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    empty = client.get("/imports")
    assert "No imports yet" in empty.text
    _import(client, run_jobs, LEADS_UTF8, "leads")
    listed = client.get("/imports")
    assert "clients.csv" in listed.text
    assert "No imports yet" not in listed.text


def _import_routes(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("imports.")]


def _stored_import(tenant, owner) -> ImportJob:
    job = ImportJob(
        tenant_id=tenant.id,
        created_by_id=owner.id,
        filename="clients.csv",
        content=LEADS_UTF8,
        encoding="utf-8-sig",
        delimiter=",",
        headers=["Name", "Email"],
        rows_total=4,
    )
    db.session.add(job)
    db.session.commit()
    return job


@pytest.mark.parametrize("role", [Role.CLOSER, Role.LEAD_GENERATOR, Role.ACCOUNT_MANAGER])
def test_only_the_owner_may_import(app, client, make, login, role):
    tenant, owner = make.workspace_with_owner()
    job = _stored_import(tenant, owner)
    member = make.member(tenant, role)
    login(member.email)
    for rule in _import_routes(app):
        with app.test_request_context():
            url = app.url_for(rule.endpoint, import_id=job.id) if rule.arguments else None
            url = url or app.url_for(rule.endpoint)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"


def test_another_workspace_owner_gets_404_for_every_import(app, client, make, login):
    tenant_a, owner_a = make.workspace_with_owner()
    _, owner_b = make.workspace_with_owner()
    job = _stored_import(tenant_a, owner_a)
    login(owner_b.email)
    for rule in _import_routes(app):
        if "import_id" not in rule.arguments:
            continue
        with app.test_request_context():
            url = app.url_for(rule.endpoint, import_id=job.id)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"mode": "leads"})
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
    db.session.expire_all()
    assert job.status == ImportStatus.UPLOADED
    assert db.session.scalar(sa.select(sa.func.count(Membership.id))) == 2
