"""search_text keeps one trigram index: the GIN one (0017) goes, the GiST one stays

Revision ID: 0022_one_search_text_index
Revises: 0021_search_bounded
Create Date: 2026-12-10 10:00:00

``contact.search_text`` had a GIN and a GiST trigram index. Since the LIKE path of the
header search takes the first rows found and ranks them itself, and quick add's
look-alikes walk ``search_name`` instead of asking ``<%`` of ``search_text``, the only
query either answers is ``search_text LIKE '%…%'`` (the people a query is part of, a
phone's digits), and both answer it: the planner took one or the other query by query.
Every contact written paid for both (about 13 us of the backend's CPU each per imported
row). The GiST one stays: it leads with the tenant, so with other workspaces in the
table a LIKE stays inside the searcher's (at 150,000 people beside 450,000 of another
workspace, a phone 0.3 ms on it and 4-5 ms on GIN); with one workspace either takes a
few ms.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0022_one_search_text_index"
down_revision = "0021_search_bounded"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_contact_search_text", table_name="contact")


def downgrade():
    op.create_index(
        "ix_contact_search_text",
        "contact",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
