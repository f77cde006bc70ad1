"""bounded search edges: companies walked nearest-first (GiST), names and companies by
their first letters and companies counted on a btree

Revision ID: 0021_search_bounded
Revises: 0020_search_paths
Create Date: 2026-12-10 09:00:00

- ``contact.search_company`` moves from GIN to GiST (with the tenant, btree_gist): a query
  that is itself a common company name ("company 12", every company alike) walked every
  match to group them (1-1.8 s at 200,000 people); nearest-first it stops after a few
  hundred rows;
- ``(tenant_id, search_company COLLATE "C")`` (btree): the people of each company shown
  are counted on it (index only), and a two-letter query finds the companies starting
  with it by skipping from one company to the next;
- ``(tenant_id, search_name COLLATE "C", id)`` (btree): a two-letter query has no trigram
  of its own (a LIKE '%jo%' read the whole trigram index): it finds the names starting
  with it, in order.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0021_search_bounded"
down_revision = "0020_search_paths"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_contact_search_company", table_name="contact")
    op.create_index(
        "ix_contact_search_company",
        "contact",
        ["tenant_id", "search_company"],
        postgresql_using="gist",
        postgresql_ops={"search_company": "gist_trgm_ops(siglen=256)"},
    )
    op.create_index(
        "ix_contact_company_start",
        "contact",
        ["tenant_id", "search_company"],
        postgresql_ops={"search_company": 'COLLATE "C"'},
    )
    op.create_index(
        "ix_contact_name_start",
        "contact",
        ["tenant_id", "search_name", "id"],
        postgresql_ops={"search_name": 'COLLATE "C"'},
    )


def downgrade():
    op.drop_index("ix_contact_name_start", table_name="contact")
    op.drop_index("ix_contact_company_start", table_name="contact")
    op.drop_index("ix_contact_search_company", table_name="contact")
    op.create_index(
        "ix_contact_search_company",
        "contact",
        ["search_company"],
        postgresql_using="gin",
        postgresql_ops={"search_company": "gin_trgm_ops"},
    )
