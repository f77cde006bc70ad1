"""The public API, driven over HTTP with real tokens of each kind."""


from openapi_spec_validator import validate

from app.api import ids
from app.extensions import db
from app.models import Lead, Role
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
