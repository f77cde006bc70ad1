"""churned clients: a client who stops buying is marked churned (when, why) and stays a
client; clients closed as lost before are churned instead

Revision ID: 0012_churned_clients
Revises: 0011_intake_receipts
Create Date: 2026-12-06 05:00:00

An account manager could close a won client as lost: the client left the base and
counted as junk against its source and partner. Such rows (won, then put in a lost
stage) go back to their workspace's first client stage as churned on the day they were
closed, their lost reason kept in the churn note, so the radar and the partner report
stop counting them against the source.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012_churned_clients"
down_revision = "0011_intake_receipts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("churned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("churn_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("churn_note", sa.String(length=500), nullable=True))
    op.execute(
        """
        UPDATE lead SET
            churned_at = coalesce(lead.closed_at, lead.won_at),
            churn_reason = 'other',
            churn_note = nullif(left(concat_ws(': ', lead.lost_reason, lead.lost_note), 500), ''),
            closed_at = lead.won_at,
            lost_reason = NULL,
            lost_note = NULL,
            next_touch_on = NULL,
            stage_id = (
                SELECT client.id FROM stage AS client
                WHERE client.tenant_id = lead.tenant_id AND client.phase = 'account'
                    AND NOT client.is_won AND NOT client.is_lost
                ORDER BY client.position LIMIT 1
            )
        FROM stage AS lost
        WHERE lost.id = lead.stage_id AND lost.is_lost AND lead.won_at IS NOT NULL
            AND EXISTS (
                SELECT 1 FROM stage AS client
                WHERE client.tenant_id = lead.tenant_id AND client.phase = 'account'
                    AND NOT client.is_won AND NOT client.is_lost
            )
        """
    )


def downgrade():
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_column("churn_note")
        batch_op.drop_column("churn_reason")
        batch_op.drop_column("churned_at")
