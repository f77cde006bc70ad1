"""Operator commands. Each prints one JSON object and exits non-zero on bad input."""

import json
import sys

import click
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import Flask

from app import passwords
from app.extensions import db
from app.models import Membership, Role, SourceKind, Tenant
from app.workspace import services as workspace


def _fail(message: str) -> None:
    click.echo(json.dumps({"error": message}), err=True)
    sys.exit(1)


def _check_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        _fail(f"invalid email: {error}")


def _check_password(password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        _fail(f"password must be {passwords.MIN_LENGTH}-{passwords.MAX_LENGTH} characters")
    if passwords.is_common(password):
        _fail("password is too common")


def register(app: Flask) -> None:
    @app.cli.group("workspace")
    def workspace_group():
        """Workspaces."""

    @workspace_group.command("create")
    @click.option("--name", required=True)
    @click.option("--owner-email", required=True)
    @click.option("--owner-password", required=True)
    @click.option("--owner-name", default=None)
    @click.option("--language", type=click.Choice(["en", "ru"]), default="en")
    def create_workspace(name, owner_email, owner_password, owner_name, language):
        """Create a workspace and its owner (or give an existing user a new workspace)."""
        if not name.strip():
            _fail("name must not be empty")
        email = _check_email(owner_email)
        owner = workspace.find_user_by_email(email)
        if owner is None:
            _check_password(owner_password)
            owner = workspace.create_user(email, owner_name or email.split("@")[0], owner_password)
        elif not passwords.verify_password(owner.password_hash, owner_password):
            _fail("a user with this email exists and the password does not match")
        tenant = workspace.create_workspace(name, owner, language=language)
        db.session.commit()
        click.echo(json.dumps({"id": tenant.id, "slug": tenant.slug, "owner_id": owner.id}))

    @app.cli.group("user")
    def user_group():
        """Users."""

    @user_group.command("add")
    @click.option("--workspace", "slug", required=True)
    @click.option("--email", required=True)
    @click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
    @click.option("--password", required=True)
    @click.option("--name", default=None)
    def add_user(slug, email, role, password, name):
        """Add a member to a workspace."""
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            _fail(f"no workspace with slug {slug!r}")
        email = _check_email(email)
        user = workspace.find_user_by_email(email)
        if user is None:
            _check_password(password)
            user = workspace.create_user(email, name or email.split("@")[0], password)
        existing = db.session.scalar(
            sa.select(Membership).where(
                Membership.tenant_id == tenant.id, Membership.user_id == user.id
            )
        )
        if existing is not None:
            _fail(f"{email} is already a member of {slug}")
        membership = Membership(tenant_id=tenant.id, user_id=user.id, role=Role(role))
        db.session.add(membership)
        if user.last_tenant_id is None:
            user.last_tenant_id = tenant.id
        db.session.commit()
        click.echo(
            json.dumps(
                {
                    "user_id": user.id,
                    "membership_id": membership.id,
                    "workspace": slug,
                    "role": role,
                }
            )
        )

    @app.cli.group("source")
    def source_group():
        """Lead sources."""

    @source_group.command("create")
    @click.option("--workspace", "slug", required=True)
    @click.option("--name", required=True)
    @click.option(
        "--cost",
        "cost_minor",
        type=click.IntRange(min=0),
        default=0,
        help="cost per lead in minor units (cents)",
    )
    @click.option("--kind", type=click.Choice([k.value for k in SourceKind]), default="other")
    @click.option("--signed", is_flag=True, help="require Standard Webhooks signatures")
    @click.option(
        "--rate-limit",
        type=click.IntRange(min=1),
        default=600,
        help="most posts per minute before 429",
    )
    def create_source(slug, name, cost_minor, kind, signed, rate_limit):
        """Create a lead source and print its intake URL (and signing secret)."""
        from app.sources import services as sources

        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            _fail(f"no workspace with slug {slug!r}")
        if not name.strip():
            _fail("name must not be empty")
        try:
            source = sources.create_source(
                tenant,
                name,
                SourceKind(kind),
                cost_minor,
                signed=signed,
                rate_limit_per_minute=rate_limit,
            )
        except sources.SourceError as error:
            _fail(str(error))
        result = {"id": source.id, "intake_url": sources.intake_url(source)}
        if source.signing_secret:
            result["signing_secret"] = source.signing_secret
        click.echo(json.dumps(result))

    @app.cli.command("seed-demo")
    def seed_demo():
        """Create (once) a demo workspace with realistic sources, leads, deals and clients."""
        from app.demo import seed

        click.echo(json.dumps(seed()))
