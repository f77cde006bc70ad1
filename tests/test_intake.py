"""The public intake endpoint: every answer it documents, and nothing ever lost."""

import json
import os
import threading
import time

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.intake import fast, signing
from app.intake import services as intake_services
from app.models import (
    Contact,
    InboxItem,
    InboxStatus,
    IntakeKey,
    Lead,
    LeadEvent,
    Role,
    Stage,
)
from app.sources import services as sources
from app.workspace import services as workspace

ALL = {"all_tenants": True}
POSTGRESQL = (os.environ.get("DATABASE_URL") or "").startswith("postgresql")


@pytest.fixture
def shop(make):
    tenant, owner = make.workspace_with_owner(name="Shop")
    source = sources.create_source(tenant, "Site", "site_form")
    return tenant, owner, source


def _post(client, source, payload=None, **kwargs):
    if payload is not None:
        kwargs.setdefault("json", payload)
    return client.post(f"/in/{source.intake_token}", **kwargs)


def _count(model, *where):
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(model).where(*where).execution_options(**ALL)
    )


def _leads(source):
    return db.session.scalars(
        sa.select(Lead).where(Lead.source_id == source.id).execution_options(**ALL)
    ).all()


def _inbox(source):
    return db.session.scalars(
        sa.select(InboxItem)
        .where(InboxItem.source_id == source.id)
        .order_by(InboxItem.id)
        .execution_options(**ALL)
    ).all()


def test_a_json_post_becomes_a_lead_in_the_first_stage_with_everything_kept(client, shop):
    tenant, owner, source = shop
    response = _post(
        client,
        source,
        {
            "name": "Anna Petrova",
            "email": "Anna@Example.com",
            "phone": "+7 912 345-67-89",
            "company": "Corner Café",
            "message": "20 kg flour weekly",
            "decision_date": "2026-12-15",
            "budget": "500/month",
            "utm_source": "google",
            "utm_campaign": "winter",
            "shoe_size": "38",
        },
    )
    assert response.status_code == 201
    assert response.json["status"] == "created"
    lead = db.session.get(Lead, response.json["id"])
    assert lead.tenant_id == tenant.id and lead.source_id == source.id
    assert db.session.get(Stage, lead.stage_id).name == "New"
    assert lead.contact.email == "anna@example.com" and lead.contact.phone == "+79123456789"
    assert lead.utm == {"utm_source": "google", "utm_campaign": "winter"}
    assert lead.extra == {"shoe_size": "38"}
    assert str(lead.decision_date) == "2026-12-15" and lead.message == "20 kg flour weekly"
    assert lead.owner_id == owner.id  # no lead generators yet: the owner gets it
    [item] = _inbox(source)
    assert (
        item.status == InboxStatus.ACCEPTED and item.lead_id == lead.id and item.http_status == 201
    )
    assert json.loads(item.body)["name"] == "Anna Petrova"


@pytest.mark.parametrize("encoding", ["form", "multipart"])
def test_form_encoded_posts_are_accepted(client, shop, encoding):
    _, _, source = shop
    data = {"name": "Boris", "phone": "+7 (912) 000-11-22"}
    if encoding == "multipart":
        response = _post(client, source, data=data, content_type="multipart/form-data")
    else:
        response = _post(client, source, data=data)
    assert response.status_code == 201, response.json
    assert db.session.get(Lead, response.json["id"]).contact.name == "Boris"


@pytest.mark.parametrize(
    "headers,payload",
    [
        ({"Idempotency-Key": "k-1"}, {"email": "a@example.com"}),
        ({"webhook-id": "msg_1"}, {"email": "a@example.com"}),
        ({}, {"email": "a@example.com", "external_id": "crm-77"}),
    ],
)
def test_a_repeated_post_is_the_same_lead(client, shop, headers, payload):
    _, _, source = shop
    first = _post(client, source, payload, headers=headers)
    second = _post(client, source, payload, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json == {"id": first.json["id"], "status": "duplicate"}
    assert _count(Lead, Lead.source_id == source.id) == 1
    assert [i.status for i in _inbox(source)] == [InboxStatus.ACCEPTED, InboxStatus.DUPLICATE]


def test_concurrent_identical_posts_create_one_lead(app, shop):
    _, _, source = shop
    url = f"/in/{source.intake_token}"
    answers = []

    def post():
        client = app.test_client()
        answers.append(
            client.post(
                url, json={"email": "race@example.com"}, headers={"Idempotency-Key": "same"}
            )
        )

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [201]
    assert len({a.json["id"] for a in answers}) == 1
    assert _count(Lead, Lead.source_id == source.id) == 1
    assert _count(InboxItem, InboxItem.source_id == source.id) == 8


def test_a_known_person_gets_a_new_inquiry_on_the_same_contact(client, shop):
    tenant, _, source = shop
    other = sources.create_source(tenant, "Partner", "partner")
    first = _post(client, source, {"name": "Vera", "email": "vera@example.com"})
    by_phone_first = _post(client, source, {"name": "Gleb", "phone": "+44 20 7946 0958"})
    again_by_email = _post(client, other, {"name": "Vera P.", "email": "VERA@example.com"})
    again_by_phone = _post(client, other, {"phone": "+442079460958"})
    assert {r.status_code for r in (first, by_phone_first, again_by_email, again_by_phone)} == {201}
    lead_a, lead_b = (
        db.session.get(Lead, first.json["id"]),
        db.session.get(Lead, again_by_email.json["id"]),
    )
    assert lead_a.id != lead_b.id and lead_a.contact_id == lead_b.contact_id
    assert (
        db.session.get(Lead, again_by_phone.json["id"]).contact_id
        == db.session.get(Lead, by_phone_first.json["id"]).contact_id
    )
    assert _count(Contact, Contact.tenant_id == tenant.id) == 2


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"name": "No way to reach"}, "contact"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"email": "a@example.com", "decision_date": "next tuesday"}, "decision_date"),
        ({"email": "a@example.com", "name": "x" * 201}, "name"),
    ],
)
def test_bad_fields_get_422_with_the_field_and_stay_in_the_inbox(client, shop, payload, field):
    _, _, source = shop
    response = _post(client, source, payload)
    assert response.status_code == 422
    assert field in response.json["fields"] and response.json["error"]
    [item] = _inbox(source)
    assert item.status == InboxStatus.REJECTED and item.reason == "invalid_fields"
    assert _count(Lead, Lead.source_id == source.id) == 0


@pytest.mark.parametrize(
    "body,content_type,status,reason",
    [
        (b"{not json", "application/json", 400, "unparseable"),
        (b"[1, 2]", "application/json", 400, "unparseable"),
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400, "unparseable"),
        (b"name=x", "text/plain", 415, "unsupported_type"),
        (
            b'{"email": "a@example.com", "pad": "' + b"x" * 70000 + b'"}',
            "application/json",
            413,
            "too_large",
        ),
    ],
)
def test_unreadable_posts_are_refused_and_kept(client, shop, body, content_type, status, reason):
    _, _, source = shop
    response = _post(client, source, data=body, content_type=content_type)
    assert response.status_code == status and "error" in response.json
    [item] = _inbox(source)
    assert item.reason == reason and item.status == InboxStatus.REJECTED
    assert item.body == body[: 64 * 1024]


def test_unknown_and_rotated_addresses_answer_the_same_404(client, shop):
    _, _, source = shop
    old = source.intake_token
    sources.rotate_token(source)
    unknown = client.post("/in/not-a-real-token", json={"email": "a@example.com"})
    rotated = client.post(f"/in/{old}", json={"email": "a@example.com"})
    assert unknown.status_code == rotated.status_code == 404
    assert unknown.json == rotated.json
    assert _post(client, source, {"email": "a@example.com"}).status_code == 201


def _signed_headers(secret, body, message_id="msg_1", timestamp=None):
    timestamp = int(timestamp or time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def test_signed_source_accepts_only_good_fresh_signatures(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Partner API", "partner", signed=True)
    assert source.signing_secret.startswith("whsec_")
    body = json.dumps({"email": "signed@example.com"}).encode()
    good = _signed_headers(source.signing_secret, body)
    assert _post(client, source, data=body, headers=good).status_code == 201

    unsigned = _post(client, source, {"email": "x@example.com"})
    tampered = _post(
        client, source, data=body + b" ", headers=_signed_headers(source.signing_secret, body, "m2")
    )
    stale = _post(
        client,
        source,
        data=body,
        headers=_signed_headers(source.signing_secret, body, "m3", time.time() - 301),
    )
    wrong_key = _post(
        client, source, data=body, headers=_signed_headers(signing.new_secret(), body, "m4")
    )
    assert [r.status_code for r in (unsigned, tampered, stale, wrong_key)] == [401] * 4
    reasons = [i.reason for i in _inbox(source)][1:]
    assert reasons == [
        "signature_missing",
        "signature_mismatch",
        "signature_stale",
        "signature_mismatch",
    ]


def test_several_signatures_allow_rotating_the_secret(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Partner API", "partner", signed=True)
    body = b'{"email": "rot@example.com"}'
    headers = _signed_headers(source.signing_secret, body)
    old_signature = signing.sign(
        signing.new_secret(), "msg_1", int(headers["webhook-timestamp"]), body
    )
    headers["webhook-signature"] = f"{old_signature} {headers['webhook-signature']}"
    assert _post(client, source, data=body, headers=headers).status_code == 201


def test_a_source_over_its_rate_limit_gets_429_with_retry_after_and_the_post_is_kept(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Noisy", "ad", rate_limit_per_minute=3)
    codes = [_post(client, source, {"email": f"n{i}@example.com"}).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = _post(client, source, {"email": "n9@example.com"})
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert [i.reason for i in _inbox(source)][-2:] == ["rate_limited", "rate_limited"]


def test_leased_rate_limits_are_never_exceeded(client, make, monkeypatch):
    """A busy source's count is leased a few posts at a time; never past the limit."""
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Busy", "ad", rate_limit_per_minute=5)
    monkeypatch.setattr(intake_services, "LEASE_SHARE", 2)  # leases of 5 // 2 = 2 posts
    monkeypatch.setattr(intake_services, "LEASE_SECONDS", 60)  # (a slow machine is no matter)
    monkeypatch.setattr(intake_services, "_leases", intake_services._Leases())
    codes = [_post(client, source, {"email": f"l{i}@example.com"}).status_code for i in range(3)]
    # 4 posts are counted now (two leases), 1 of them leased here and not spent. Another
    # worker process (its own leases) asks for a lease of 2: 6 would pass the limit, so
    # it is refused, and the lease left here is still spent.
    here = intake_services._leases
    monkeypatch.setattr(intake_services, "_leases", intake_services._Leases())
    codes.append(_post(client, source, {"email": "other@example.com"}).status_code)
    monkeypatch.setattr(intake_services, "_leases", here)
    codes.append(_post(client, source, {"email": "spent@example.com"}).status_code)
    codes.append(_post(client, source, {"email": "late@example.com"}).status_code)
    assert codes == [201, 201, 201, 429, 201, 429]
    assert _count(Lead, Lead.source_id == source.id) == 4  # at most 5: never over
    rejected = [i for i in _inbox(source) if i.status == InboxStatus.REJECTED]
    assert [i.reason for i in rejected] == ["rate_limited", "rate_limited"]


def test_a_rejected_post_is_counted_once_against_the_rate_limit(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Strict", "ad", rate_limit_per_minute=2)
    assert _post(client, source, {"name": "no way to reach"}).status_code == 422
    assert _post(client, source, {"email": "ok@example.com"}).status_code == 201
    assert _post(client, source, {"email": "late@example.com"}).status_code == 429


def test_a_changed_source_is_seen_at_once_by_the_next_post(client, shop):
    """Whatever caches a source between posts must not outlive a change to it."""
    _, _, source = shop
    first = _post(client, source, {"email": "one@example.com"})
    assert first.status_code == 201
    sources.set_active(source, False)
    paused = _post(client, source, {"email": "two@example.com"})
    assert paused.status_code == 201 and db.session.get(Lead, paused.json["id"]).flagged
    sources.set_active(source, True)
    sources.rotate_signing_secret(source)
    assert _post(client, source, {"email": "three@example.com"}).status_code == 401
    sources.disable_signing(source)
    old_token = source.intake_token
    sources.rotate_token(source)
    assert client.post(f"/in/{old_token}", json={"email": "four@example.com"}).status_code == 404
    resumed = _post(client, source, {"email": "five@example.com"})
    assert resumed.status_code == 201 and not db.session.get(Lead, resumed.json["id"]).flagged


def test_a_post_served_again_after_a_source_change_is_counted_once(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Two a minute", "ad", rate_limit_per_minute=2)
    assert _post(client, source, {"email": "one@example.com"}).status_code == 201
    sources.set_active(source, False)
    again = _post(client, source, {"email": "two@example.com"})
    assert again.status_code == 201 and db.session.get(Lead, again.json["id"]).flagged
    assert _post(client, source, {"email": "three@example.com"}).status_code == 429


def test_text_that_cannot_be_stored_is_kept_readable(client, shop):
    """A lone surrogate (JSON can escape one) and NUL: the lead is stored all the same."""
    _, _, source = shop
    body = b'{"email": "s@example.com", "message": "a\\ud800b\\u0000c", "external_id": "x\\udfff"}'
    first = _post(client, source, data=body, content_type="application/json")
    assert first.status_code == 201
    lead = db.session.get(Lead, first.json["id"])
    assert (lead.message, lead.external_id) == ("a?bc", "x?")
    again = _post(client, source, data=body, content_type="application/json")
    assert again.json == {"id": lead.id, "status": "duplicate"}
    assert _inbox(source)[0].body == body  # the raw post as it came


def test_a_paused_source_still_captures_leads_flagged(client, shop):
    _, _, source = shop
    sources.set_active(source, False)
    response = _post(client, source, {"email": "late@example.com"})
    assert response.status_code == 201
    assert db.session.get(Lead, response.json["id"]).flagged is True


def test_when_the_database_fails_the_sender_is_told_to_retry(client, shop, monkeypatch):
    _, _, source = shop

    def broken(*args, **kwargs):
        raise OperationalError("COMMIT", {}, Exception("connection refused"))

    # The lead and the inbox row are flushed, then the commit that decides the answer fails.
    # (A multipart post: the ORM path serves it on both databases.)
    monkeypatch.setattr(intake_services.db.session, "commit", broken)
    response = client.post(
        f"/in/{source.intake_token}",
        data={"email": "a@example.com"},
        content_type="multipart/form-data",
    )
    monkeypatch.undo()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert _count(Lead, Lead.source_id == source.id) == 0


@pytest.mark.skipif(not POSTGRESQL, reason="the one-statement path serves PostgreSQL only")
def test_the_fast_path_answers_503_when_postgresql_goes_away(app, client, shop, monkeypatch):
    _, _, source = shop
    fast_path = app.extensions["fast_intake"]
    assert _post(client, source, {"email": "warm@example.com"}).status_code == 201
    # Its idle connection is killed by the server (a restart, a failover): nothing was
    # written yet, so the post is served on a new connection.
    killed = [connection.info.backend_pid for connection in fast_path.idle]
    assert killed
    for pid in killed:
        # With a timeout, pg_terminate_backend waits until the backend has gone.
        db.session.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    db.session.commit()
    assert _post(client, source, {"email": "next@example.com"}).status_code == 201
    assert {c.info.backend_pid for c in fast_path.idle} - set(killed)  # served on a new one
    # The connection is lost during the write: the sender is told to retry.
    monkeypatch.setattr(fast, "ACCEPT_SQL", "SELECT pg_terminate_backend(pg_backend_pid())")
    lost = _post(client, source, {"email": "a@example.com"})
    assert lost.status_code == 503 and lost.headers["Retry-After"] == "5"
    monkeypatch.undo()
    # The server cannot be reached at all.
    monkeypatch.setattr(fast_path, "conninfo", "postgresql://postgres@127.0.0.1:1/none")
    fast_path.close()
    refused = _post(client, source, {"email": "b@example.com"})
    assert refused.status_code == 503
    monkeypatch.undo()
    emails = {lead.contact.email for lead in _leads(source)}
    assert emails == {"warm@example.com", "next@example.com"}  # nothing half-stored
    again = _post(client, source, {"email": "a@example.com"})
    assert again.status_code == 201


def test_new_leads_go_round_robin_to_active_lead_generators(client, make):
    tenant, owner = make.workspace_with_owner()
    first = make.member(tenant, Role.LEAD_GENERATOR)
    second = make.member(tenant, Role.LEAD_GENERATOR)
    leaving = make.member(tenant, Role.LEAD_GENERATOR)
    workspace.deactivate_member(tenant, make.membership_of(tenant, leaving))
    source = sources.create_source(tenant, "Site", "site_form")
    owners = [
        db.session.get(
            Lead, _post(client, source, {"email": f"r{i}@example.com"}).json["id"]
        ).owner_id
        for i in range(4)
    ]
    assert sorted(owners[:2]) == sorted([first.id, second.id])
    assert owners[2:] == owners[:2]
    assert leaving.id not in owners and owner.id not in owners


def test_idempotency_keys_are_per_source(client, shop):
    tenant, _, source = shop
    other = sources.create_source(tenant, "Other", "other")
    a = _post(client, source, {"email": "a@example.com"}, headers={"Idempotency-Key": "k"})
    b = _post(client, other, {"email": "b@example.com"}, headers={"Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201 and a.json["id"] != b.json["id"]
    assert _count(IntakeKey) == 2


def test_local_phone_numbers_are_read_in_the_workspace_country(client, make):
    tenant, _ = make.workspace_with_owner(language="ru")
    tenant.currency = "RUB"
    db.session.commit()
    source = sources.create_source(tenant, "Сайт", "site_form")
    response = _post(client, source, {"name": "Борис", "phone": "8 (912) 000-11-22"})
    assert response.status_code == 201
    assert db.session.get(Lead, response.json["id"]).contact.phone == "+79120001122"


def test_when_redis_is_down_posts_are_still_stored(client, shop, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    from app.extensions import limiter

    _, _, source = shop

    def unreachable(*args, **kwargs):
        raise RedisDown("Connection refused")

    monkeypatch.setattr(limiter.limiter, "hit", unreachable)
    response = _post(client, source, {"email": "during-outage@example.com"})
    assert response.status_code == 201
    assert _count(Lead, Lead.source_id == source.id) == 1


@pytest.mark.skipif(not POSTGRESQL, reason="the one-statement path serves PostgreSQL only")
def test_the_fast_path_stores_what_the_orm_path_stores(client, make):
    """JSON posts take the one-statement path; multipart posts take the ORM path.

    The same posts to two like workspaces must leave the same rows behind.
    """
    posts = [
        (
            {
                "name": "Vera",
                "email": "Vera@Example.com",
                "company": "Vera & Co",
                "message": "Call me",
                "external_id": "crm-1",
                "decision_date": "2026-12-31",
                "budget": "5k",
                "utm_source": "ads",
                "utm_campaign": "winter",
                "page_url": "https://shop.example/x",
            },
            "k1",
        ),
        ({"name": "V. again", "email": "vera@example.com", "phone": "+44 20 7946 0958"}, "k2"),
        ({"name": "Gleb", "phone": "+442079460958", "company": "Gleb Ltd"}, "k3"),
        ({"name": "Vera", "email": "vera@example.com"}, "k1"),  # a repeat of the first
    ]
    stored = []
    for multipart in (False, True):
        tenant, owner = make.workspace_with_owner()
        generators = [make.member(tenant, Role.LEAD_GENERATOR) for _ in range(2)]
        source = sources.create_source(tenant, "Site", "site_form")
        answers = []
        for payload, key in posts:
            sent = {"data": payload, "content_type": "multipart/form-data"} if multipart else {}
            response = _post(
                client,
                source,
                None if multipart else payload,
                headers={"Idempotency-Key": key},
                **sent,
            )
            answers.append((response.status_code, response.json["status"]))
        leads = sorted(_leads(source), key=lambda lead: lead.id)
        people = {user.id: n for n, user in enumerate([owner, *generators])}
        ids = {lead.id: n for n, lead in enumerate(leads)}
        contacts = {lead.contact_id: None for lead in leads}
        stored.append(
            {
                "answers": answers,
                "leads": [
                    (
                        lead.title,
                        lead.message,
                        lead.budget,
                        lead.external_id,
                        lead.decision_date,
                        lead.utm,
                        lead.extra,
                        lead.flagged,
                        lead.stage.name,
                        people[lead.owner_id],
                        lead.value_minor,
                        list(contacts).index(lead.contact_id),
                        all((lead.created_at, lead.last_activity_at, lead.stage_entered_at)),
                    )
                    for lead in leads
                ],
                "contacts": [
                    (c.name, c.email, c.phone, c.company)
                    for c in (db.session.get(Contact, contact_id) for contact_id in contacts)
                ],
                "events": [
                    (ids[e.lead_id], e.kind.value, e.data, e.actor_id)
                    for lead in leads
                    for e in lead_events(lead)
                ],
                "inbox": [
                    (i.status.value, i.http_status, i.fields, ids.get(i.lead_id), i.reason)
                    for i in _inbox(source)
                ],
                "keys": sorted(
                    (k.key, ids[k.lead_id])
                    for k in db.session.scalars(
                        sa.select(IntakeKey)
                        .where(IntakeKey.source_id == source.id)
                        .execution_options(**ALL)
                    )
                ),
            }
        )
    fast, orm = stored
    assert fast["answers"] == [(201, "created")] * 3 + [(200, "duplicate")]
    for part in fast:
        for a, b in zip(fast[part], orm[part], strict=True):
            assert a == b, part
    # The second post gave Vera's contact a phone, so the third (same phone) is hers too.
    assert fast["contacts"] == [("Vera", "vera@example.com", "+442079460958", "Vera & Co")]
    assert [row[-2] for row in fast["leads"]] == [0, 0, 0]
    assert [row[9] for row in fast["leads"]] == [1, 2, 1]  # round robin over two generators


def lead_events(lead):
    return db.session.scalars(
        sa.select(LeadEvent).where(LeadEvent.lead_id == lead.id).execution_options(**ALL)
    ).all()


@pytest.mark.skipif(not POSTGRESQL, reason="the one-statement path serves PostgreSQL only")
def test_a_lead_generator_busy_with_another_post_is_skipped_not_waited_for(app, client, make):
    tenant, _ = make.workspace_with_owner()
    first = make.member(tenant, Role.LEAD_GENERATOR)
    second = make.member(tenant, Role.LEAD_GENERATOR)
    source = sources.create_source(tenant, "Site", "site_form")
    held = make.membership_of(tenant, first)
    address = f"/in/{source.intake_token}"
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    answers = []
    with psycopg.connect(url.render_as_string(hide_password=False)) as other:
        # Another post's transaction holds the first generator's row (as while it routes).
        other.execute("SELECT id FROM membership WHERE id = %s FOR UPDATE", (held.id,))
        poster = threading.Thread(
            target=lambda: answers.append(
                app.test_client().post(address, json={"email": "q@example.com"})
            )
        )
        poster.start()
        poster.join(10)
        waited = poster.is_alive()
        other.rollback()
    poster.join(10)
    assert not waited, "the post waited for the busy generator's row"
    assert db.session.get(Lead, answers[0].json["id"]).owner_id == second.id
