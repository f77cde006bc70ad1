"""intake holes: what each lead's post carried, reused keys, refused posts counted per
source and minute

Revision ID: 0016_intake_holes
Revises: 0015_api_webhooks
Create Date: 2026-12-08 12:00:00

``lead.posted`` keeps the contact details a lead's post carried (a lead generator sees
them instead of the contact the lead joined); leads built before take them from their
inbox row. ``intake_key.contact`` scopes a key of an unsigned source to the post's
contact details; keys claimed before have none, so a repeat of such an old post with
contact details is kept as a new lead flagged as a reused key, never lost.
``intake_minute`` counts a source's refused posts beyond what the inbox keeps.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0016_intake_holes"
down_revision = "0015_api_webhooks"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("posted", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("key_reused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.alter_column("key_reused", server_default=None)
    op.execute(
        """
        UPDATE lead SET posted = json_build_object(
            'name', coalesce(nullif(item.fields->>'name', ''), nullif(item.fields->>'email', ''),
                nullif(item.fields->>'phone', ''), '?'),
            'email', item.fields->>'email',
            'phone', item.fields->>'phone', 'company', item.fields->>'company')
        FROM inbox_item AS item
        WHERE item.lead_id = lead.id AND item.status = 'accepted'
        """
    )

    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contact", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.alter_column("contact", server_default=None)
        batch_op.drop_constraint("uq_intake_key_tenant_id_source_id_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_intake_key_tenant_id_source_id_key_contact",
            ["tenant_id", "source_id", "key", "contact"],
        )

    op.create_table(
        "intake_minute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused_posts", sa.Integer(), nullable=False),
        sa.Column("refused_bytes", sa.BigInteger(), nullable=False),
        sa.Column("counted_posts", sa.Integer(), nullable=False),
        sa.Column("counted_bytes", sa.BigInteger(), nullable=False),
        sa.Column("counted_by_status", postgresql.JSONB(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
            name=op.f("fk_intake_minute_source_id_source"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_intake_minute_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_minute")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_id",
            "minute",
            name=op.f("uq_intake_minute_tenant_id_source_id_minute"),
        ),
    )


def downgrade():
    op.drop_table("intake_minute")
    op.execute(
        "DELETE FROM intake_key AS k USING intake_key AS o "
        "WHERE o.tenant_id = k.tenant_id AND o.source_id = k.source_id AND o.key = k.key "
        "AND o.id < k.id"
    )
    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.drop_constraint("uq_intake_key_tenant_id_source_id_key_contact", type_="unique")
        batch_op.create_unique_constraint(
            "uq_intake_key_tenant_id_source_id_key", ["tenant_id", "source_id", "key"]
        )
        batch_op.drop_column("contact")
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_column("key_reused")
        batch_op.drop_column("posted")
