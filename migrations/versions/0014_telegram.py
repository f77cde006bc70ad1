"""telegram: linked chats, one-time link tokens, received updates, channels per topic;
the outbox gets a channel (in the unique key) and the channel's own message id

Revision ID: 0014_telegram
Revises: 0013_pending_signups
Create Date: 2026-12-07 09:00:00

Every existing outbox row went by email, so ``channel`` starts as 'email' everywhere
and email rows keep their unique keys; Telegram rows add ":telegram" to theirs.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014_telegram"
down_revision = "0013_pending_signups"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=16), server_default="email", nullable=False)
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))

    op.create_table(
        "telegram_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_name", sa.String(length=200), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_telegram_link_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_link")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_telegram_link_chat_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_telegram_link_user_id")),
    )
    op.create_table(
        "telegram_link_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_telegram_link_token_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_link_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_telegram_link_token_token_hash")),
    )
    with op.batch_alter_table("telegram_link_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telegram_link_token_user_id"), ["user_id"], unique=False
        )
    op.create_table(
        "telegram_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_update")),
        sa.UniqueConstraint("update_id", name=op.f("uq_telegram_update_update_id")),
    )
    with op.batch_alter_table("telegram_update", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telegram_update_processed_at"), ["processed_at"], unique=False
        )
    op.create_table(
        "delivery_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_delivery_preference_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_delivery_preference_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_preference")),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "topic",
            name=op.f("uq_delivery_preference_tenant_id_user_id_topic"),
        ),
    )


def downgrade():
    op.drop_table("delivery_preference")
    with op.batch_alter_table("telegram_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telegram_update_processed_at"))
    op.drop_table("telegram_update")
    with op.batch_alter_table("telegram_link_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telegram_link_token_user_id"))
    op.drop_table("telegram_link_token")
    op.drop_table("telegram_link")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("external_id")
        batch_op.drop_column("channel")
