"""Billing per workspace: the trial, Checkout, the portal, seats, webhooks, read-only access.

The real ``stripe`` library talks to ``tests/stripe_stub.py`` on 127.0.0.1; webhook
events are signed for real with the webhook secret.
"""

import random
import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import (
    EventKind,
    InboxItem,
    Invitation,
    Lead,
    LeadEvent,
    Role,
    Source,
    StripeEvent,
    Subscription,
)
from app.queue import get_queue
from app.workspace import services as workspace
from tests.stripe_stub import StripeStub, event, sign, subscription

SECRET = "whsec_test_conveyor"
SETTINGS = {
    "STRIPE_SECRET_KEY": "sk_test_conveyor",
    "STRIPE_WEBHOOK_SECRET": SECRET,
    "STRIPE_PRICE_STARTER": "price_starter",
    "STRIPE_PRICE_TEAM": "price_team",
}
NEW_SOURCE = {"name": "Ads", "kind": "site_form", "cost": "0", "rate_limit_per_minute": "600"}


@pytest.fixture
def stripe_stub():
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def billing(app, stripe_stub):
    """Billing on, against the stub, for this test only (the app lives for the session)."""
    settings = {**SETTINGS, "STRIPE_API_BASE": stripe_stub.url}
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    yield stripe_stub
    app.config.update(saved)


def row(tenant) -> Subscription:
    """The workspace's subscription as the database has it now."""
    db.session.expire_all()
    return db.session.scalar(sa.select(Subscription).where(Subscription.tenant_id == tenant.id))


def put(tenant, **values) -> Subscription:
    """Set the workspace's billing state directly."""
    subscription = row(tenant)
    for name, value in values.items():
        setattr(subscription, name, value)
    db.session.commit()
    return subscription


def subscribed(tenant, stub, status="active", seats=1, sub_id="sub_1") -> None:
    """The workspace subscribed through Stripe (and the stub knows the subscription)."""
    stub.subscriptions[sub_id] = subscription(sub_id, "cus_1", status, "price_starter", seats)
    put(
        tenant,
        stripe_customer_id="cus_1",
        stripe_subscription_id=sub_id,
        stripe_item_id=f"si_{sub_id}",
        status=status,
        plan="starter",
        seats=seats,
    )


def post_event(client, body: bytes, secret: str = SECRET, timestamp: int | None = None):
    headers = {"Stripe-Signature": sign(body, secret, timestamp)}
    return client.post(
        "/billing/webhook", data=body, headers=headers, content_type="application/json"
    )


def test_billing_is_off_without_a_key_and_every_workspace_has_full_access(client, make, login):
    tenant, owner = make.workspace_with_owner()
    put(tenant, trial_ends_at=clock.now() - timedelta(days=30), status="canceled")
    login(owner.email)
    assert "Billing is off on this server" in client.get("/billing").text
    assert client.post("/sources/new", data=NEW_SOURCE).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(Source.id))) == 1
    body = event("customer.subscription.updated", subscription("sub_x", "cus_x", "active", "p"), 1)
    assert post_event(client, body).status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(StripeEvent.id))) == 0


@pytest.mark.parametrize("role", [Role.LEAD_GENERATOR, Role.CLOSER, Role.ACCOUNT_MANAGER])
def test_only_the_owner_reaches_billing(app, client, make, login, billing, role):
    tenant, owner = make.workspace_with_owner()
    member = make.member(tenant, role)
    login(member.email)
    assert 'href="/billing"' not in client.get("/").text
    for method, url in [
        ("GET", "/billing"),
        ("POST", "/billing/checkout"),
        ("POST", "/billing/portal"),
    ]:
        assert client.open(url, method=method, data={"plan": "team"}).status_code == 404
    assert billing.requests == []
    login(owner.email, test_client=(owner_client := app.test_client()))
    assert 'href="/billing"' in owner_client.get("/").text


def test_a_new_workspace_has_a_14_day_trial_without_a_card(client, make, login, billing):
    _, owner = make.workspace_with_owner()
    login(owner.email)
    page = client.get("/billing").text
    assert re.search(r'id="billing-status">\s*Trial', page)
    assert re.search(r'id="billing-trial-days">14<', page)
    assert re.search(r'id="billing-seats">1<', page)
    assert "Continue to payment" in page


def test_checkout_creates_the_stripe_customer_once(client, make, login, billing, monkeypatch):
    monkeypatch.setattr("app.billing.services.time_bucket", lambda seconds: 7)
    tenant, owner = make.workspace_with_owner()
    make.member(tenant, Role.CLOSER)
    login(owner.email)
    first = client.post("/billing/checkout", data={"plan": "team"})
    again = client.post("/billing/checkout", data={"plan": "team"})
    assert first.status_code == again.status_code == 302
    assert first.location == again.location
    assert first.location.startswith("https://checkout.stripe.test/")
    [customer] = billing.calls("POST", "/v1/customers")
    assert customer["params"]["metadata"]["tenant_id"] == str(tenant.id)
    assert customer["headers"]["Idempotency-Key"] == f"conveyor-t{tenant.id}-customer"
    assert row(tenant).stripe_customer_id == "cus_1"
    sessions = billing.calls("POST", "/v1/checkout/sessions")
    assert len(sessions) == 2
    params = sessions[0]["params"]
    assert params["mode"] == "subscription"
    assert params["customer"] == "cus_1"
    assert params["line_items"] == [{"price": "price_team", "quantity": "2"}]
    assert params["metadata"]["tenant_id"] == str(tenant.id)
    assert params["subscription_data"]["trial_end"] == str(
        int(row(tenant).trial_ends_at.timestamp())
    )
    keys = {call["headers"]["Idempotency-Key"] for call in sessions}
    assert len(keys) == 1 and keys.pop().startswith(f"conveyor-t{tenant.id}-checkout-7-")
    htmx = client.post("/billing/checkout", data={"plan": "team"}, headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == first.location


def test_the_portal_opens_for_a_customer_and_stripe_trouble_is_explained(
    client, make, login, billing
):
    tenant, owner = make.workspace_with_owner()
    login(owner.email)
    refused = client.post("/billing/portal", follow_redirects=True)
    assert "Subscribe first" in refused.text
    subscribed(tenant, billing)
    portal = client.post("/billing/portal")
    assert portal.location.startswith("https://billing.stripe.test/")
    [call] = billing.calls("POST", "/v1/billing_portal/sessions")
    assert call["params"]["customer"] == "cus_1"
    assert call["headers"]["Idempotency-Key"].startswith(f"conveyor-t{tenant.id}-portal-")
    billing.fail("/v1/billing_portal")
    assert "Stripe did not answer" in client.post("/billing/portal", follow_redirects=True).text


def _lifecycle(tenant, start: int) -> list[bytes]:
    """Checkout, then the subscription's life: incomplete, active, past due, active."""

    def sub(status):
        return subscription("sub_9", "cus_1", status, "price_team", 1, tenant_id=tenant.id)

    checkout = {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_1",
        "subscription": "sub_9",
        "client_reference_id": str(tenant.id),
    }
    return [
        event("checkout.session.completed", checkout, start),
        event("customer.subscription.created", sub("incomplete"), start + 1),
        event("customer.subscription.updated", sub("active"), start + 2),
        event("customer.subscription.updated", sub("past_due"), start + 3),
        event("customer.subscription.updated", sub("active"), start + 4),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_webhooks_replayed_and_shuffled_end_in_the_latest_state(
    client, make, billing, run_jobs, seed
):
    tenant, _ = make.workspace_with_owner()
    put(tenant, stripe_customer_id="cus_1")
    billing.subscriptions["sub_9"] = subscription("sub_9", "cus_1", "active", "price_team", 1)
    start = int(time.time()) - 60
    deliveries = _lifecycle(tenant, start) * 2
    random.Random(seed).shuffle(deliveries)
    answers = [post_event(client, body) for body in deliveries[:4]]
    run_jobs()
    answers += [post_event(client, body) for body in deliveries[4:]]
    run_jobs()
    assert {answer.status_code for answer in answers} == {200}
    assert sorted(a.json["status"] for a in answers) == ["duplicate"] * 5 + ["received"] * 5
    state = row(tenant)
    assert (state.status, state.plan, state.stripe_subscription_id) == ("active", "team", "sub_9")
    assert state.stripe_state_at.timestamp() == start + 4
    events = db.session.scalars(sa.select(StripeEvent)).all()
    assert len(events) == 5 and all(e.processed_at and e.tenant_id == tenant.id for e in events)


def test_events_of_the_same_second_defer_to_stripes_current_subscription(
    client, make, billing, run_jobs
):
    tenant, _ = make.workspace_with_owner()
    subscribed(tenant, billing, status="active")
    billing.subscriptions["sub_1"]["status"] = "unpaid"
    moment = int(time.time()) - 10
    for status in ("unpaid", "active"):
        body = event(
            "customer.subscription.updated",
            subscription("sub_1", "cus_1", status, "price_starter"),
            moment,
        )
        post_event(client, body)
    run_jobs()
    assert row(tenant).status == "unpaid"
    assert billing.calls("GET", "/v1/subscriptions/sub_1")


def test_news_of_an_ended_old_subscription_leaves_the_new_one_alone(
    client, make, billing, run_jobs
):
    tenant, _ = make.workspace_with_owner()
    subscribed(tenant, billing, status="active", sub_id="sub_new")
    ended = subscription("sub_old", "cus_1", "canceled", "price_starter")
    post_event(client, event("customer.subscription.deleted", ended, int(time.time())))
    run_jobs()
    state = row(tenant)
    assert (state.stripe_subscription_id, state.status) == ("sub_new", "active")


def test_an_event_whose_processing_failed_is_processed_on_the_next_delivery(
    client, make, billing, run_jobs
):
    tenant, _ = make.workspace_with_owner()
    put(tenant, stripe_customer_id="cus_1")
    checkout = {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_1",
        "subscription": "sub_1",
    }
    body = event("checkout.session.completed", checkout, int(time.time()))
    post_event(client, body)
    billing.fail("/v1/subscriptions")
    run_jobs()
    assert db.session.scalar(sa.select(StripeEvent.processed_at)) is None
    billing.failures.clear()
    billing.subscriptions["sub_1"] = subscription("sub_1", "cus_1", "active", "price_team")
    assert post_event(client, body).json == {"status": "duplicate"}
    run_jobs()
    assert (row(tenant).status, row(tenant).plan) == ("active", "team")


@pytest.mark.parametrize(
    "problem",
    ["wrong secret", "stale timestamp", "garbage body", "no signature", "not an event"],
)
def test_a_bad_webhook_answers_400_and_nothing_is_stored(client, make, billing, problem):
    body = event("invoice.payment_failed", {"id": "in_1", "customer": "cus_1"}, int(time.time()))
    headers = {"Stripe-Signature": sign(body, SECRET)}
    if problem == "wrong secret":
        headers["Stripe-Signature"] = sign(body, "whsec_someone_else")
    elif problem == "stale timestamp":
        headers["Stripe-Signature"] = sign(body, SECRET, int(time.time()) - 6 * 60)
    elif problem == "garbage body":
        body = b"\xff{not json"
        headers["Stripe-Signature"] = sign(body, SECRET)
    elif problem == "no signature":
        headers = {}
    else:
        body = b'{"id": "evt_1", "object": "event"}'
        headers["Stripe-Signature"] = sign(body, SECRET)
    answer = client.post("/billing/webhook", data=body, headers=headers)
    assert answer.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(StripeEvent.id))) == 0
    assert get_queue().count == 0


ALLOWED = ["trialing", "active", "past_due", "incomplete"]
READ_ONLY = ["unpaid", "canceled", "incomplete_expired", "paused", "trial ended"]


@pytest.mark.parametrize("status", ALLOWED + READ_ONLY)
def test_each_status_gives_its_access(app, client, make, login, billing, status):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    if status == "trial ended":
        put(tenant, trial_ends_at=clock.now() - timedelta(minutes=1))
    else:
        subscribed(tenant, billing, status=status)
    login(owner.email)
    answer = client.post("/sources/new", data=NEW_SOURCE)
    created = db.session.scalar(sa.select(sa.func.count(Source.id)))
    if status in ALLOWED:
        assert (answer.status_code, created) == (302, 1)
    else:
        assert (answer.status_code, created) == (303, 0)
        assert "read-only until its subscription is paid" in client.get(answer.location).text
    owner_sees_banner = 'id="billing-banner"' in client.get("/board").text
    assert owner_sees_banner == (status in READ_ONLY + ["past_due"])
    explained = {"past_due": "billing-past-due", "incomplete": "billing-pending"}
    expected = explained.get(status, "billing-read-only" if status in READ_ONLY else None)
    if expected:
        assert f'id="{expected}"' in client.get("/billing").text
    login(closer.email, test_client=(closer_client := app.test_client()))
    closer_sees_banner = 'id="billing-banner"' in closer_client.get("/board").text
    assert closer_sees_banner == (status in READ_ONLY)


def test_a_read_only_workspace_reads_exports_pays_and_keeps_capturing_leads(
    client, make, login, billing, run_jobs
):
    tenant, owner = make.workspace_with_owner()
    source = make.source(tenant, "Site")
    deal = make.lead(tenant, "New", owner=owner)
    subscribed(tenant, billing, status="canceled")
    login(owner.email)
    refused = client.post(f"/deals/{deal.id}/notes", data={"text": "Called"})
    assert refused.status_code == 303
    htmx = client.post(
        f"/deals/{deal.id}/notes", data={"text": "Called"}, headers={"HX-Request": "true"}
    )
    assert (htmx.status_code, htmx.headers["HX-Refresh"]) == (402, "true")
    assert "read-only" in htmx.text
    note_count = sa.select(sa.func.count(LeadEvent.id)).where(LeadEvent.kind == EventKind.NOTE)
    assert db.session.scalar(note_count) == 0
    assert client.get("/board").status_code == 200
    assert client.get(f"/deals/{deal.id}").status_code == 200
    assert client.get("/clients/export.csv").status_code == 200
    assert 'id="billing-read-only"' in client.get("/billing").text
    assert client.post("/billing/portal").location.startswith("https://billing.stripe.test/")
    answer = client.post(f"/in/{source.intake_token}", json={"email": "new@example.org"})
    assert answer.status_code == 202
    run_jobs()
    assert _lead_of_receipt(answer.json["id"]).flagged is True
    assert client.post("/logout").status_code == 302
    # Paid again: the very next lead is not flagged (nothing remembers the lapse).
    subscribed(tenant, billing, status="active")
    paid = client.post(f"/in/{source.intake_token}", json={"email": "paid@example.org"})
    assert paid.status_code == 202
    run_jobs()
    assert _lead_of_receipt(paid.json["id"]).flagged is False


def _lead_of_receipt(receipt: str) -> Lead:
    """The lead an intake receipt became, once the builder has run."""
    return db.session.scalar(
        sa.select(Lead)
        .join(InboxItem, InboxItem.lead_id == Lead.id)
        .where(InboxItem.receipt == receipt)
        .execution_options(all_tenants=True)
    )


def test_seats_follow_the_team(client, make, login, billing, run_jobs):
    tenant, owner = make.workspace_with_owner()
    closer = make.member(tenant, Role.CLOSER)
    subscribed(tenant, billing, seats=2)
    login(owner.email)
    client.post("/team/invitations", data={"email": "new@example.com", "role": "closer"})
    invitation = db.session.scalar(sa.select(Invitation))
    newcomer = workspace.create_user("new@example.com", "New", "long enough password")
    workspace.accept_invitation(invitation, newcomer)
    run_jobs()
    membership = make.membership_of(tenant, closer)
    client.post(f"/team/members/{membership.id}/deactivate")
    run_jobs()
    client.post(f"/team/members/{membership.id}/reactivate")
    client.post(f"/team/members/{membership.id}/reactivate")
    run_jobs()
    updates = billing.calls("POST", "/v1/subscription_items/si_sub_1")
    assert [call["params"]["quantity"] for call in updates] == ["3", "2", "3"]
    keys = [call["headers"]["Idempotency-Key"] for call in updates]
    assert keys == [f"conveyor-t{tenant.id}-seats-v{n}-q{q}" for n, q in [(0, 3), (1, 2), (2, 3)]]
    assert (row(tenant).seats, row(tenant).seats_version) == (3, 3)


def test_the_trial_ending_email_arrives_three_days_before_once(make, billing, run_jobs, mailbox):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    put(tenant, trial_ends_at=clock.now() + timedelta(days=2, hours=20))
    for _ in range(2):
        get_queue().enqueue("app.tasks.billing.check_trials")
        run_jobs()
    [message] = mailbox.to(owner.email)
    assert message["Subject"].startswith("The trial of Bakery ends on")
    assert "http://conveyor.test/billing" in mailbox.text(message)
    assert "Choose a plan" in mailbox.html(message)
    put(tenant, trial_ends_at=clock.now() - timedelta(hours=1))
    get_queue().enqueue("app.tasks.billing.check_trials")
    run_jobs()
    assert mailbox.to(owner.email)[-1]["Subject"] == "Bakery is now read-only"


def test_a_failed_payment_emails_the_owner_once(app, client, make, billing, run_jobs, mailbox):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    subscribed(tenant, billing)
    app.config["WTF_CSRF_ENABLED"] = True  # Stripe sends no CSRF token: the webhook is exempt
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "attempt_count": 1,
        "amount_due": 4900,
        "currency": "usd",
    }
    body = event("invoice.payment_failed", invoice, int(time.time()))
    assert post_event(client, body).status_code == 200
    assert post_event(client, body).json == {"status": "duplicate"}
    run_jobs()
    [message] = mailbox.to(owner.email)
    assert message["Subject"] == "The payment for Bakery failed"
    assert "$49" in mailbox.text(message)
    assert "Update the card" in mailbox.html(message)


def test_an_unpaid_subscription_restricts_access_and_tells_the_owner(
    client, make, billing, run_jobs, mailbox
):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    subscribed(tenant, billing)
    unpaid = subscription("sub_1", "cus_1", "unpaid", "price_starter")
    post_event(client, event("customer.subscription.updated", unpaid, int(time.time())))
    run_jobs()
    assert row(tenant).status == "unpaid"
    [message] = mailbox.to(owner.email)
    assert message["Subject"] == "Bakery is now read-only"
