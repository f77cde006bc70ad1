"""What the intake tests share (their ``shop`` fixture is in conftest.py): posting to a
source's address, counting rows across every workspace."""

import sqlalchemy as sa

from app.extensions import db

ALL = {"all_tenants": True}


def post(client, source, payload=None, **kwargs):
    """A post to the source's public intake address (JSON unless told otherwise)."""
    if payload is not None:
        kwargs.setdefault("json", payload)
    return client.post(f"/in/{source.intake_token}", **kwargs)


def count(model, *where):
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(model).where(*where).execution_options(**ALL)
    )
