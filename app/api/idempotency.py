"""``Idempotency-Key`` on every create: a repeat within a day gets the first answer again.

The key is claimed before the work, in its own committed row, so two requests with one
key at once cannot both create: the second is told the first is in progress (409). A
create that fails frees its key for a retry; one that succeeds stores its answer.
"""

import hashlib
from datetime import timedelta
from functools import wraps

import sqlalchemy as sa
from flask import current_app, g, json, request
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app import clock
from app.api.problems import Problem
from app.extensions import db
from app.models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)
IN_PROGRESS = 0


def _request_hash() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data())
    return digest.hexdigest()


def _replay(row: IdempotencyKey):
    response = current_app.response_class(
        json.dumps(row.body), status=row.status, mimetype="application/json"
    )
    response.headers["Idempotent-Replayed"] = "true"
    if row.location:
        response.headers["Location"] = row.location
    return response


def _claim(key: str, fingerprint: str):
    """Our own claim on the key, or the stored answer of the first request."""
    token = g.api_token
    now = clock.now()
    db.session.execute(
        sa.delete(IdempotencyKey).where(
            IdempotencyKey.token_id == token.id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at < now - KEPT_FOR,
        )
    )
    row = IdempotencyKey(
        tenant_id=token.tenant_id,
        token_id=token.id,
        key=key,
        request_hash=fingerprint,
        status=IN_PROGRESS,
        body={},
        created_at=now,
    )
    db.session.add(row)
    try:
        db.session.commit()
        return row, None
    except IntegrityError:
        db.session.rollback()
    first = db.session.scalar(
        sa.select(IdempotencyKey).where(
            IdempotencyKey.token_id == token.id, IdempotencyKey.key == key
        )
    )
    if first is None:  # freed a moment ago: the caller may simply try again
        raise Problem(409, _("A request with this Idempotency-Key is in progress."))
    if first.request_hash != fingerprint:
        raise Problem(
            422,
            _("This Idempotency-Key was used for a different request."),
            {"Idempotency-Key": [_("Use a new key for a new request.")]},
        )
    if first.status == IN_PROGRESS:
        raise Problem(409, _("A request with this Idempotency-Key is in progress."))
    return None, _replay(first)


def idempotent(view):
    """Wrap a create: with a key, run it once and answer repeats with its first answer."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return view(*args, **kwargs)
        if len(key) > 255:
            raise Problem(
                422,
                _("Some fields are not valid."),
                {"Idempotency-Key": [_("At most 255 characters.")]},
            )
        claim, replay = _claim(key, _request_hash())
        if replay is not None:
            return replay
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            db.session.rollback()
            db.session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == claim.id))
            db.session.commit()
            raise
        if 200 <= response.status_code < 300:
            db.session.execute(
                sa.update(IdempotencyKey)
                .where(IdempotencyKey.id == claim.id)
                .values(
                    status=response.status_code,
                    body=response.get_json(),
                    location=response.headers.get("Location"),
                )
            )
        else:
            db.session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == claim.id))
        db.session.commit()
        return response

    return wrapped
