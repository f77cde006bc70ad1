"""pending signups: a signup waits for its address to confirm it by the emailed link

Revision ID: 0013_pending_signups
Revises: 0012_churned_clients
Create Date: 2026-12-06 05:30:00

The signup form said "An account with this email exists", telling anyone which
addresses have accounts. Now it answers the same for every address: a new address gets
a link that creates the workspace, an address with an account gets an email saying
someone tried to sign up with it.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013_pending_signups"
down_revision = "0012_churned_clients"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pending_signup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("business_name", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_signup")),
    )
    with op.batch_alter_table("pending_signup", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_signup_email"), ["email"], unique=False)


def downgrade():
    with op.batch_alter_table("pending_signup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_signup_email"))
    op.drop_table("pending_signup")
