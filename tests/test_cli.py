"""Operator commands print one JSON object and fail clearly on bad input."""

import json

import sqlalchemy as sa

from app.extensions import db
from app.models import Lead, Membership, Role, Source, Tenant


def _run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def test_workspace_create_prints_id_and_slug(app, ctx):
    result = _run(
        app,
        "workspace",
        "create",
        "--name",
        "Acme Tiles",
        "--owner-email",
        "Boss@Acme.example",
        "--owner-password",
        "tiles and more 5",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    tenant = db.session.get(Tenant, data["id"])
    assert data["slug"] == tenant.slug == "acme-tiles"


def test_workspace_create_refuses_a_bad_email_and_a_weak_password(app, ctx):
    bad_email = _run(
        app,
        "workspace",
        "create",
        "--name",
        "X",
        "--owner-email",
        "not-an-email",
        "--owner-password",
        "tiles and more 5",
    )
    assert bad_email.exit_code != 0 and "invalid email" in bad_email.stderr
    weak = _run(
        app,
        "workspace",
        "create",
        "--name",
        "X",
        "--owner-email",
        "a@example.com",
        "--owner-password",
        "short",
    )
    assert weak.exit_code != 0 and "password" in weak.stderr
    assert db.session.scalar(sa.select(sa.func.count(Tenant.id))) == 0


def test_user_add_joins_a_workspace_with_a_role(app, client, ctx):
    created = json.loads(
        _run(
            app,
            "workspace",
            "create",
            "--name",
            "Acme",
            "--owner-email",
            "o@example.com",
            "--owner-password",
            "tiles and more 5",
        ).stdout
    )
    result = _run(
        app,
        "user",
        "add",
        "--workspace",
        created["slug"],
        "--email",
        "c@example.com",
        "--role",
        "closer",
        "--password",
        "closer pass 77",
    )
    assert result.exit_code == 0, result.stderr
    membership = db.session.get(Membership, json.loads(result.stdout)["membership_id"])
    assert membership.role == Role.CLOSER
    signed_in = client.post("/login", data={"email": "c@example.com", "password": "closer pass 77"})
    assert signed_in.status_code == 302
    again = _run(
        app,
        "user",
        "add",
        "--workspace",
        created["slug"],
        "--email",
        "c@example.com",
        "--role",
        "closer",
        "--password",
        "closer pass 77",
    )
    assert again.exit_code != 0 and "already a member" in again.stderr
    unknown = _run(
        app,
        "user",
        "add",
        "--workspace",
        "nope",
        "--email",
        "d@example.com",
        "--role",
        "closer",
        "--password",
        "closer pass 77",
    )
    assert unknown.exit_code != 0 and "no workspace" in unknown.stderr


def test_user_add_refuses_an_unknown_role(app, ctx):
    result = _run(
        app,
        "user",
        "add",
        "--workspace",
        "x",
        "--email",
        "d@example.com",
        "--role",
        "king",
        "--password",
        "closer pass 77",
    )
    assert result.exit_code != 0


def test_seed_demo_builds_a_realistic_workspace_once(app, client, ctx):
    first = json.loads(_run(app, "seed-demo").stdout)
    second = json.loads(_run(app, "seed-demo").stdout)
    assert first["created"] is True and second["created"] is False
    assert first["id"] == second["id"]
    tenant_filter = {"all_tenants": True}
    assert (
        db.session.scalar(sa.select(sa.func.count(Source.id)).execution_options(**tenant_filter))
        >= 3
    )
    assert (
        db.session.scalar(sa.select(sa.func.count(Lead.id)).execution_options(**tenant_filter))
        >= 30
    )
    email, password = next(iter(first["login"].items()))
    assert client.post("/login", data={"email": email, "password": password}).status_code == 302
    assert "Northwind Bakery Supplies" in client.get("/").text
