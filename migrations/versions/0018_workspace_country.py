"""workspace country: where the business is, from which its phone region follows; a
pending signup keeps the country and timezone it was asked for

Revision ID: 0018_workspace_country
Revises: 0017_people_search
Create Date: 2026-12-08 14:00:00

Phone numbers without a country code were read in a region guessed from the currency
(then the language). Workspaces made before take their country from that same guess.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0018_workspace_country"
down_revision = "0017_people_search"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), server_default="US", nullable=False)
        )
        batch_op.alter_column("country", server_default=None)
    op.execute(
        """
        UPDATE tenant SET country = CASE currency
            WHEN 'RUB' THEN 'RU' WHEN 'KZT' THEN 'KZ' WHEN 'UAH' THEN 'UA'
            WHEN 'BYN' THEN 'BY' WHEN 'GBP' THEN 'GB' WHEN 'USD' THEN 'US'
            WHEN 'CAD' THEN 'CA' WHEN 'AUD' THEN 'AU' WHEN 'INR' THEN 'IN'
            WHEN 'CHF' THEN 'CH' WHEN 'PLN' THEN 'PL'
            ELSE CASE language WHEN 'ru' THEN 'RU' ELSE 'US' END
        END
        """
    )
    with op.batch_alter_table("pending_signup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("pending_signup", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("country")
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_column("country")
