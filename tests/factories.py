"""Build tenants, members and leads through the same services the app uses."""

import itertools
import secrets

import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, Lead, Membership, Role, Source, SourceKind, Stage, Tenant, User
from app.workspace import services as workspace

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def workspace_with_owner(name: str | None = None, email: str | None = None, language: str = "en"):
    """(tenant, owner) — a new workspace whose owner signs in with ``PASSWORD``."""
    n = next(_counter)
    owner = workspace.create_user(email or f"owner{n}@example.com", f"Owner {n}", PASSWORD)
    tenant = workspace.create_workspace(name or f"Business {n}", owner, language=language)
    db.session.commit()
    return tenant, owner


def member(tenant: Tenant, role: Role, email: str | None = None, active: bool = True) -> User:
    n = next(_counter)
    user = workspace.find_user_by_email(email) if email else None
    if user is None:
        user = workspace.create_user(
            email or f"{role.value}{n}@example.com", f"Member {n}", PASSWORD
        )
    db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role, active=active))
    if user.last_tenant_id is None:
        user.last_tenant_id = tenant.id
    db.session.commit()
    return user


def membership_of(tenant: Tenant, user: User) -> Membership:
    return db.session.scalar(
        sa.select(Membership)
        .where(Membership.tenant_id == tenant.id, Membership.user_id == user.id)
        .execution_options(all_tenants=True)
    )


def source(tenant: Tenant, name: str | None = None, cost: int = 0) -> Source:
    row = Source(
        tenant_id=tenant.id,
        name=name or f"Source {next(_counter)}",
        kind=SourceKind.SITE_FORM,
        cost_per_lead_minor=cost,
        intake_token=secrets.token_urlsafe(24),
    )
    db.session.add(row)
    db.session.commit()
    return row


def lead(
    tenant: Tenant, stage_name: str = "New", owner: User | None = None, value: int = 0
) -> Lead:
    stage = db.session.scalar(
        sa.select(Stage)
        .where(Stage.tenant_id == tenant.id, Stage.name == stage_name)
        .execution_options(all_tenants=True)
    )
    n = next(_counter)
    contact = Contact(tenant_id=tenant.id, name=f"Contact {n}", email=f"contact{n}@example.org")
    db.session.add(contact)
    db.session.flush()
    row = Lead(
        tenant_id=tenant.id,
        contact_id=contact.id,
        stage_id=stage.id,
        title=f"Deal {n}",
        owner_id=owner.id if owner else None,
        value_minor=value,
    )
    db.session.add(row)
    db.session.commit()
    return row
