"""Declarative base with a constraint naming convention and shared column helpers."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from app import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """A datetime stored in UTC that always comes back timezone-aware.

    Stored as PostgreSQL's ``timestamptz``; values come back aware, converted to UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC value")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_class: type, length: int = 32) -> sa.Enum:
    """Store a StrEnum by its value (as VARCHAR with a CHECK), not by its member name."""
    return sa.Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class TenantScoped:
    """Marks a model as owned by one workspace.

    Every such row has a non-null, indexed ``tenant_id``. The ORM criteria
    listener in ``app.tenancy`` filters these models by the current tenant.
    A model whose own indexes all lead with ``tenant_id`` sets
    ``tenant_id_index = False``: one index less to write on every insert.
    """

    tenant_id_index = True

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(
            sa.ForeignKey("tenant.id", ondelete="CASCADE"),
            index=cls.tenant_id_index,
            nullable=False,
        )
