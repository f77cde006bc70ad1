"""The public API, driven over HTTP with real tokens of each kind."""

import threading
from datetime import timedelta

import sqlalchemy as sa
from openapi_spec_validator import validate

from app import clock
from app.api import ids, tokens
from app.extensions import db
from app.models import ApiToken, Lead, Role, TokenAccess
from tests.api_helpers import bearer, token_for

PROBLEM = "application/problem+json"


def _lead_body(**extra):
    return {"name": "Anna Petrova", "email": "anna@example.com", "message": "40 cakes", **extra}


def test_owner_token_creates_a_lead_through_the_builder_and_reads_it(client, make):
    tenant, owner = make.workspace_with_owner()
    make.member(tenant, Role.LEAD_GENERATOR)
    secret = token_for(tenant, owner)
    created = client.post("/api/v1/leads", json=_lead_body(), headers=bearer(secret))
    assert created.status_code == 201, created.text
    lead = created.json
    assert lead["id"].startswith("lead_") and lead["stage"] == "New"
    assert lead["phase"] == "generation" and lead["status"] == "open"
    assert created.headers["Location"].endswith(lead["id"])
    assert "limit=600" in created.headers["RateLimit"]
    fetched = client.get(f"/api/v1/leads/{lead['id']}", headers=bearer(secret))
    assert fetched.status_code == 200 and fetched.json == lead
    person = client.get(f"/api/v1/people/{lead['person_id']}", headers=bearer(secret))
    assert person.json["email"] == "anna@example.com"
    stored = db.session.get(Lead, ids.decode("lead", lead["id"]))
    assert stored.owner_id is not None  # routed to the lead generator by the builder


def test_openapi_document_validates_and_matches_the_routes(app, client):
    response = client.get("/api/v1/openapi.json")
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method.upper()) for path, methods in document["paths"].items() for method in methods
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in ("api.openapi", "api.docs"):
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<{argument}>", f"{{{argument}}}")
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def _problem(response, status):
    """The answer is an RFC 9457 problem with this status; its body."""
    assert response.status_code == status, response.text
    assert response.mimetype == PROBLEM, response.headers
    body = response.json
    assert body["status"] == status and body["title"] and body["type"].startswith("http")
    return body


def test_move_into_conversion_without_the_three_conditions_is_refused_with_the_reason(client, make):
    tenant, owner = make.workspace_with_owner()
    make.member(tenant, Role.CLOSER)
    lead = make.lead(tenant, "Qualified")
    secret = token_for(tenant, owner)
    lead_id = ids.encode("lead", lead.id)
    assigned = next(
        s["id"]
        for s in client.get("/api/v1/stages", headers=bearer(secret)).json["data"]
        if s["name"] == "Assigned"
    )
    refused = client.patch(
        f"/api/v1/leads/{lead_id}", json={"stage_id": assigned}, headers=bearer(secret)
    )
    body = _problem(refused, 409)
    reason = "Record the problem, the money and the timing before conversion."
    assert body["detail"] == reason and body["errors"] == {"stage_id": [reason]}
    assert client.get(f"/api/v1/leads/{lead_id}", headers=bearer(secret)).json["stage"] == (
        "Qualified"
    )
    conditions = {
        "problem": "Cakes arrive stale",
        "money": "500 a month",
        "decision_date": "2026-12-01",
    }
    moved = client.patch(
        f"/api/v1/leads/{lead_id}",
        json={**conditions, "stage_id": assigned},
        headers=bearer(secret),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json["stage"] == "Assigned" and moved.json["qualified"] is True
    assert moved.json["decision_date"] == "2026-12-01"  # ISO 8601, as sent


def test_a_refused_move_leaves_the_conditions_sent_with_it_unsaved(client, make):
    """One PATCH is one change: its conditions are not kept when its move is refused."""
    tenant, owner = make.workspace_with_owner()
    lead = make.lead(tenant, "Qualified")
    secret = token_for(tenant, owner)
    lead_id = ids.encode("lead", lead.id)
    won = next(
        s["id"]
        for s in client.get("/api/v1/stages", headers=bearer(secret)).json["data"]
        if s["phase"] == "conversion" and s["name"] == "Won"
    )
    refused = client.patch(
        f"/api/v1/leads/{lead_id}",
        json={"problem": "Cakes arrive stale", "money": "500 a month", "stage_id": won},
        headers=bearer(secret),
    )
    _problem(refused, 409)
    after = client.get(f"/api/v1/leads/{lead_id}", headers=bearer(secret)).json
    assert after["stage"] == "Qualified"
    assert after["problem"] is None and after["money"] is None


def test_times_are_iso_8601_and_updated_at_works_as_updated_since(client, make):
    tenant, owner = make.workspace_with_owner()
    secret = token_for(tenant, owner)
    lead = client.post("/api/v1/leads", json=_lead_body(), headers=bearer(secret)).json
    assert lead["created_at"].startswith("2026-11-24T09:") and lead["created_at"].endswith("Z")
    since = client.get(
        "/api/v1/leads", query_string={"updated_since": lead["updated_at"]}, headers=bearer(secret)
    )
    assert [row["id"] for row in since.json["data"]] == [lead["id"]]


def test_russian_workspace_gets_the_refusal_in_russian(client, make):
    tenant, owner = make.workspace_with_owner(language="ru")
    secret = token_for(tenant, owner)
    lead_id = client.post("/api/v1/leads", json=_lead_body(), headers=bearer(secret)).json["id"]
    stages = client.get("/api/v1/stages", headers=bearer(secret)).json["data"]
    proposal = next(s["id"] for s in stages if s["phase"] == "conversion")
    refused = client.patch(
        f"/api/v1/leads/{lead_id}",
        json={"stage_id": proposal},
        headers=bearer(secret),
    )
    body = _problem(refused, 409)
    assert body["title"] == "Конфликт"
    assert any("а" <= ch <= "я" for ch in body["detail"]), body


def test_a_program_asking_in_russian_gets_russian_from_an_english_workspace(client, make):
    tenant, owner = make.workspace_with_owner(language="en")
    secret = token_for(tenant, owner)
    lead_id = client.post("/api/v1/leads", json=_lead_body(), headers=bearer(secret)).json["id"]
    stages = client.get("/api/v1/stages", headers=bearer(secret)).json["data"]
    proposal = next(s["id"] for s in stages if s["phase"] == "conversion")
    asked = {**bearer(secret), "Accept-Language": "ru-RU,ru;q=0.9"}
    refused = client.patch(f"/api/v1/leads/{lead_id}", json={"stage_id": proposal}, headers=asked)
    assert _problem(refused, 409)["title"] == "Конфликт"
    plain = client.patch(
        f"/api/v1/leads/{lead_id}", json={"stage_id": proposal}, headers=bearer(secret)
    )
    assert _problem(plain, 409)["title"] == "Conflict"


def test_create_replayed_with_one_idempotency_key_answers_the_same_lead_once(client, make):
    tenant, owner = make.workspace_with_owner()
    secret = token_for(tenant, owner)
    headers = bearer(secret, **{"Idempotency-Key": "order-1042"})
    first = client.post("/api/v1/leads", json=_lead_body(), headers=headers)
    again = client.post("/api/v1/leads", json=_lead_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1
    other_body = client.post("/api/v1/leads", json=_lead_body(name="Boris"), headers=headers)
    assert "Idempotency-Key" in _problem(other_body, 422)["errors"]
    fresh = client.post(
        "/api/v1/leads", json=_lead_body(), headers=bearer(secret, **{"Idempotency-Key": "k2"})
    )
    assert fresh.status_code == 201 and fresh.json["id"] != first.json["id"]


def test_two_concurrent_creates_with_one_key_make_one_lead(app, make):
    tenant, owner = make.workspace_with_owner()
    secret = token_for(tenant, owner)
    headers = bearer(secret, **{"Idempotency-Key": "zap-77"})
    start = threading.Barrier(2)
    answers = []

    def post():
        start.wait()
        answers.append(app.test_client().post("/api/v1/leads", json=_lead_body(), headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), [a.text for a in answers]
    created = {a.json["id"] for a in answers if a.status_code == 201}
    assert len(created) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert "in progress" in _problem(answer, 409)["detail"]
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1


def test_token_over_its_rate_limit_is_told_when_to_retry(app, client, make, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "3/minute")
    tenant, owner = make.workspace_with_owner()
    secret, other = token_for(tenant, owner), token_for(tenant, owner, name="Make")
    remaining = []
    for _ in range(3):
        answer = client.get("/api/v1/stages", headers=bearer(secret))
        assert answer.status_code == 200
        remaining.append(answer.headers["RateLimit"].split("remaining=")[1].split(",")[0])
    assert remaining == ["2", "1", "0"]
    refused = client.get("/api/v1/stages", headers=bearer(secret))
    body = _problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "limit=3, remaining=0" in refused.headers["RateLimit"]
    assert refused.headers["RateLimit-Policy"] == "3;w=60"
    assert refused.headers["Retry-After"] in body["detail"]
    assert client.get("/api/v1/stages", headers=bearer(other)).status_code == 200  # per token


def test_cursor_pages_walk_every_lead_once_and_updated_since_gives_the_changed(
    client, make, _pinned_clock
):
    tenant, owner = make.workspace_with_owner()
    leads = [make.lead(tenant, "New") for _ in range(7)]
    secret = token_for(tenant, owner)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/v1/leads", query_string=query, headers=bearer(secret))
        assert answer.status_code == 200, answer.text
        seen += [lead["id"] for lead in answer.json["data"]]
        pages += 1
        cursor = answer.json["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    assert set(seen) == {ids.encode("lead", lead.id) for lead in leads}

    _pinned_clock.shift(timedelta(hours=2))
    since = clock.now().isoformat()
    changed = ids.encode("lead", leads[4].id)
    patch = client.patch(
        f"/api/v1/leads/{changed}", json={"problem": "Stale cakes"}, headers=bearer(secret)
    )
    assert patch.status_code == 200, patch.text
    recent = client.get(
        "/api/v1/leads", query_string={"updated_since": since}, headers=bearer(secret)
    )
    assert [lead["id"] for lead in recent.json["data"]] == [changed]
    naive = client.get(
        "/api/v1/leads",
        query_string={"updated_since": since.split("+")[0]},
        headers=bearer(secret),
    )
    assert "updated_since" in _problem(naive, 422)["errors"]


def test_revoked_token_is_refused(client, make):
    tenant, owner = make.workspace_with_owner()
    secret = token_for(tenant, owner)
    assert client.get("/api/v1/leads", headers=bearer(secret)).status_code == 200
    tokens.revoke_token(db.session.scalar(sa.select(ApiToken)))
    answer = client.get("/api/v1/leads", headers=bearer(secret))
    _problem(answer, 401)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_read_only_token_reads_but_cannot_write(client, make):
    tenant, owner = make.workspace_with_owner()
    lead = make.lead(tenant, "New")
    secret = token_for(tenant, owner, access=TokenAccess.READ)
    assert client.get("/api/v1/leads", headers=bearer(secret)).status_code == 200
    _problem(client.post("/api/v1/leads", json=_lead_body(), headers=bearer(secret)), 403)
    lead_id = ids.encode("lead", lead.id)
    change = client.patch(f"/api/v1/leads/{lead_id}", json={"problem": "x"}, headers=bearer(secret))
    _problem(change, 403)
    touch = {"lead_id": lead_id, "channel": "call"}
    _problem(client.post("/api/v1/touches", json=touch, headers=bearer(secret)), 403)
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1
    assert db.session.get(Lead, lead.id).problem is None


def test_closer_token_lists_only_the_closers_deals(client, make):
    tenant, owner = make.workspace_with_owner()
    closer, other_closer = make.member(tenant, Role.CLOSER), make.member(tenant, Role.CLOSER)
    mine = make.lead(tenant, "Proposal", owner=closer)
    theirs = make.lead(tenant, "Proposal", owner=other_closer)
    make.lead(tenant, "New")
    secret = token_for(tenant, owner, user=closer)
    listed = client.get("/api/v1/leads", headers=bearer(secret)).json["data"]
    assert [lead["id"] for lead in listed] == [ids.encode("lead", mine.id)]
    hidden = client.get(f"/api/v1/leads/{ids.encode('lead', theirs.id)}", headers=bearer(secret))
    _problem(hidden, 404)
    _problem(client.get("/api/v1/conflicts", headers=bearer(secret)), 403)
    stages = client.get("/api/v1/stages", headers=bearer(secret)).json["data"]
    assert {stage["phase"] for stage in stages} == {"conversion"}


def test_every_error_is_a_problem_document_with_field_errors_on_422(client, make):
    tenant, owner = make.workspace_with_owner()
    secret = token_for(tenant, owner)
    _problem(client.get("/api/v1/leads"), 401)
    _problem(client.get("/api/v1/leads", headers=bearer("cvk_not-a-token")), 401)
    _problem(client.get("/api/v1/leads/lead_AAAAAAAAAAAAA", headers=bearer(secret)), 404)
    _problem(client.get("/api/v1/nothing-here", headers=bearer(secret)), 404)
    not_allowed = client.delete("/api/v1/leads", headers=bearer(secret))
    _problem(not_allowed, 405)
    assert "POST" in not_allowed.headers["Allow"]
    form = client.post("/api/v1/leads", data={"name": "Anna"}, headers=bearer(secret))
    _problem(form, 415)
    broken = client.post(
        "/api/v1/leads",
        data="{not json",
        headers=bearer(secret, **{"Content-Type": "application/json"}),
    )
    assert broken.status_code in (400, 422) and broken.mimetype == PROBLEM
    unknown = client.post("/api/v1/leads", json={"nme": "Anna"}, headers=bearer(secret))
    assert "nme" in _problem(unknown, 422)["errors"]
    nobody = client.post("/api/v1/leads", json={"name": "Anna"}, headers=bearer(secret))
    assert _problem(nobody, 422)["errors"]
    bad_date = client.post(
        "/api/v1/leads", json=_lead_body(decision_date="soon"), headers=bearer(secret)
    )
    assert list(_problem(bad_date, 422)["errors"]) == ["decision_date"]
    too_many = client.get("/api/v1/leads?limit=1000", headers=bearer(secret))
    assert "limit" in _problem(too_many, 422)["errors"]
