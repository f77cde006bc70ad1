"""Looking never changes anything: every GET route, as every role and signed out.

The crawl fills each URL with rows of the visitor's own workspace (the builders of
tests/test_access_matrix.py, so every GET route in ``app.url_map`` is visited), asks
for it as a page and as an htmx fragment, with a few filters, and compares every row
of every table before and after.

The one documented exception: opening the notifications page marks the reader's own
notifications there as read (``notification.read_at``); it is asserted explicitly.
"""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Notification, Role
from tests.test_access_matrix import (
    GET,
    HIDDEN,
    ROLES,
    ROWS,
    _routes,
    build_world,
    changed_tables,
    database_fingerprint,
    url_for,
)

# Read on purpose by GET /notifications (see the module docstring).
READ_MARKS = ("notification.read_at",)

# Filters and pages that read differently from the plain page.
EXTRA_QUERIES = {
    "conveyor.board": lambda s: [{"q": "Deal"}, {"owner": s.owner.id, "source": 1}],
    "clients.index": lambda s: [{"page": 2}, {"manager": s.team[Role.ACCOUNT_MANAGER].id}],
    "clients.export": lambda s: [{"manager": s.team[Role.ACCOUNT_MANAGER].id}],
    "leads.incoming": lambda s: [{"before": 10**9}],
    "sources.inbox": lambda s: [{"status": "rejected", "page": 2}, {"source": 1}],
    "radar.sources": lambda s: [{"days": 7}, {"start": "2026-01-01", "end": "2026-02-01"}],
    "radar.funnel": lambda s: [{"days": 90}, {"start": "2026-01-01", "end": "2026-02-01"}],
    "radar.sources_csv": lambda s: [{"days": 90}],
    "radar.conflict_list": lambda s: [{"status": "open", "kind": "cadence_missed", "page": 2}],
    "radar.conflicts_monthly": lambda s: [{"year": 2026, "month": 1}],
    "billing.index": lambda s: [{"checkout": "done"}],
}


@pytest.fixture
def world(app, make, monkeypatch):
    return build_world(app, make, monkeypatch)


def _notify_everyone(world) -> None:
    """One unread notification for each person, in each of their workspaces."""
    people = [(world.home, user) for user in world.team.values()]
    people.append((world.other, world.other_owner))
    for tenant, user in people:
        db.session.add(Notification(tenant_id=tenant.id, user_id=user.id, text="A deal rots"))
    db.session.commit()


def _read_notifications() -> set[tuple[int, int]]:
    return set(
        db.session.execute(
            sa.select(Notification.tenant_id, Notification.user_id)
            .where(Notification.read_at.is_not(None))
            .execution_options(all_tenants=True)
        ).all()
    )


def test_the_crawl_visits_every_get_route(app):
    crawled = {row.endpoint for row in ROWS if row.method == GET}
    served = {endpoint for endpoint, method in _routes(app) if method == GET}
    assert crawled == served


@pytest.mark.parametrize("role", [*ROLES, None], ids=lambda r: r.value if r else "signed_out")
def test_no_get_changes_any_row(app, world, role):
    client = world.clients[role] if role else app.test_client()
    visits = []  # (url, the answer the access matrix promises)
    for row in ROWS:
        if row.method != GET:
            continue
        scene = world.scene(role)
        values = row.ids(scene) if row.ids else {}
        expected = row.signed_out if role is None else (row.ok if role in row.members else HIDDEN)
        if row.endpoint.startswith("api."):
            # The crawl carries cookies, which never authenticate the API (401 for all);
            # the access matrix checks the API's answers with each kind of token.
            expected = None
        visits.append((url_for(app, row.endpoint, values), expected))
        for query in EXTRA_QUERIES.get(row.endpoint, lambda s: [])(scene):
            visits.append((url_for(app, row.endpoint, {**values, **query}), None))
    _notify_everyone(world)

    before = database_fingerprint(ignore=READ_MARKS)
    problems = []
    for url, expected in visits:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            response.get_data()
            response.close()
            if response.status_code >= 500:
                problems.append(f"GET {url} {headers} answered {response.status_code}")
            elif expected and not headers and expected.problem(response):
                problems.append(f"GET {url}: expected {expected}, {expected.problem(response)}")
    changed = changed_tables(before, database_fingerprint(ignore=READ_MARKS))

    assert not problems, "\n".join(problems)
    assert not changed, f"GETs changed rows in {changed}"
    # The documented exception: the reader's own notifications in this workspace, and no one else's.
    readers = {(world.home.id, world.team[role].id)} if role else set()
    assert _read_notifications() == readers
