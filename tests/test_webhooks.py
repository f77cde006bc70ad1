"""Outbound webhooks, verified by a receiver on loopback with the standardwebhooks library."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import clock
from app.api import ids
from app.extensions import db
from app.models import (
    DeliveryStatus,
    Lead,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.webhooks import addresses, delivery
from app.webhooks import endpoints as service
from tests import factories
from tests.api_helpers import bearer, token_for
from tests.webhook_receiver import Receiver

EVERYTHING = [
    "lead.created",
    "lead.qualified",
    "deal.assigned",
    "deal.won",
    "deal.lost",
    "client.touch_logged",
    "client.touch_overdue",
    "promise.flagged",
    "conflict.opened",
    "source.alert",
]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def loopback(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)


@pytest.fixture
def shop(make, loopback, receiver):
    tenant, owner = make.workspace_with_owner()
    make.member(tenant, Role.LEAD_GENERATOR)
    owner_seat = factories.membership_of(tenant, owner)
    endpoint = service.create_endpoint(tenant, owner_seat, receiver.url, "CRM sync", EVERYTHING)
    receiver.secret = endpoint.secret
    return tenant, owner, endpoint


def _create_lead(client, secret, **fields):
    body = {"name": "Anna", "email": "anna@example.com", **fields}
    response = client.post("/api/v1/leads", json=body, headers=bearer(secret))
    assert response.status_code == 201, response.text
    return response.json


def test_a_lead_created_with_curl_arrives_signed_at_the_endpoint(client, shop, receiver, run_jobs):
    tenant, owner, _ = shop
    secret = token_for(tenant, owner)
    lead = _create_lead(client, secret)
    run_jobs()  # the commit woke the delivery job
    assert receiver.types() == ["lead.created"]
    payload = receiver.received[0]["payload"]
    assert payload["version"] == 1 and payload["data"]["lead"]["id"] == lead["id"]
    assert receiver.received[0]["id"].startswith("msg_")
    assert str(ids.decode("lead", lead["id"])) not in receiver.received[0]["id"]


def test_the_owner_adds_an_endpoint_on_the_settings_page(app, client, make, login, loopback):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    response = client.post(
        "/settings/integrations/endpoints",
        data={
            "endpoint-url": "http://127.0.0.1:9/hooks",
            "endpoint-description": "n8n",
            "endpoint-events": ["lead.created", "deal.won"],
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    endpoint = db.session.scalar(sa.select(WebhookEndpoint))
    assert endpoint.events == ["lead.created", "deal.won"]
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in page.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://10.0.0.7/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hooks",
        "http://[fd00:ec2::254]/",
        "http://192.168.1.1/",
        "ftp://example.com/",
    ],
)
def test_endpoints_on_private_local_and_metadata_addresses_are_refused(app, ctx, monkeypatch, url):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", False)  # as in production
    with pytest.raises(addresses.Refused):
        addresses.resolve(url)


def test_an_endpoint_that_turns_private_is_refused_at_delivery_after_dns(
    app, client, shop, receiver, monkeypatch
):
    tenant, owner, _ = shop
    _create_lead(client, token_for(tenant, owner))
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", False)
    delivery.run()
    assert receiver.received == []
    attempt = db.session.scalar(sa.select(WebhookAttempt))
    assert attempt.error == "address_refused" and attempt.response_status is None


def test_failures_are_retried_with_backoff_and_one_lead_stays_in_order(
    client, shop, receiver, _pinned_clock
):
    tenant, owner, _ = shop
    secret = token_for(tenant, owner)
    receiver.failures_left = 2
    lead = _create_lead(client, secret)
    qualify = {"problem": "Slow", "money": "yes", "decision_date": "2030-01-15"}
    assert (
        client.patch(f"/api/v1/leads/{lead['id']}", json=qualify, headers=bearer(secret))
    ).status_code == 200
    delivery.run()  # lead.created fails; lead.qualified waits behind it
    assert receiver.types() == ["lead.created"]
    _pinned_clock.shift(timedelta(seconds=6))
    delivery.run()  # the retry fails again
    assert receiver.types() == ["lead.created"] * 2
    _pinned_clock.shift(timedelta(minutes=6))
    delivery.run()
    assert receiver.types() == ["lead.created"] * 3 + ["lead.qualified"]
    assert len({r["id"] for r in receiver.received[:3]}) == 1  # one webhook-id throughout
    rows = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(r.status, r.attempts) for r in rows] == [
        (DeliveryStatus.DELIVERED, 3),
        (DeliveryStatus.DELIVERED, 1),
    ]


def test_an_endpoint_failing_for_three_days_is_disabled_and_the_owner_emailed(
    client, shop, receiver, _pinned_clock, mailbox
):
    tenant, owner, endpoint = shop
    receiver.failures_left = 1000
    _create_lead(client, token_for(tenant, owner))
    for _ in range(12):
        delivery.run()
        _pinned_clock.shift(timedelta(hours=10))
        if not db.session.get(WebhookEndpoint, endpoint.id).enabled:
            break
        db.session.expire_all()
    row = db.session.get(WebhookEndpoint, endpoint.id)
    assert not row.enabled and row.disabled_reason == "failing"
    assert [m["Subject"] for m in mailbox.to(owner.email)] == [
        f"Webhook endpoint disabled: {receiver.url}"
    ]


def test_manual_redelivery_sends_the_same_webhook_id_again(client, shop, receiver, login):
    tenant, owner, endpoint = shop
    _create_lead(client, token_for(tenant, owner))
    delivery.run()
    row = db.session.scalar(sa.select(WebhookDelivery))
    login(owner.email)
    page = client.get(f"/settings/integrations/endpoints/{endpoint.id}")
    assert "lead.created" in page.text and "204" in page.text
    response = client.post(f"/settings/integrations/deliveries/{row.id}/redeliver")
    assert response.status_code == 302
    delivery.run()
    assert len(receiver.received) == 2 and len(receiver.unique()) == 1


def test_after_a_rotation_old_and_new_secrets_both_verify_for_a_day(
    client, shop, receiver, _pinned_clock
):
    tenant, owner, endpoint = shop
    old = endpoint.secret
    service.rotate_secret(db.session.get(WebhookEndpoint, endpoint.id))
    new = db.session.get(WebhookEndpoint, endpoint.id).secret
    for secret in (old, new):
        receiver.secret = secret
        _create_lead(client, token_for(tenant, owner), email=f"{secret[-6:]}@example.com")
        delivery.run()
    assert len(receiver.received) == 2
    _pinned_clock.shift(timedelta(hours=25))
    receiver.secret = old
    _create_lead(client, token_for(tenant, owner), email="late@example.com")
    delivery.run()  # the receiver, holding only the old secret, refuses the delivery
    assert len(receiver.received) == 2
    last = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()[-1]
    assert last.status == DeliveryStatus.PENDING and last.attempts == 1


def test_an_endpoint_never_tells_more_than_its_owner_may_see(client, make, shop, receiver):
    tenant, owner, endpoint = shop
    other_owner = make.member(tenant, Role.OWNER)
    secret = token_for(tenant, owner)
    # The endpoint's seat is no longer an owner's: it gets nothing any more.
    factories.membership_of(tenant, owner).role = Role.CLOSER
    db.session.commit()
    _create_lead(client, token_for(tenant, other_owner, other_owner))
    delivery.run()
    assert receiver.received == [] and secret


def test_a_client_touch_and_a_flagged_promise_are_events(client, make, shop, receiver):
    tenant, owner, _ = shop
    lead = make.lead(tenant, "Client", owner=owner)
    secret = token_for(tenant, owner)
    body = {"lead_id": ids.encode("lead", lead.id), "channel": "call", "outcome": "Reached"}
    assert client.post("/api/v1/touches", json=body, headers=bearer(secret)).status_code == 201
    delivery.run()
    assert receiver.types() == ["client.touch_logged"]
    assert receiver.received[0]["payload"]["data"]["touch"]["outcome"] == "Reached"


def test_overdue_clients_are_told_once_per_missed_date(make, shop, receiver):
    from app.tasks.webhooks import touch_overdue

    tenant, owner, _ = shop
    lead = make.lead(tenant, "Client", owner=owner)
    lead.next_touch_on = clock.today(tenant.timezone) - timedelta(days=2)
    db.session.commit()
    assert touch_overdue() == 1
    assert touch_overdue() == 0
    delivery.run()
    assert receiver.types() == ["client.touch_overdue"]


@pytest.mark.real_clock
def test_a_worker_killed_mid_delivery_redelivers_and_the_receiver_dedupes(
    app, client, shop, receiver, database_url, redis_url, monkeypatch
):
    tenant, owner, _ = shop
    receiver.hold_seconds = 30  # the first delivery hangs until the worker is killed
    _create_lead(client, token_for(tenant, owner))
    env = {
        **os.environ,
        "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
        "REDIS_URL": redis_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "WEBHOOKS_ALLOW_LOOPBACK": "1",
    }
    code = "from app import create_app; from app.webhooks import delivery\n"
    code += "app = create_app()\nwith app.app_context(): delivery.run()\n"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        assert receiver.seen.wait(30), "the worker never delivered"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        worker.kill()
    receiver.hold_seconds = 0
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert row.status == DeliveryStatus.SENDING  # claimed, never recorded
    monkeypatch.setitem(app.config, "WEBHOOKS_STALE_CLAIM_SECONDS", 0)
    delivery.run()
    assert len(receiver.received) == 2
    assert len(receiver.unique()) == 1  # the receiver drops the repeat by webhook-id
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, row.id).status == DeliveryStatus.DELIVERED
    assert db.session.get(
        Lead, ids.decode("lead", receiver.received[0]["payload"]["data"]["lead"]["id"])
    )
