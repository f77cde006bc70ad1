"""intake indexes: contact lookups lead with the email or phone; no lone tenant index
where a composite index leads with the tenant

Revision ID: 0010_contact_lookup_indexes
Revises: 0009_stage_visits
Create Date: 2026-11-27 23:05:00

With the tenant first, an email lookup could be planned on the phone index (same
leading column) and then filter every contact of the workspace: PostgreSQL did so
while the table had no statistics yet, and intake slowed as contacts grew.
The lone tenant_id indexes of lead, inbox_item and intake_key duplicate the first
column of their composite indexes and cost a write on every lead.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010_contact_lookup_indexes'
down_revision = '0009_stage_visits'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_tenant_email')
        batch_op.drop_index('ix_contact_tenant_phone')
        batch_op.create_index('ix_contact_email_tenant', ['email', 'tenant_id'], unique=False)
        batch_op.create_index('ix_contact_phone_tenant', ['phone', 'tenant_id'], unique=False)
    for table in ('lead', 'inbox_item', 'intake_key'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_tenant_id')


def downgrade():
    for table in ('lead', 'inbox_item', 'intake_key'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_tenant_id', ['tenant_id'], unique=False)
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_phone_tenant')
        batch_op.drop_index('ix_contact_email_tenant')
        batch_op.create_index('ix_contact_tenant_phone', ['tenant_id', 'phone'], unique=False)
        batch_op.create_index('ix_contact_tenant_email', ['tenant_id', 'email'], unique=False)
