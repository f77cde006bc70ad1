"""Holes an attack on a running instance found: exports, radar ranges, invitations, board."""

import csv
import io

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ImportJob, ImportRejection, ImportStatus, Invitation, Role, Stage

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_rows(response, delimiter=",") -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _formula_cells(rows) -> list[str]:
    return [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]


@pytest.fixture
def booby_trapped(make):
    """A workspace whose free text starts like spreadsheet formulas everywhere."""
    tenant, owner = make.workspace_with_owner()
    generator = make.member(tenant, Role.LEAD_GENERATOR)
    generator.name = "@SUM(1+1)*cmd|' /C calc'!A0"
    source = make.source(tenant, '=HYPERLINK("http://evil.example","Open")')
    for _ in range(2):
        lead = make.lead(tenant, "New", owner=generator)
        lead.source_id = source.id
    client_row = make.lead(tenant, "Client", owner=make.member(tenant, Role.ACCOUNT_MANAGER))
    client_row.contact.email = "=cmd|'/c calc'!A1@example.com"
    client_row.contact.phone = "+15550100"
    client_row.contact.company = "\t=1+2"
    stage = db.session.scalar(
        sa.select(Stage).where(Stage.tenant_id == tenant.id, Stage.name == "New")
    )
    stage.name = "-2+3"
    db.session.commit()
    return tenant, owner


@pytest.mark.parametrize("table", ["sources", "trend", "stages", "people"])
def test_radar_csv_cells_never_run_as_formulas(client, login, booby_trapped, table):
    _, owner = booby_trapped
    login(owner.email)
    rows = _csv_rows(client.get(f"/radar/sources.csv?table={table}&days=30"))
    assert len(rows) > 1
    assert _formula_cells(rows) == []
    cells = {cell for row in rows for cell in row}
    expected = {
        "sources": """'=HYPERLINK("http://evil.example","Open")""",
        "stages": "'-2+3",
        "people": "'@SUM(1+1)*cmd|' /C calc'!A0",
    }
    if table in expected:
        assert expected[table] in cells  # kept whole, just not runnable


def test_the_clients_export_neutralises_every_column_including_email(client, login, booby_trapped):
    _, owner = booby_trapped
    login(owner.email)
    rows = _csv_rows(client.get("/clients/export.csv"))
    assert _formula_cells(rows) == []
    [client_row] = rows[1:]
    assert client_row[1] == "'=cmd|'/c calc'!A1@example.com"
    assert client_row[2] == "'+15550100" and client_row[3] == "'\t=1+2"


def test_the_rejected_rows_report_neutralises_the_uploaded_cells(client, login, make):
    tenant, owner = make.workspace_with_owner()
    job = ImportJob(
        tenant_id=tenant.id,
        created_by_id=owner.id,
        filename="base.csv",
        content=b"",
        encoding="utf-8",
        delimiter=";",
        headers=["Name", "Email"],
        status=ImportStatus.DONE,
    )
    db.session.add(job)
    db.session.flush()
    db.session.add(
        ImportRejection(
            tenant_id=tenant.id,
            import_id=job.id,
            row_number=2,
            reasons=["missing_contact"],
            cells=['=HYPERLINK("http://evil.example")', "@evil"],
        )
    )
    db.session.commit()
    login(owner.email)
    rows = _csv_rows(client.get(f"/imports/{job.id}/rejected.csv"), delimiter=";")
    assert _formula_cells(rows) == []
    assert rows[1][0] == "2" and rows[1][2:] == ['\'=HYPERLINK("http://evil.example")', "'@evil"]


def test_a_forged_board_cursor_is_a_bad_request_not_a_crash(client, login, make):
    tenant, owner = make.workspace_with_owner()
    make.lead(tenant, "New")
    stage = db.session.scalar(
        sa.select(Stage).where(Stage.tenant_id == tenant.id, Stage.name == "New")
    )
    login(owner.email)
    more = f"/board/stages/{stage.id}/more?after="
    assert client.get(more + "2030-01-01T00:00:00|9").status_code == 400  # no offset
    assert client.get(more + "2030-01-01T00:00:00%2B00:00|99999999999999999999").status_code == 400
    assert client.get(more + "2030-01-01T00:00:00%2B00:00|9").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "start=0002-01-01&end=9998-12-31",
        "start=2026-01-01&end=9999-12-31",
        "start=0001-01-01&end=0001-01-01",
    ],
)
def test_impossible_radar_dates_are_refused_next_to_the_field(client, login, make, query):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    page = client.get(f"/radar?{query}")
    assert page.status_code == 200
    assert 'id="period-error"' in page.text and "between 2000-01-01 and" in page.text
    assert client.get(f"/radar/sources.csv?table=trend&{query}").status_code == 200
    assert client.get(f"/radar/funnel?{query}").status_code == 200


def test_a_radar_range_longer_than_two_years_is_shortened_and_says_so(client, login, make):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    page = client.get("/radar?start=2015-01-01&end=2026-06-30")
    assert page.status_code == 200 and 'id="period-error"' in page.text
    assert "two years at most" in page.text
    assert 'name="start" value="2024-07-01"' in page.text
    trend = _csv_rows(client.get("/radar/sources.csv?table=trend&start=2015-01-01&end=2026-06-30"))
    assert len(trend) - 1 <= 105  # weekly buckets over two years


def _invite(client, email, role="closer"):
    return client.post("/team/invitations", data={"email": email, "role": role})


def test_invitations_and_resends_are_limited_per_inviter_and_per_workspace(
    app, client, login, make
):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    answers = [_invite(client, f"p{i}@example.com").status_code for i in range(11)]
    assert answers == [302] * 10 + [429]
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.tenant_id == tenant.id))
    assert client.post(f"/team/invitations/{invitation.id}/resend").status_code == 429
    for other in (make.member(tenant, Role.OWNER) for _ in range(2)):
        other_owner = app.test_client()
        login(other.email, test_client=other_owner)
        for i in range(10):
            _invite(other_owner, f"{other.id}.{i}@example.com")
    sent = db.session.scalar(
        sa.select(sa.func.count(Invitation.id)).where(Invitation.tenant_id == tenant.id)
    )
    assert 18 <= sent <= 20  # 20 attempts an hour per workspace, refused ones included
    unrelated, unrelated_owner = make.workspace_with_owner()
    elsewhere = app.test_client()
    login(unrelated_owner.email, test_client=elsewhere)
    assert _invite(elsewhere, "s@example.com").status_code == 302


def test_an_invitation_says_who_invites_from_which_workspace_and_quotes_its_name(
    client, login, make, run_jobs, mailbox
):
    spam = "ACCOUNT SUSPENDED - restore at http://evil.example/restore now"
    tenant, owner = make.workspace_with_owner(name=spam)
    login(owner.email)
    _invite(client, "target@example.com")
    run_jobs()
    [message] = mailbox.to("target@example.com")
    assert message["Subject"].startswith("Invitation to the workspace “ACCOUNT SUSPENDED")
    assert "evil.example" not in message["Subject"] and "”" in message["Subject"]
    text = mailbox.text(message)
    assert f"{owner.name} ({owner.email}) invites you to join the workspace “{spam}”" in text
