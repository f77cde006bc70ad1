"""How much of a source's refused posts the inbox keeps: a public address cannot fill
the database.

A post that is or could become a lead is always kept whole: accepted posts, repeats
(under the rate limit), posts with fields to correct (422) and posts intake failed to
judge. Refused ones (unreadable, too large, another content type, a bad signature,
over the rate limit, a bot) are kept whole while the source's refusals of the minute
stay within ``REFUSED_POSTS_KEPT_PER_MINUTE`` posts and ``REFUSED_BYTES_KEPT_PER_MINUTE``
bytes; past that they are only counted in the minute's ``IntakeMinute`` row (how many,
how many bytes, by answer), which the inbox shows.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert

from app import clock
from app.extensions import db
from app.models import InboxItem, InboxStatus, IntakeMinute
from app.tenancy import ALL_TENANTS

REFUSED_POSTS_KEPT_PER_MINUTE = 20
REFUSED_BYTES_KEPT_PER_MINUTE = 256 * 1024
# Rejections that a correction can turn into a lead: never capped.
CORRECTABLE = frozenset({"invalid_fields", "not_judged"})


def is_refused(item: InboxItem) -> bool:
    """A post that cannot become a lead as it stands (its sender was told why)."""
    if item.status == InboxStatus.SPAM:
        return True
    return item.status == InboxStatus.REJECTED and item.reason not in CORRECTABLE


def only_count(item: InboxItem) -> bool:
    """Count a refused post in its source's minute; True when it is past the minute's cap
    and must not be stored (it was counted instead). In the caller's transaction: the
    minute's row stays locked until it commits, so concurrent posts count in turn."""
    size = len(item.body)
    minute = clock.now().replace(second=0, microsecond=0)
    refused_posts, refused_bytes = db.session.execute(
        postgresql_insert(IntakeMinute)
        .values(
            tenant_id=item.tenant_id,
            source_id=item.source_id,
            minute=minute,
            refused_posts=1,
            refused_bytes=size,
            counted_posts=0,
            counted_bytes=0,
            counted_by_status={},
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "source_id", "minute"],
            set_={
                "refused_posts": IntakeMinute.refused_posts + 1,
                "refused_bytes": IntakeMinute.refused_bytes + size,
            },
        )
        .returning(IntakeMinute.refused_posts, IntakeMinute.refused_bytes)
    ).one()
    if (
        refused_posts <= REFUSED_POSTS_KEPT_PER_MINUTE
        and refused_bytes <= REFUSED_BYTES_KEPT_PER_MINUTE
    ):
        return False
    answer = str(item.http_status)
    by_status = IntakeMinute.counted_by_status
    db.session.execute(
        sa.update(IntakeMinute)
        .where(
            IntakeMinute.tenant_id == item.tenant_id,
            IntakeMinute.source_id == item.source_id,
            IntakeMinute.minute == minute,
        )
        .values(
            counted_posts=IntakeMinute.counted_posts + 1,
            counted_bytes=IntakeMinute.counted_bytes + size,
            counted_by_status=by_status.op("||")(
                sa.func.jsonb_build_object(
                    answer, sa.func.coalesce(by_status[answer].astext.cast(sa.Integer), 0) + 1
                )
            ),
        )
        .execution_options(**ALL_TENANTS, synchronize_session=False)
    )
    return True
