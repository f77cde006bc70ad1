"""intake receipts: an accepted post is answered with an opaque receipt and built into a
lead later; idempotency keys name the receipt, pending posts have their own small index

Revision ID: 0011_intake_receipts
Revises: 0010_contact_lookup_indexes
Create Date: 2026-12-02 10:00:00

Every inbox row that became a lead gets a random receipt; a repeat (duplicate) shares
the receipt of the post it repeats. Each key takes the receipt of the post that
claimed it (found through the lead it named), or a fresh one when that post is gone,
so a repeat is still answered "duplicate" and never becomes a second lead.
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "0011_intake_receipts"
down_revision = "0010_contact_lookup_indexes"
branch_labels = None
depends_on = None

NEW_RECEIPT = "'r' || left(replace(gen_random_uuid()::text, '-', ''), 30)"


def upgrade():
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.alter_column("flagged", server_default=None)
    op.execute(f"UPDATE inbox_item SET receipt = {NEW_RECEIPT} WHERE status = 'accepted'")
    op.execute(
        "UPDATE inbox_item AS d SET receipt = a.receipt FROM inbox_item AS a "
        "WHERE d.status = 'duplicate' AND a.status = 'accepted' AND a.lead_id = d.lead_id"
    )
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_item_receipt"), ["receipt"], unique=False)
        batch_op.create_index(
            "ix_inbox_item_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
        )

    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE intake_key AS k SET receipt = i.receipt FROM inbox_item AS i "
        "WHERE i.status = 'accepted' AND i.lead_id = k.lead_id"
    )
    op.execute(f"UPDATE intake_key SET receipt = {NEW_RECEIPT} WHERE receipt IS NULL")
    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.alter_column("receipt", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint("fk_intake_key_lead_id_lead", type_="foreignkey")
        batch_op.drop_column("lead_id")


def downgrade():
    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_intake_key_lead_id_lead", "lead", ["lead_id"], ["id"], ondelete="CASCADE"
        )
    op.execute(
        "UPDATE intake_key AS k SET lead_id = i.lead_id FROM inbox_item AS i "
        "WHERE i.receipt = k.receipt AND i.status = 'accepted'"
    )
    with op.batch_alter_table("intake_key", schema=None) as batch_op:
        batch_op.drop_column("receipt")
    op.execute(
        "UPDATE inbox_item SET status = 'rejected', reason = 'not_built' WHERE status = 'pending'"
    )
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_item_pending", postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f("ix_inbox_item_receipt"))
        batch_op.drop_column("flagged")
        batch_op.drop_column("receipt")
