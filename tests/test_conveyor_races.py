"""Races on the conveyor's own rules, with parallel requests on the real PostgreSQL.

Each test fires the same request from several browsers at once (threads, each with its
own test client and so its own database session) and checks what a user would see after:
one win with its promises once, a workspace that keeps an active owner.
"""

import threading

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Conflict, EventKind, Lead, LeadEvent, Membership, Promise, Role
from tests import factories

ALL = {"all_tenants": True}


def _signed_in(app, email):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": factories.PASSWORD})
    assert response.status_code == 302
    return client


def _all_at_once(requests):
    """Send every request in its own thread, released together; their responses."""
    start = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def send(index, request):
        start.wait(10)
        answers[index] = request()

    threads = [threading.Thread(target=send, args=item) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def _count(model, *where):
    return db.session.scalar(
        sa.select(sa.func.count(model.id)).where(*where).execution_options(**ALL)
    )


def test_winning_one_deal_six_times_at_once_wins_it_once_with_its_promises_once(app, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    closer = make.member(tenant, Role.CLOSER)
    make.member(tenant, Role.ACCOUNT_MANAGER)
    deal = make.lead(tenant, "Negotiation", owner=closer)
    form = {
        "value": "2500",
        "account_manager_id": "0",
        "promises-0-text": "Free delivery in December",
        "promises-1-text": "Half price on the second order",
        "promises-1-discount_percent": "50",
    }
    url = f"/deals/{deal.id}/win"
    clients = [_signed_in(app, closer.email) for _ in range(6)]
    answers = _all_at_once([lambda c=c: c.post(url, data=form) for c in clients])
    assert all(a.status_code in (200, 302, 422) for a in answers), [a.status_code for a in answers]
    assert sorted(a.status_code for a in answers).count(302) == 6  # every browser moves on
    assert _count(LeadEvent, LeadEvent.lead_id == deal.id, LeadEvent.kind == EventKind.WON) == 1
    assert (
        _count(LeadEvent, LeadEvent.lead_id == deal.id, LeadEvent.kind == EventKind.HANDED_OFF) == 1
    )
    assert _count(Promise, Promise.lead_id == deal.id) == 2
    assert _count(Conflict, Conflict.lead_id == deal.id) == 1
    # The five late browsers are told why nothing happened.
    told = []
    for client in clients:
        page = client.get("/today")
        told.append("already won" in page.text)
    assert told.count(True) == 5


def test_two_owners_deactivating_each_other_at_once_leave_one_active_owner(app, make):
    tenant, first = make.workspace_with_owner(name="Bakery")
    second = make.member(tenant, Role.OWNER)
    first_seat = make.membership_of(tenant, first)
    second_seat = make.membership_of(tenant, second)
    by_first = _signed_in(app, first.email)
    by_second = _signed_in(app, second.email)
    first_url = f"/team/members/{first_seat.id}/deactivate"
    second_url = f"/team/members/{second_seat.id}/deactivate"
    for _ in range(5):
        answers = _all_at_once(
            [lambda: by_first.post(second_url), lambda: by_second.post(first_url)]
        )
        assert all(a.status_code in (302, 404) for a in answers)
        active_owners = _count(
            Membership,
            Membership.tenant_id == tenant.id,
            Membership.role == Role.OWNER,
            Membership.active.is_(True),
        )
        assert active_owners == 1
        db.session.expire_all()
        for seat in (first_seat, second_seat):
            seat.active = True
        db.session.commit()


def test_an_owner_demoting_the_other_while_being_deactivated_keeps_an_active_owner(app, make):
    tenant, first = make.workspace_with_owner(name="Bakery")
    second = make.member(tenant, Role.OWNER)
    first_seat = make.membership_of(tenant, first)
    second_seat = make.membership_of(tenant, second)
    by_first = _signed_in(app, first.email)
    by_second = _signed_in(app, second.email)
    demote = f"/team/members/{second_seat.id}/role"
    deactivate = f"/team/members/{first_seat.id}/deactivate"
    for _ in range(5):
        _all_at_once(
            [
                lambda: by_first.post(demote, data={"role": "closer"}),
                lambda: by_second.post(deactivate),
            ]
        )
        db.session.expire_all()
        seats = db.session.scalars(
            sa.select(Membership).where(Membership.tenant_id == tenant.id).execution_options(**ALL)
        ).all()
        assert [s for s in seats if s.role == Role.OWNER and s.active]
        for seat in seats:
            seat.active, seat.role = True, Role.OWNER
        db.session.commit()


@pytest.mark.parametrize("action", ["deactivate", "demote"])
def test_the_last_active_owner_can_never_be_deactivated_or_demoted(
    app, client, make, login, action
):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    seat = make.membership_of(tenant, owner)
    login(owner.email)
    if action == "deactivate":
        client.post(f"/team/members/{seat.id}/deactivate")
    else:
        client.post(f"/team/members/{seat.id}/role", data={"role": "closer"})
    page = client.get("/team")
    assert "at least one active owner" in page.text
    db.session.expire_all()
    assert seat.active and seat.role == Role.OWNER
    assert _count(Lead) == 0
