"""All models, imported so that mappers and Alembic see every table."""

from app.models.base import Base, TenantScoped, utcnow
from app.models.intake import InboxItem, InboxStatus, IntakeKey
from app.models.pipeline import Contact, Lead, Phase, Source, SourceKind, Stage
from app.models.tenant import Invitation, Membership, Role, Tenant
from app.models.user import User

__all__ = [
    "Base",
    "Contact",
    "InboxItem",
    "InboxStatus",
    "IntakeKey",
    "Invitation",
    "Lead",
    "Membership",
    "Phase",
    "Role",
    "Source",
    "SourceKind",
    "Stage",
    "Tenant",
    "TenantScoped",
    "User",
    "utcnow",
]
