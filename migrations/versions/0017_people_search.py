"""people and search: trigram search over contacts, built-in hand-entry sources

Revision ID: 0017_people_search
Revises: 0016_intake_holes
Create Date: 2026-12-09 10:00:00

``conveyor_fold`` lower-cases, strips accents and reads ё as е, so "Алёна", "алена" and
"ALENA" fold alike; it is IMMUTABLE (unaccent with its dictionary named) so a stored
generated column can use it. ``contact.search_text`` folds a person's name, company,
email and phone digits into one string with a trigram GIN index: a search by any of them
(and by a misspelling, through word similarity) is one indexed lookup.
``source.manual_kind`` marks the built-in "Added by hand", "Phone call" and "Walk-in"
sources that quick add uses; their names are the owner's to change.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017_people_search"
down_revision = "0016_intake_holes"
branch_labels = None
depends_on = None

SEARCH_TEXT = (
    "conveyor_fold(coalesce(name, '') || ' ' || coalesce(company, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(replace(phone, '+', ''), ''))"
)


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION conveyor_fold(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary,
                                            translate($1, 'ёЁ', 'еЕ'))) $$
        """
    )
    op.add_column(
        "contact",
        sa.Column("search_text", sa.Text(), sa.Computed(SEARCH_TEXT, persisted=True)),
    )
    op.create_index(
        "ix_contact_search_text",
        "contact",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.add_column("source", sa.Column("manual_kind", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_source_tenant_manual_kind", "source", ["tenant_id", "manual_kind"], unique=True
    )


def downgrade():
    op.drop_index("ix_source_tenant_manual_kind", table_name="source")
    op.drop_column("source", "manual_kind")
    op.drop_index("ix_contact_search_text", table_name="contact")
    op.drop_column("contact", "search_text")
    op.execute("DROP FUNCTION IF EXISTS conveyor_fold(text)")
