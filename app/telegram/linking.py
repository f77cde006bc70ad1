"""Linking a person's Telegram chat: a one-time deep link from the Account page.

The token travels in ``https://t.me/<bot>?start=<token>``; only its SHA-256 is stored.
It is good for 15 minutes and once: ``/start <token>`` from a chat links that chat.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import TelegramLink, TelegramLinkToken, User
from app.telegram import bot_api

VALID_FOR = timedelta(minutes=15)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_link(user: User) -> str:
    """A fresh deep link for the user (Telegram allows 64 characters of A-Z a-z 0-9 _ -)."""
    username = bot_api.bot_username()
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.session.add(
        TelegramLinkToken(
            user_id=user.id, token_hash=_hash(token), expires_at=now + VALID_FOR, created_at=now
        )
    )
    db.session.commit()
    return f"https://t.me/{username}?start={token}"


def link_chat(token: str, chat_id: int, telegram_name: str | None, now: datetime) -> User | None:
    """Use the token to link the chat; None when it is unknown, used or expired.

    The row is taken with a compare-and-set, so a token replayed at once links once.
    """
    used = db.session.execute(
        sa.update(TelegramLinkToken)
        .where(
            TelegramLinkToken.token_hash == _hash(token),
            TelegramLinkToken.used_at.is_(None),
            TelegramLinkToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(TelegramLinkToken.user_id)
    ).first()
    if used is None:
        return None
    user = db.session.get(User, used.user_id)
    # One chat, one person: a chat linked before to someone else moves to this person.
    db.session.execute(
        sa.delete(TelegramLink).where(
            TelegramLink.chat_id == chat_id, TelegramLink.user_id != user.id
        )
    )
    link = db.session.scalar(sa.select(TelegramLink).where(TelegramLink.user_id == user.id))
    if link is None:
        link = TelegramLink(user_id=user.id, created_at=now)
        db.session.add(link)
    link.chat_id = chat_id
    link.telegram_name = (telegram_name or "")[:200] or None
    link.linked_at = now
    link.disabled_at = link.disabled_reason = None
    db.session.commit()
    return user


def sender_locale(sender: dict) -> str:
    """A stranger's language, from their Telegram app (English unless it is Russian)."""
    return "ru" if str(sender.get("language_code") or "").startswith("ru") else "en"


def link_of(user: User) -> TelegramLink | None:
    return db.session.scalar(sa.select(TelegramLink).where(TelegramLink.user_id == user.id))


def linked_user(chat_id: int) -> User | None:
    """The person whose working link is this chat."""
    return db.session.scalar(
        sa.select(User)
        .join(TelegramLink, TelegramLink.user_id == User.id)
        .where(TelegramLink.chat_id == chat_id, TelegramLink.disabled_at.is_(None))
    )


def unlink(user: User) -> None:
    db.session.execute(sa.delete(TelegramLink).where(TelegramLink.user_id == user.id))
    db.session.commit()
