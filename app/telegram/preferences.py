"""Which channels a member wants each kind of message on, and the outbox rows that follow.

A member chooses per topic: email, Telegram or both. Without a choice it is email, or
both once their Telegram is linked. Telegram counts only while the feature is on and
their link works; otherwise everything goes by email, as before Telegram existed.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.models import (
    Channel,
    DeliveryPreference,
    Membership,
    MessageKind,
    TelegramLink,
    Topic,
)
from app.policy import allows
from app.telegram.bot_api import enabled
from app.tenancy import ALL_TENANTS

EMAIL, TELEGRAM, BOTH = "email", "telegram", "both"
CHOICES = {
    EMAIL: {Channel.EMAIL},
    TELEGRAM: {Channel.TELEGRAM},
    BOTH: {Channel.EMAIL, Channel.TELEGRAM},
}
CHOICE_LABELS = {EMAIL: _l("Email"), TELEGRAM: _l("Telegram"), BOTH: _l("Both")}
TOPIC_LABELS = {
    Topic.DIGEST: _l("Morning digest"),
    Topic.TOUCHES: _l("Touch reminders"),
    Topic.DECISIONS: _l("Decision-window reminders"),
    Topic.ALERTS: _l("Owner alerts"),
}
TOPIC_OF = {
    MessageKind.DIGEST: Topic.DIGEST,
    MessageKind.TOUCH_DUE: Topic.TOUCHES,
    MessageKind.TOUCH_SCHEDULED: Topic.TOUCHES,
    MessageKind.DECISION_WINDOW: Topic.DECISIONS,
    MessageKind.OWNER_ALERT: Topic.ALERTS,
}
# Owner alerts are emailed by the radar's own job (app.tasks.radar), not the outbox.
OUTBOX_EMAIL_KINDS = frozenset(TOPIC_OF) - {MessageKind.OWNER_ALERT}


def topics_for(membership: Membership) -> list[Topic]:
    """The topics this member receives (alerts only where the role receives them)."""
    topics = [Topic.DIGEST, Topic.TOUCHES, Topic.DECISIONS]
    if allows(membership, "alerts.receive"):
        topics.append(Topic.ALERTS)
    return topics


def usable_link(user_id: int) -> TelegramLink | None:
    """The person's working Telegram chat, if the feature is on and it was not blocked."""
    if not enabled():
        return None
    return db.session.scalar(
        sa.select(TelegramLink).where(
            TelegramLink.user_id == user_id, TelegramLink.disabled_at.is_(None)
        )
    )


def choices(tenant_id: int, user_id: int) -> dict[Topic, str]:
    """The member's stored choice per topic (topics without one are left out)."""
    rows = db.session.execute(
        sa.select(DeliveryPreference.topic, DeliveryPreference.channels)
        .where(DeliveryPreference.tenant_id == tenant_id, DeliveryPreference.user_id == user_id)
        .execution_options(**ALL_TENANTS)
    ).all()
    return {Topic(topic): value for topic, value in rows}


def choice_for(stored: dict[Topic, str], topic: Topic, linked: bool) -> str:
    if not linked:
        return EMAIL
    return stored.get(topic, BOTH)


def channels_for(tenant_id: int, user_id: int, topic: Topic) -> set[Channel]:
    linked = usable_link(user_id) is not None
    return CHOICES[choice_for(choices(tenant_id, user_id), topic, linked)]


def save(membership: Membership, wanted: dict[str, str]) -> None:
    """Store the member's choices; unknown topics and values are ignored."""
    stored = {
        row.topic: row
        for row in db.session.scalars(
            sa.select(DeliveryPreference).where(
                DeliveryPreference.tenant_id == membership.tenant_id,
                DeliveryPreference.user_id == membership.user_id,
            )
        )
    }
    for topic in topics_for(membership):
        value = wanted.get(topic.value)
        if value not in CHOICES:
            continue
        if topic in stored:
            stored[topic].channels = value
        else:
            db.session.add(
                DeliveryPreference(
                    tenant_id=membership.tenant_id,
                    user_id=membership.user_id,
                    topic=topic,
                    channels=value,
                )
            )
    db.session.commit()


def fan_out(rows: list[dict]) -> list[dict]:
    """One outbox row per channel the recipient wants, the channel in its unique key.

    Email rows keep the key they always had. A member who turned engine email off (the
    digest's unsubscribe) gets no email digest row, as before; Telegram is unaffected.
    """
    if not rows:
        return rows
    pairs = {(row["tenant_id"], row["user_id"]) for row in rows}
    no_email_digest = _email_opt_outs(pairs) if _has_digest(rows) else set()
    linked, stored = _telegram_choices(pairs) if enabled() else (set(), {})
    out = []
    for row in rows:
        kind = MessageKind(row["kind"])
        pair = (row["tenant_id"], row["user_id"])
        wanted = CHOICES[choice_for(stored.get(pair, {}), TOPIC_OF[kind], row["user_id"] in linked)]
        email_off = kind == MessageKind.DIGEST and pair in no_email_digest
        if Channel.EMAIL in wanted and kind in OUTBOX_EMAIL_KINDS and not email_off:
            out.append({**row, "channel": Channel.EMAIL.value})
        if Channel.TELEGRAM in wanted:
            key = f"{row['unique_key']}:{Channel.TELEGRAM.value}"
            out.append({**row, "channel": Channel.TELEGRAM.value, "unique_key": key})
    return out


def _has_digest(rows: list[dict]) -> bool:
    return any(row["kind"] == MessageKind.DIGEST.value for row in rows)


def _email_opt_outs(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {
        (tenant_id, user_id)
        for tenant_id, user_id in db.session.execute(
            sa.select(Membership.tenant_id, Membership.user_id)
            .where(
                sa.tuple_(Membership.tenant_id, Membership.user_id).in_(pairs),
                Membership.digest_opt_out.is_(True),
            )
            .execution_options(**ALL_TENANTS)
        )
    }


def _telegram_choices(pairs: set[tuple[int, int]]):
    """Who among the recipients has a working link, and their stored choices."""
    linked = set(
        db.session.scalars(
            sa.select(TelegramLink.user_id).where(
                TelegramLink.user_id.in_({user_id for _, user_id in pairs}),
                TelegramLink.disabled_at.is_(None),
            )
        )
    )
    stored: dict[tuple[int, int], dict[Topic, str]] = {}
    if not linked:
        return linked, stored
    for tenant_id, user_id, topic, value in db.session.execute(
        sa.select(
            DeliveryPreference.tenant_id,
            DeliveryPreference.user_id,
            DeliveryPreference.topic,
            DeliveryPreference.channels,
        )
        .where(DeliveryPreference.user_id.in_(linked))
        .execution_options(**ALL_TENANTS)
    ):
        stored.setdefault((tenant_id, user_id), {})[Topic(topic)] = value
    return linked, stored


def wants_email(tenant_id: int, user_id: int, topic: Topic) -> bool:
    return Channel.EMAIL in channels_for(tenant_id, user_id, topic)
