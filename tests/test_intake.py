"""The public intake endpoint: every answer it documents, and nothing ever lost.

A good post is stored and answered ``202`` with a receipt; the worker's lead builder
turns it into a lead (``run_jobs`` runs the queued build here).
"""

import json
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app import create_app
from app.extensions import db
from app.intake import services as intake_services
from app.intake import signing
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
from tests.intake_helpers import count as _count
from tests.intake_helpers import lead_of as _lead_of
from tests.intake_helpers import post as _post
from tests.intake_helpers import signed_headers as _signed_headers

ALL = {"all_tenants": True}


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


def test_a_json_post_is_answered_at_once_and_becomes_a_lead_on_the_board(
    client, shop, run_jobs, login
):
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
    assert response.status_code == 202
    assert response.json == {"id": response.json["id"], "status": "accepted"}
    [item] = _inbox(source)
    assert item.status == InboxStatus.PENDING and item.http_status == 202
    assert item.receipt == response.json["id"] and json.loads(item.body)["name"] == "Anna Petrova"
    assert _count(Lead, Lead.source_id == source.id) == 0  # built by the worker, not the request

    run_jobs()
    lead = _lead_of(response)
    assert lead.tenant_id == tenant.id and lead.source_id == source.id
    assert db.session.get(Stage, lead.stage_id).name == "New"
    assert lead.contact.email == "anna@example.com" and lead.contact.phone == "+79123456789"
    assert lead.contact.name == "Anna Petrova" and lead.title == "Corner Café"
    assert lead.utm == {"utm_source": "google", "utm_campaign": "winter"}
    assert lead.extra == {"shoe_size": "38"}
    assert str(lead.decision_date) == "2026-12-15" and lead.message == "20 kg flour weekly"
    assert lead.owner_id == owner.id  # no lead generators yet: the owner gets it
    db.session.refresh(item)
    assert item.status == InboxStatus.ACCEPTED and item.lead_id == lead.id
    # It arrived when it was posted: the radar's figures and stays count from then.
    assert lead.created_at == lead.stage_entered_at == lead.last_activity_at == item.received_at
    [line] = db.session.scalars(
        sa.select(LeadEvent).where(LeadEvent.lead_id == lead.id).execution_options(**ALL)
    ).all()
    assert line.kind.value == "intake" and line.data == {"source": "Site"}
    login(owner.email)
    assert "Anna Petrova" in client.get("/board").text


def test_the_receipt_says_nothing_about_leads_or_other_posts(client, shop, run_jobs):
    _, _, source = shop
    receipts = [_post(client, source, {"email": f"r{i}@example.com"}).json["id"] for i in range(3)]
    run_jobs()
    lead_ids = {str(lead.id) for lead in _leads(source)}
    assert len(set(receipts)) == 3 and all(len(receipt) >= 24 for receipt in receipts)
    assert not any(receipt.isdigit() or receipt in lead_ids for receipt in receipts)


def test_posts_wait_in_the_inbox_while_no_worker_runs_and_a_burst_wakes_one_build(
    app, client, shop, run_jobs
):
    _, _, source = shop
    for i in range(5):
        assert _post(client, source, {"email": f"w{i}@example.com"}).status_code == 202
    with app.app_context():
        from app.queue import get_queue

        assert get_queue().count == 1  # one pending build for the whole burst
    assert _count(Lead, Lead.source_id == source.id) == 0
    assert {item.status for item in _inbox(source)} == {InboxStatus.PENDING}
    assert run_jobs() == 1
    assert _count(Lead, Lead.source_id == source.id) == 5
    assert _post(client, source, {"email": "later@example.com"}).status_code == 202
    run_jobs()  # a post after the build wakes the next one
    assert _count(Lead, Lead.source_id == source.id) == 6


@pytest.mark.parametrize("encoding", ["form", "multipart"])
def test_form_encoded_posts_are_accepted(client, shop, run_jobs, encoding):
    _, _, source = shop
    data = {"name": "Boris", "phone": "+7 (912) 000-11-22"}
    if encoding == "multipart":
        response = _post(client, source, data=data, content_type="multipart/form-data")
    else:
        response = _post(client, source, data=data)
    assert response.status_code == 202, response.json
    run_jobs()
    assert _lead_of(response).contact.name == "Boris"


@pytest.mark.parametrize(
    "headers,payload",
    [
        ({"Idempotency-Key": "k-1"}, {"email": "a@example.com"}),
        ({"webhook-id": "msg_1"}, {"email": "a@example.com"}),
        ({}, {"email": "a@example.com", "external_id": "crm-77"}),
    ],
)
def test_a_repeated_post_is_the_same_receipt_and_one_lead(client, shop, run_jobs, headers, payload):
    _, _, source = shop
    first = _post(client, source, payload, headers=headers)
    second = _post(client, source, payload, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json == {"id": first.json["id"], "status": "duplicate"}
    run_jobs()
    after_build = _post(client, source, payload, headers=headers)
    assert after_build.json == {"id": first.json["id"], "status": "duplicate"}
    run_jobs()
    assert _count(Lead, Lead.source_id == source.id) == 1
    lead = _lead_of(first)
    items = _inbox(source)
    assert [i.status for i in items] == [InboxStatus.ACCEPTED] + [InboxStatus.DUPLICATE] * 2
    assert {i.lead_id for i in items} == {lead.id}  # repeats point at the lead once built


def test_a_repeat_that_brings_a_new_key_claims_nothing(client, shop, run_jobs):
    """One key taken, another new: the post is a repeat of the first, and its new key
    stays free for the post that really brings it (never a receipt of nothing)."""
    _, _, source = shop
    payload = {"email": "a@example.com"}
    first = _post(client, source, payload, headers={"Idempotency-Key": "k-1"})
    repeat = _post(
        client, source, {**payload, "external_id": "crm-9"}, headers={"Idempotency-Key": "k-1"}
    )
    assert repeat.status_code == 200
    assert repeat.json == {"id": first.json["id"], "status": "duplicate"}
    assert _count(IntakeKey, IntakeKey.source_id == source.id) == 1
    later = _post(client, source, {**payload, "external_id": "crm-9"})
    assert later.status_code == 202 and later.json["id"] != first.json["id"]
    run_jobs()
    assert [i.status for i in _inbox(source)] == [
        InboxStatus.ACCEPTED,
        InboxStatus.DUPLICATE,
        InboxStatus.ACCEPTED,
    ]


def test_a_post_lands_in_the_workspace_of_its_address_whoever_is_signed_in(
    client, make, login, run_jobs
):
    """Intake answers senders: a member's own workspace (loaded for pages) plays no part,
    and the member's pages still know it after the post."""
    _, owner = make.workspace_with_owner(name="Mine", language="ru")
    theirs, _ = make.workspace_with_owner(name="Theirs")
    source = sources.create_source(theirs, "Site", "site_form")
    login(owner.email)
    response = _post(client, source, {"name": "Nobody"})
    assert response.status_code == 422 and "contact" in response.json["fields"]
    accepted = _post(client, source, {"email": "x@example.com"})
    assert accepted.status_code == 202
    assert {i.tenant_id for i in _inbox(source)} == {theirs.id}
    run_jobs()
    assert _lead_of(accepted).tenant_id == theirs.id
    page = client.get("/board")
    assert page.status_code == 200 and "Mine" in page.text and "Theirs" not in page.text


def test_concurrent_identical_posts_get_one_receipt_and_become_one_lead(app, shop, run_jobs):
    _, _, source = shop
    url = f"/in/{source.intake_token}"
    answers = []
    start = threading.Barrier(8)

    def post():
        client = app.test_client()
        start.wait(10)
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
    assert codes == [200] * 7 + [202]
    assert len({a.json["id"] for a in answers}) == 1
    assert _count(InboxItem, InboxItem.source_id == source.id) == 8
    run_jobs()
    assert _count(Lead, Lead.source_id == source.id) == 1


def test_a_known_person_gets_a_new_inquiry_on_the_same_contact(client, shop, run_jobs):
    tenant, _, source = shop
    other = sources.create_source(tenant, "Partner", "partner")
    first = _post(client, source, {"name": "Vera", "email": "vera@example.com"})
    by_phone_first = _post(client, source, {"name": "Gleb", "phone": "+44 20 7946 0958"})
    run_jobs()  # the first two are known contacts by the time the next two are built
    again_by_email = _post(client, other, {"name": "Vera P.", "email": "VERA@example.com"})
    again_by_phone = _post(client, other, {"phone": "+442079460958"})
    # Within one batch too: a third post by Vera's email and a new phone for her.
    same_batch = _post(client, other, {"email": "vera@example.com", "phone": "+1 202 555 0177"})
    by_new_phone = _post(client, source, {"phone": "+12025550177"})
    answers = (first, by_phone_first, again_by_email, again_by_phone, same_batch, by_new_phone)
    assert {r.status_code for r in answers} == {202}
    run_jobs()
    vera, gleb, vera_again, gleb_again, vera_third, vera_by_phone = map(_lead_of, answers)
    # Their leads are still open: the repeats join them instead of making new cards.
    assert vera.id == vera_again.id == vera_third.id == vera_by_phone.id  # phone the batch gave
    assert gleb_again.id == gleb.id
    assert _count(Lead, Lead.tenant_id == tenant.id) == 2
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
def test_bad_fields_get_422_with_the_field_and_stay_in_the_inbox(
    client, shop, run_jobs, payload, field
):
    _, _, source = shop
    response = _post(client, source, payload)
    assert response.status_code == 422
    assert field in response.json["fields"] and response.json["error"]
    run_jobs()
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
    assert _post(client, source, {"email": "a@example.com"}).status_code == 202


def test_signed_source_accepts_only_good_fresh_signatures(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Partner API", "partner", signed=True)
    assert source.signing_secret.startswith("whsec_")
    body = json.dumps({"email": "signed@example.com"}).encode()
    good = _signed_headers(source.signing_secret, body)
    assert _post(client, source, data=body, headers=good).status_code == 202

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
    assert _post(client, source, data=body, headers=headers).status_code == 202


def test_a_source_over_its_rate_limit_gets_429_with_retry_after_and_the_post_is_kept(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Noisy", "ad", rate_limit_per_minute=3)
    codes = [_post(client, source, {"email": f"n{i}@example.com"}).status_code for i in range(4)]
    assert codes == [202, 202, 202, 429]
    limited = _post(client, source, {"email": "n9@example.com"})
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert [i.reason for i in _inbox(source)][-2:] == ["rate_limited", "rate_limited"]


def test_leased_rate_limits_are_never_exceeded(client, make, run_jobs, monkeypatch):
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
    assert codes == [202, 202, 202, 429, 202, 429]
    run_jobs()
    assert _count(Lead, Lead.source_id == source.id) == 4  # at most 5: never over
    rejected = [i for i in _inbox(source) if i.status == InboxStatus.REJECTED]
    assert [i.reason for i in rejected] == ["rate_limited", "rate_limited"]


def test_a_rejected_post_is_counted_once_against_the_rate_limit(client, make):
    tenant, _ = make.workspace_with_owner()
    source = sources.create_source(tenant, "Strict", "ad", rate_limit_per_minute=2)
    assert _post(client, source, {"name": "no way to reach"}).status_code == 422
    assert _post(client, source, {"email": "ok@example.com"}).status_code == 202
    assert _post(client, source, {"email": "late@example.com"}).status_code == 429


def test_a_changed_source_is_seen_at_once_by_the_next_post(client, shop, run_jobs):
    _, _, source = shop
    first = _post(client, source, {"email": "one@example.com"})
    assert first.status_code == 202
    sources.set_active(source, False)
    paused = _post(client, source, {"email": "two@example.com"})
    assert paused.status_code == 202
    run_jobs()
    assert _lead_of(paused).flagged and not _lead_of(first).flagged
    sources.set_active(source, True)
    sources.rotate_signing_secret(source)
    assert _post(client, source, {"email": "three@example.com"}).status_code == 401
    sources.disable_signing(source)
    old_token = source.intake_token
    sources.rotate_token(source)
    assert client.post(f"/in/{old_token}", json={"email": "four@example.com"}).status_code == 404
    resumed = _post(client, source, {"email": "five@example.com"})
    assert resumed.status_code == 202
    run_jobs()
    assert not _lead_of(resumed).flagged


def test_text_that_cannot_be_stored_is_kept_readable(client, shop, run_jobs):
    """A lone surrogate (JSON can escape one) and NUL: the lead is stored all the same."""
    _, _, source = shop
    body = b'{"email": "s@example.com", "message": "a\\ud800b\\u0000c", "external_id": "x\\udfff"}'
    first = _post(client, source, data=body, content_type="application/json")
    assert first.status_code == 202
    run_jobs()
    lead = _lead_of(first)
    assert (lead.message, lead.external_id) == ("a?bc", "x?")
    again = _post(client, source, data=body, content_type="application/json")
    assert again.json == {"id": first.json["id"], "status": "duplicate"}
    assert _inbox(source)[0].body == body  # the raw post as it came


def test_when_the_database_fails_the_sender_is_told_to_retry(client, shop, run_jobs, monkeypatch):
    _, _, source = shop

    def broken(*args, **kwargs):
        raise OperationalError("COMMIT", {}, Exception("connection refused"))

    # The inbox row and the keys are flushed, then the commit that decides the answer fails.
    monkeypatch.setattr(intake_services.db.session, "commit", broken)
    response = _post(client, source, {"email": "a@example.com"}, headers={"Idempotency-Key": "k"})
    monkeypatch.undo()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert _count(InboxItem, InboxItem.source_id == source.id) == 0
    assert _count(IntakeKey) == 0
    retried = _post(client, source, {"email": "a@example.com"}, headers={"Idempotency-Key": "k"})
    assert retried.status_code == 202
    run_jobs()
    assert _count(Lead, Lead.source_id == source.id) == 1


def test_when_postgresql_cannot_be_reached_the_sender_is_told_to_retry(app, shop):
    _, _, source = shop
    unreachable = create_app(
        {
            **{k: app.config[k] for k in ("TESTING", "REDIS_URL", "RQ_QUEUE", "SECRET_KEY")},
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none",
        }
    )
    response = unreachable.test_client().post(
        f"/in/{source.intake_token}", json={"email": "a@example.com"}
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json == {"error": "temporarily unavailable, retry later"}
    with unreachable.app_context():
        db.engine.dispose()


def test_new_leads_go_round_robin_to_active_lead_generators(client, make, run_jobs):
    tenant, owner = make.workspace_with_owner()
    first = make.member(tenant, Role.LEAD_GENERATOR)
    second = make.member(tenant, Role.LEAD_GENERATOR)
    leaving = make.member(tenant, Role.LEAD_GENERATOR)
    workspace.deactivate_member(tenant, make.membership_of(tenant, leaving))
    source = sources.create_source(tenant, "Site", "site_form")
    answers = [_post(client, source, {"email": f"r{i}@example.com"}) for i in range(3)]
    run_jobs()  # one batch of three, then one of one: the rotation carries on
    answers.append(_post(client, source, {"email": "r3@example.com"}))
    run_jobs()
    owners = [_lead_of(answer).owner_id for answer in answers]
    assert sorted(owners[:2]) == sorted([first.id, second.id])
    assert owners[2:] == owners[:2]
    assert leaving.id not in owners and owner.id not in owners


def test_idempotency_keys_are_per_source(client, shop):
    tenant, _, source = shop
    other = sources.create_source(tenant, "Other", "other")
    a = _post(client, source, {"email": "a@example.com"}, headers={"Idempotency-Key": "k"})
    b = _post(client, other, {"email": "b@example.com"}, headers={"Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 202 and a.json["id"] != b.json["id"]
    assert _count(IntakeKey) == 2


def test_local_phone_numbers_are_read_in_the_workspace_country(client, make, run_jobs):
    tenant, _ = make.workspace_with_owner(language="ru")
    tenant.currency, tenant.country = "RUB", "RU"
    db.session.commit()
    source = sources.create_source(tenant, "Сайт", "site_form")
    response = _post(client, source, {"name": "Борис", "phone": "8 (912) 000-11-22"})
    assert response.status_code == 202
    run_jobs()
    assert _lead_of(response).contact.phone == "+79120001122"


def test_when_redis_is_down_posts_are_still_stored_and_built_by_the_sweep(
    app, client, shop, monkeypatch
):
    import redis
    from redis.exceptions import ConnectionError as RedisDown

    from app.builder import wake
    from app.extensions import limiter
    from app.tasks.leads import build_leads

    _, _, source = shop

    def unreachable(*args, **kwargs):
        raise RedisDown("Connection refused")

    monkeypatch.setattr(limiter.limiter, "hit", unreachable)
    monkeypatch.setattr(wake, "get_redis", lambda: redis.Redis(port=1))
    response = _post(client, source, {"email": "during-outage@example.com"})
    assert response.status_code == 202
    assert _count(InboxItem, InboxItem.status == InboxStatus.PENDING) == 1
    with app.app_context():
        build_leads()  # what the periodic sweep runs
    assert _count(Lead, Lead.source_id == source.id) == 1
