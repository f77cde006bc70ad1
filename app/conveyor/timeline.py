"""A lead's timeline: what happened to it (typed events, read as sentences by
``conveyor/_event.html``) and the posts it came from or that joined it (``_post.html``)."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import InboxItem, Lead
from app.models.activity import LeadEvent

TIMELINE_LENGTH = 100


@dataclass
class TimelineLine:
    """One line: something that happened, or a post that arrived."""

    at: datetime
    event: LeadEvent | None = None
    post: InboxItem | None = None


def lines(lead: Lead) -> list[TimelineLine]:
    """The latest events and posts, newest first, with their actors and sources (four
    queries, bounded)."""
    events = db.session.scalars(
        sa.select(LeadEvent)
        .where(LeadEvent.tenant_id == lead.tenant_id, LeadEvent.lead_id == lead.id)
        .options(selectinload(LeadEvent.actor))
        .order_by(LeadEvent.created_at.desc(), LeadEvent.id.desc())
        .limit(TIMELINE_LENGTH)
    )
    posts = db.session.scalars(
        sa.select(InboxItem)
        .where(InboxItem.tenant_id == lead.tenant_id, InboxItem.lead_id == lead.id)
        .options(selectinload(InboxItem.source))
        .order_by(InboxItem.received_at.desc(), InboxItem.id.desc())
        .limit(TIMELINE_LENGTH)
    )
    found = [TimelineLine(event.created_at, event=event) for event in events]
    found += [TimelineLine(post.received_at, post=post) for post in posts]
    found.sort(key=lambda line: line.at, reverse=True)
    return found[:TIMELINE_LENGTH]
