"""All models, imported so that mappers and Alembic see every table."""

from app.models.activity import (
    AuditEntry,
    ChurnReason,
    Conflict,
    ConflictKind,
    ConflictStatus,
    EventKind,
    LeadEvent,
    LostReason,
    Promise,
    PromiseStatus,
    StageVisit,
    Touch,
    TouchChannel,
)
from app.models.base import Base, TenantScoped, utcnow
from app.models.billing import (
    BillingNotice,
    NoticeKind,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from app.models.engine import Channel, MessageKind, MessageStatus, Notification, OutboxMessage
from app.models.imports import ImportJob, ImportMode, ImportRejection, ImportStatus
from app.models.intake import InboxItem, InboxStatus, IntakeKey
from app.models.pipeline import Contact, Lead, Phase, Source, SourceKind, Stage
from app.models.telegram import (
    DeliveryPreference,
    TelegramLink,
    TelegramLinkToken,
    TelegramUpdate,
    Topic,
)
from app.models.tenant import Invitation, Membership, Role, Tenant
from app.models.user import PendingSignup, User

__all__ = [
    "AuditEntry",
    "Base",
    "BillingNotice",
    "Channel",
    "DeliveryPreference",
    "Conflict",
    "ConflictKind",
    "ConflictStatus",
    "EventKind",
    "LeadEvent",
    "ChurnReason",
    "LostReason",
    "MessageKind",
    "MessageStatus",
    "NoticeKind",
    "Notification",
    "OutboxMessage",
    "Promise",
    "PromiseStatus",
    "StageVisit",
    "Touch",
    "TouchChannel",
    "Contact",
    "ImportJob",
    "ImportMode",
    "ImportRejection",
    "ImportStatus",
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
    "StripeEvent",
    "Subscription",
    "SubscriptionStatus",
    "TelegramLink",
    "TelegramLinkToken",
    "TelegramUpdate",
    "Tenant",
    "TenantScoped",
    "Topic",
    "PendingSignup",
    "User",
    "utcnow",
]
