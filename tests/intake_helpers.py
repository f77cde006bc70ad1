"""What the intake tests share (their ``shop`` fixture is in conftest.py): posting to a
source's address, signing a post, counting rows across every workspace, finding the lead a
receipt became, building the inbox in several threads at once."""

import json
import threading
import time

import sqlalchemy as sa

from app.builder import inbox
from app.extensions import db
from app.intake import signing
from app.models import InboxItem, InboxStatus, Lead

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


def lead_of(response):
    """The lead a post's receipt became (once the builder has run)."""
    return db.session.scalar(
        sa.select(Lead)
        .join(InboxItem, InboxItem.lead_id == Lead.id)
        .where(InboxItem.receipt == response.json["id"], InboxItem.status == InboxStatus.ACCEPTED)
        .execution_options(**ALL)
    )


def signed_headers(secret, body: bytes, message_id="msg_1", timestamp=None) -> dict:
    """Standard Webhooks headers signing ``body`` with a source's secret."""
    timestamp = int(timestamp or time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def signed(secret, payload: dict, message_id: str) -> tuple[bytes, dict]:
    """A JSON post and its signed headers."""
    body = json.dumps(payload).encode()
    return body, signed_headers(secret, body, message_id)


def build_concurrently(app, builders: int, batch_size: int) -> list[Exception]:
    """Run the inbox's builder in ``builders`` threads started together until nothing is
    pending, as several workers would; the errors they met."""
    start = threading.Barrier(builders)
    errors = []

    def builder():
        with app.app_context():
            start.wait(10)
            try:
                while inbox.build_pending(batch_size=batch_size):
                    pass
            except Exception as error:  # noqa: BLE001 - reported to the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=builder) for _ in range(builders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors
