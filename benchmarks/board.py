"""Server time and SQL queries of the board, the closer's Today queue and the lead page.

One run, everything on 127.0.0.1 and bounded (pages timed in process):

1. a fresh PostgreSQL database (dropped at the end), migrations, Redis db 12 flushed;
2. bulk-seeded: N workspaces (default 100), one big one with 10,000 open deals spread
   over the open stages, sources and owners (30 % idle past their stage's rotting
   threshold) plus closed history in Won/Lost, one medium one with 1,000 open deals
   (to see how time grows with data), the rest small; each deal with its contact and
   intake event; sample deals with a long timeline, touches and the raw intake post;
3. Flask test client requests, each in its own context as in production, timed
   (perf_counter around the request) after a warm-up, with SQL statements counted by
   a ``before_cursor_execute`` listener: the owner's board (big and medium workspace),
   a closer's board, a closer's Today queue, lead pages (owner, closer, a client with
   a long timeline);
4. the baseline in the same run, in a fresh interpreter importing only Flask and Jinja
   (so that its garbage collections do not walk Conveyor's heap): a bare page (no
   database, no i18n, no login) rendering exactly the cards and columns the owner's
   board showed, from an in-memory list, with a card template shaped like
   conveyor/_card.html, timed the same way; the ratio board p95 / baseline p95;
5. a what-if that changes no app code: the owner's board again after ``gc.freeze()``;
6. EXPLAIN ANALYZE of the board's two slowest statements; the database dropped.

    .venv/bin/python benchmarks/board.py [--small]
"""

import argparse
import gc
import json
import pickle
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from _seed import (  # noqa: E402
    STAGES,
    FreshDatabase,
    HardTimeout,
    QueryCounter,
    insert_leads,
    insert_rows,
    log,
    login,
    time_get,
)

FULL = {
    "workspaces": 100,
    "big_open": 10_000,
    "big_closed": 3_000,
    "medium_open": 1_000,
    "other_open": 100,
    "requests": 60,
    "warmup": 10,
}
SMALL = {
    "workspaces": 10,
    "big_open": 1_000,
    "big_closed": 300,
    "medium_open": 200,
    "other_open": 30,
    "requests": 20,
    "warmup": 5,
}
OPEN_STAGE_WEIGHTS = {
    "New": 25,
    "Contacted": 15,
    "Qualified": 10,
    "Assigned": 10,
    "Proposal": 8,
    "Negotiation": 7,
    "Client": 25,
}
PHASE = {name: phase for name, phase, *_ in STAGES}
ROT = {name: rot for name, _, rot, *_ in STAGES}
ROT_SHARE = 0.30
TARGET_RATIO = 3.0
FROZEN_LABEL = "what-if: owner board (big) after gc.freeze()"
LOST_REASONS = ("no_problem", "no_money", "bad_timing", "unreachable", "junk", "competitor")
TITLES = (
    "Website redesign",
    "Annual plan",
    "Office renovation",
    "Fleet service",
    "Audit",
    "Team training",
    "Catering",
    "Roof repair",
    "Consulting",
    "Licences",
)


# --------------------------------------------------------------------------- seeding


def deal_rows(ws, n_open: int, n_closed: int, rng: random.Random, now: datetime) -> list[dict]:
    today = now.date()
    names = rng.choices(list(OPEN_STAGE_WEIGHTS), list(OPEN_STAGE_WEIGHTS.values()), k=n_open)
    names += ["Won" if rng.random() < 0.35 else "Lost" for _ in range(n_closed)]
    rows = []
    for i, name in enumerate(names):
        phase = PHASE[name]
        if name in ("Won", "Lost"):
            idle = rng.uniform(1, 300)
        elif rng.random() < ROT_SHARE:
            idle = ROT[name] + rng.uniform(0.5, 40)
        else:
            idle = rng.uniform(0, ROT[name] * 0.9)
        last = now - timedelta(days=idle, minutes=rng.randrange(1440))
        created = last - timedelta(days=rng.uniform(0, 60))
        row = {
            "stage_id": ws.stages[name],
            "title": f"{rng.choice(TITLES)} #{i}",
            "created_at": created,
            "last_activity_at": last,
            "source_id": rng.choice(ws.sources) if rng.random() < 0.95 else None,
            "value_minor": rng.randrange(0, 50_000) * 100,
            "message": "We are looking for a quote, please call back in the morning.",
            "utm": {"utm_source": rng.choice(("google", "yandex", "partner"))},
        }
        if phase == "generation":
            row["owner_id"] = (
                rng.choice(ws.members["lead_generator"]) if rng.random() < 0.9 else None
            )
            if name == "Qualified":
                row.update(
                    problem="Needs it",
                    money="Has budget",
                    decision_date=today + timedelta(days=rng.randrange(-5, 40)),
                )
        elif phase == "conversion":
            row.update(
                owner_id=rng.choice(ws.members["closer"]),
                problem="Needs it",
                money="Has budget",
                decision_date=today + timedelta(days=rng.randrange(-10, 40)),
                qualified_at=created + timedelta(days=1),
                first_touch_at=created + timedelta(hours=rng.uniform(0.2, 30)),
            )
            if name == "Won":
                row.update(won_at=last, closed_at=last)
            elif name == "Lost":
                row.update(lost_reason=rng.choice(LOST_REASONS), closed_at=last)
        else:  # client
            row.update(
                owner_id=rng.choice(ws.members["account_manager"]),
                qualified_at=created,
                won_at=created + timedelta(days=10),
                next_touch_on=today + timedelta(days=rng.randrange(-5, 8)),
                last_touch_at=last,
                first_touch_at=created + timedelta(hours=2),
            )
        rows.append(row)
    return rows


def seed(app, params: dict, rng: random.Random, now: datetime) -> dict:
    from app.models import InboxItem, LeadEvent, Touch

    started = time.perf_counter()
    specs = [
        {"slug": "big", "members": {"lead_generator": 3, "closer": 5, "account_manager": 4}},
        {"slug": "medium", "members": {"lead_generator": 2, "closer": 3, "account_manager": 2}},
    ] + [
        {"slug": f"ws{i:03d}", "members": {"lead_generator": 1, "closer": 2, "account_manager": 1}}
        for i in range(params["workspaces"] - 2)
    ]
    counts = {"leads": 0, "events": 0}
    engine = _seed.seed_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        workspaces = _seed.seed_workspaces(conn, specs, now)
        big, medium = workspaces[0], workspaces[1]
        lead_ids: dict[int, list[int]] = {}
        for ws in workspaces:
            _seed.seed_sources(conn, ws, 12 if ws is big else 5, rng, now)
            if ws is big:
                n_open, n_closed = params["big_open"], params["big_closed"]
            elif ws is medium:
                n_open, n_closed = params["medium_open"], params["medium_open"] * 3 // 10
            else:
                n_open, n_closed = params["other_open"], params["other_open"] * 3 // 10
            rows = deal_rows(ws, n_open, n_closed, rng, now)
            ids = insert_leads(conn, ws.id, rows, rng)
            lead_ids[ws.id] = ids
            counts["leads"] += len(ids)
            events = [
                {
                    "tenant_id": ws.id,
                    "lead_id": lead_id,
                    "actor_id": None,
                    "kind": "intake",
                    "data": {"source": "Site form"},
                    "created_at": row["created_at"],
                }
                for lead_id, row in zip(ids, rows, strict=True)
            ]
            insert_rows(conn, LeadEvent.__table__, events)
            counts["events"] += len(events)

        # Sample deals of the big workspace get a realistic timeline: 15 events,
        # 3 touches and the raw intake post. One client gets a two-year timeline.
        big_rows = conn.execute(
            _seed.sa.text(
                "SELECT l.id, s.name, l.owner_id FROM lead l JOIN stage s ON s.id = l.stage_id "
                "WHERE l.tenant_id = :t AND NOT s.is_won AND NOT s.is_lost ORDER BY l.id"
            ),
            {"t": big.id},
        ).all()
        sample = rng.sample(big_rows, 50)
        closer = big.members["closer"][0]
        closer_rows = [r for r in big_rows if r.owner_id == closer]
        closer_sample = rng.sample(closer_rows, min(20, len(closer_rows)))
        client_rows = [r for r in big_rows if r.name == "Client"]
        long_client = client_rows[0]
        events, touches, inbox = [], [], []
        actors = big.members["lead_generator"] + big.members["closer"]
        for lead_id, _stage, _owner in sample + closer_sample:
            for k in range(15):
                kind = ("note", "touch", "stage_moved", "assigned", "qualified")[k % 5]
                data = {
                    "note": {"text": "Called, will decide next week; wants a discount."},
                    "touch": {"channel": "call", "outcome": "talked", "note": "Send the offer"},
                    "stage_moved": {"from": "New", "to": "Contacted"},
                    "assigned": {"phase": "conversion", "to": "Closer 0", "stage": "Assigned"},
                    "qualified": {
                        "problem": "Needs it",
                        "money": "Has budget",
                        "decision_date": now.date().isoformat(),
                    },
                }[kind]
                events.append(
                    {
                        "tenant_id": big.id,
                        "lead_id": lead_id,
                        "actor_id": rng.choice(actors),
                        "kind": kind,
                        "data": data,
                        "created_at": now - timedelta(days=15 - k),
                    }
                )
            for k in range(3):
                touches.append(
                    {
                        "tenant_id": big.id,
                        "lead_id": lead_id,
                        "actor_id": rng.choice(actors),
                        "channel": "call",
                        "outcome": "talked",
                        "note": None,
                        "happened_at": now - timedelta(days=3 - k),
                    }
                )
            inbox.append(
                {
                    "tenant_id": big.id,
                    "source_id": big.sources[0],
                    "received_at": now - timedelta(days=20),
                    "content_type": "application/json",
                    "headers": {"User-Agent": "x"},
                    "body": b'{"name": "Anna Ivanova", "email": "anna@example.org", '
                    b'"message": "Please call me back"}',
                    "body_truncated": False,
                    "status": "accepted",
                    "http_status": 201,
                    "reason": None,
                    "errors": {},
                    "fields": {"name": "Anna Ivanova"},
                    "lead_id": lead_id,
                }
            )
        for k in range(500):  # a client touched twice a week for ~2.5 years
            events.append(
                {
                    "tenant_id": big.id,
                    "lead_id": long_client.id,
                    "actor_id": big.members["account_manager"][0],
                    "kind": "touch",
                    "data": {"channel": "call", "outcome": "fine", "note": None},
                    "created_at": now - timedelta(days=(500 - k) * 3.5 / 2),
                }
            )
        insert_rows(conn, LeadEvent.__table__, events)
        insert_rows(conn, Touch.__table__, touches)
        insert_rows(conn, InboxItem.__table__, inbox)
        counts["events"] += len(events)
    engine.dispose()
    _seed.analyze(app)
    log(
        f"seeded {len(workspaces)} workspaces, {counts['leads']} deals, {counts['events']} "
        f"events in {time.perf_counter() - started:.1f} s"
    )
    return {
        "big": big,
        "medium": medium,
        "sample": [r.id for r in sample],
        "closer_sample": [r.id for r in closer_sample],
        "long_client": long_client.id,
        "counts": counts,
    }


# --------------------------------------------------------------------------- baseline

BARE_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · Bare</title>
<link rel="stylesheet" href="{{ url_for('static', filename='css/app.css') }}"></head>
<body><header class="topbar"><a class="brand" href="{{ url_for('board') }}">Bare</a>
<nav>{% for label in nav %}<a href="{{ url_for('board', section=label) }}">{{ label }}</a>{% endfor %}</nav>
</header><main id="main">{% block content %}{% endblock %}</main></body></html>"""  # noqa: E501
BARE_BOARD = """{% extends "base.html" %}{% block title %}Board{% endblock %}{% block content %}
<div id="board"><div class="columns">
{% for column in columns %}
<section class="column phase-{{ column.stage.phase }}" aria-labelledby="stage-{{ column.stage.id }}-title">
  <header><h2 id="stage-{{ column.stage.id }}-title">{{ column.stage.name }}</h2>
  <p class="muted"><span class="count">{{ column.count }}</span> · {{ column.value_minor|money }}</p></header>
  <div class="cards" data-stage-id="{{ column.stage.id }}">
  {% for lead in column.cards %}{% include "card.html" %}{% endfor %}
  {% if column.count > column.cards|length and column.cards %}{% set last = column.cards[-1] %}
  <div class="more" hx-get="{{ url_for('more', stage_id=column.stage.id, after=last.last_activity_at.isoformat() ~ '|' ~ last.id) }}">Loading more…</div>{% endif %}
  </div>
</section>
{% endfor %}
</div></div>{% endblock %}"""  # noqa: E501
BARE_CARD = """{% set idle_days = ((today - lead.last_activity_at.date()).days) %}
<article class="card deal{% if idle_days > lead.stage.rot_days %} rotting{% endif %}{% if lead.flagged %} flagged{% endif %}" id="deal-{{ lead.id }}"
         data-move-url="{{ url_for('move', lead_id=lead.id) }}" tabindex="0">
  <h3><a href="{{ url_for('lead', lead_id=lead.id) }}">{{ lead.contact.name }}</a></h3>
  <p class="muted">{{ lead.title }}</p>
  <p class="meta">
    {% if lead.value_minor %}<span>{{ lead.value_minor|money }}</span>{% endif %}
    {% if lead.source %}<span>{{ lead.source.name }}</span>{% endif %}
    {% if lead.owner %}<span>{{ lead.owner.name }}</span>{% endif %}
  </p>
  <p class="meta">
    {% if lead.decision_date %}{% set days_left = (lead.decision_date - today).days %}
      <span class="{{ 'window' if days_left|abs <= 3 }}">{{ "decides in %d d"|format(days_left) if days_left >= 0 else "decision was %d d ago"|format(-days_left) }}</span>
    {% endif %}
    <span class="{{ 'rot' if idle_days > lead.stage.rot_days }}">idle {{ idle_days }} d</span>
  </p>
  <form method="post" action="{{ url_for('move', lead_id=lead.id) }}" class="move">
    <input type="hidden" name="csrf_token" value="{{ csrf }}">
    <input type="hidden" name="from" value="board">
    <label class="sr-only" for="move-{{ lead.id }}">Move to</label>
    <select name="stage_id" id="move-{{ lead.id }}">
      {% for stage in all_stages %}<option value="{{ stage.id }}"{% if stage.id == lead.stage_id %} selected{% endif %}>{{ stage.name }}</option>{% endfor %}
    </select>
    <button type="submit" class="link">Move</button>
  </form>
</article>"""  # noqa: E501


def plain_columns(app, ws) -> tuple[list, list]:
    """The owner's board as the app builds it, copied into plain in-memory objects."""
    from flask import g

    from app.conveyor import board as board_service
    from app.extensions import db
    from app.models import Membership, Tenant

    with app.app_context():
        tenant = db.session.get(Tenant, ws.id)
        g.tenant, g.tenant_id = tenant, tenant.id
        membership = db.session.scalar(
            _seed.sa.select(Membership).where(
                Membership.tenant_id == ws.id, Membership.user_id == ws.members["owner"][0]
            )
        )
        columns = board_service.build(tenant, membership, board_service.BoardFilters())

        def ns_stage(stage):
            return SimpleNamespace(
                id=stage.id, name=stage.name, phase=stage.phase.value, rot_days=stage.rot_days
            )

        stages = [ns_stage(c.stage) for c in columns]
        plain = []
        for column in columns:
            cards = [
                SimpleNamespace(
                    id=lead.id,
                    title=lead.title,
                    value_minor=lead.value_minor,
                    flagged=lead.flagged,
                    decision_date=lead.decision_date,
                    last_activity_at=lead.last_activity_at,
                    stage_id=lead.stage_id,
                    stage=ns_stage(lead.stage),
                    contact=SimpleNamespace(name=lead.contact.name),
                    source=SimpleNamespace(name=lead.source.name) if lead.source else None,
                    owner=SimpleNamespace(name=lead.owner.name) if lead.owner else None,
                )
                for lead in column.cards
            ]
            plain.append(
                SimpleNamespace(
                    stage=ns_stage(column.stage),
                    count=column.count,
                    value_minor=column.value_minor,
                    cards=cards,
                )
            )
        db.session.remove()
    return plain, stages


# Runs in a fresh interpreter that imports only Flask and Jinja: in this process the
# baseline would pay for Conveyor's heap in every full garbage collection.
BASELINE_PROCESS = r"""
import contextvars, gc, json, pickle, sys, time
from datetime import UTC, datetime
from flask import Flask, render_template
from jinja2 import DictLoader

data = pickle.loads(sys.stdin.buffer.read())
bare = Flask("bare_board")
bare.jinja_loader = DictLoader(data["templates"])
bare.jinja_env.filters["money"] = lambda minor: f"${minor / 100:,.2f}"
NAV = ["Home", "Board", "Today", "Leads", "Clients", "Sources", "Team", "Radar", "Rules"]

@bare.get("/board")
def board():
    return render_template("board.html", columns=data["columns"], all_stages=data["stages"],
                           nav=NAV, today=datetime.now(UTC).date(), csrf="x" * 90)

@bare.get("/deals/<int:lead_id>")
def lead(lead_id):
    return ""

@bare.post("/deals/<int:lead_id>/move")
def move(lead_id):
    return ""

@bare.get("/board/stages/<int:stage_id>/more")
def more(stage_id):
    return ""

client = bare.test_client()
def get():
    return contextvars.Context().run(client.get, "/board")

for _ in range(data["warmup"]):
    get()
full = {"count": 0, "ms": 0.0, "started": 0.0}
def watch(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            full["started"] = time.perf_counter()
        else:
            full["count"] += 1
            full["ms"] += (time.perf_counter() - full["started"]) * 1000
gc.callbacks.append(watch)
ms = []
for _ in range(data["n"]):
    started = time.perf_counter()
    response = get()
    ms.append((time.perf_counter() - started) * 1000)
    assert response.status_code == 200
print(json.dumps({"ms": ms, "full_gcs": full["count"], "full_gc_ms": full["ms"],
                  "bytes": len(response.data), "cards": response.data.count(b'class="card deal'),
                  "objects": len(gc.get_objects())}))
"""


def run_baseline(columns, stages, n: int, warmup: int) -> dict:
    payload = pickle.dumps(
        {
            "columns": columns,
            "stages": stages,
            "n": n,
            "warmup": warmup,
            "templates": {"base.html": BARE_BASE, "board.html": BARE_BOARD, "card.html": BARE_CARD},
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", BASELINE_PROCESS],
        input=payload,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"baseline process failed: {done.stderr.decode()[-3000:]}")
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    row = _seed.summary(result["ms"])
    row.update(
        queries_min=0,
        queries_max=0,
        sql_p50=0.0,
        full_gcs=result["full_gcs"],
        full_gc_ms=result["full_gc_ms"] / result["full_gcs"] if result["full_gcs"] else 0.0,
        statuses=[200],
        bytes=result["bytes"],
        cards=result["cards"],
        objects=result["objects"],
    )
    return row


# --------------------------------------------------------------------------- measuring


def measure(app, seeded: dict, params: dict, counter: QueryCounter) -> dict:
    big, medium = seeded["big"], seeded["medium"]
    n, warmup = params["requests"], params["warmup"]
    owner = login(app, big.email("owner"))
    closer = login(app, big.email("closer", 0))
    medium_owner = login(app, medium.email("owner"))
    pages = {}
    plan = [
        (f"owner board (big: {params['big_open']} open)", owner, ["/board"]),
        (f"owner board (medium: {params['medium_open']} open)", medium_owner, ["/board"]),
        ("closer board (big)", closer, ["/board"]),
        ("closer Today queue (big)", closer, ["/today"]),
        ("lead page, owner (15 events)", owner, [f"/deals/{i}" for i in seeded["sample"]]),
        (
            "lead page, closer (+ queue)",
            closer,
            [f"/deals/{i}" for i in seeded["closer_sample"]],
        ),
        ("lead page, client with 500 events", owner, [f"/deals/{seeded['long_client']}"]),
    ]
    for label, client, urls in plan:
        timing = time_get(client, urls, counter, n, warmup)
        pages[label] = timing.row()
        row = pages[label]
        log(
            f"{label}: p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms, "
            f"{row['queries_min']}-{row['queries_max']} queries, status {row['statuses']}"
        )

    # Cards the owner's board shows, for the baseline.
    response = _seed.isolated(owner.get, "/board")
    cards = response.data.count(b'class="card deal')
    columns, stages = plain_columns(app, big)
    baseline_cards = sum(len(c.cards) for c in columns)
    baseline = run_baseline(columns, stages, n, warmup)
    pages["baseline: bare Flask+Jinja, same cards"] = baseline
    log(
        f"baseline (own process, {baseline['objects']} GC-tracked objects): p50 "
        f"{baseline['p50']:.1f} ms, p95 {baseline['p95']:.1f} ms ({baseline['cards']} cards "
        f"rendered of {baseline_cards}, {len(columns)} columns; the board showed {cards})"
    )
    # What-if (not app code): the same board after gc.freeze(), as a worker could do at
    # start, so full collections no longer walk the app's ~150k start-up objects.
    gc.collect()
    gc.freeze()
    try:
        timing = time_get(owner, ["/board"], counter, n, warmup)
    finally:
        gc.unfreeze()
    pages[FROZEN_LABEL] = timing.row()
    log(f"{FROZEN_LABEL}: p50 {timing.row()['p50']:.1f} ms, p95 {timing.row()['p95']:.1f} ms")
    return {
        "pages": pages,
        "cards": cards,
        "columns": len(columns),
        "baseline_cards": baseline_cards,
    }


def explain_board(app, seeded: dict, counter: QueryCounter) -> tuple[list, str]:
    """The owner's board statements by time, and EXPLAIN ANALYZE of the two slowest."""
    client = login(app, seeded["big"].email("owner"))
    _seed.isolated(client.get, "/board")
    counter.recording = []
    _seed.isolated(client.get, "/board")
    recorded, counter.recording = counter.recording, None
    ranked = sorted(recorded, key=lambda r: -r[2])
    statements = [(round(spent * 1000, 2), " ".join(sql.split())[:160]) for sql, _, spent in ranked]
    plans = [
        " ".join(sql.split())[:200] + "\n" + _seed.explain(app, sql, parameters)
        for sql, parameters, _ in ranked[:2]
    ]
    return statements, "\n\n".join(plans)


# --------------------------------------------------------------------------- report


def print_report(params, seeded, figures, statements, plan, command, busy, load, seconds) -> None:
    pages = figures["pages"]
    board_p95 = pages[f"owner board (big: {params['big_open']} open)"]["p95"]
    base_p95 = pages["baseline: bare Flask+Jinja, same cards"]["p95"]
    ratio = board_p95 / base_p95
    print()
    print(
        f"# board.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_seed.MACHINE}, "
        f"machine busy before start {busy * 100:.0f} %"
    )
    print(f"command: {command}")
    print(_seed.MachineLoad.describe(load))
    print(
        f"parameters: {params}; deals seeded {seeded['counts']['leads']}, events "
        f"{seeded['counts']['events']}; rotting share of open deals {ROT_SHARE:.0%}; "
        f"board cards shown {figures['cards']} in {figures['columns']} columns"
    )
    print()
    print(
        "| page | requests | p50 ms | p95 ms | max ms | SQL ms p50 | queries/request "
        "| full GCs (avg ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, row in pages.items():
        queries = (
            f"{row['queries_min']}"
            if row["queries_min"] == row["queries_max"]
            else f"{row['queries_min']}–{row['queries_max']}"
        )
        if label.startswith("baseline"):
            queries, sql = "0", "—"
        else:
            sql = f"{row['sql_p50']:.1f}"
        print(
            f"| {label} | {row['n']} | {row['p50']:.1f} | {row['p95']:.1f} | "
            f"{row['max']:.1f} | {sql} | {queries} | {row['full_gcs']} "
            f"({row['full_gc_ms']:.0f}) |"
        )
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    board_p50 = pages[f"owner board (big: {params['big_open']} open)"]["p50"]
    base_p50 = pages["baseline: bare Flask+Jinja, same cards"]["p50"]
    frozen_p95 = pages[FROZEN_LABEL]["p95"]
    print()
    print(
        f"board p95 / baseline p95 = {board_p95:.1f} / {base_p95:.1f} = {ratio:.2f}x "
        f"(target <= {TARGET_RATIO:.0f}x: {verdict}); at p50: {board_p50:.1f} / "
        f"{base_p50:.1f} = {board_p50 / base_p50:.2f}x; what-if gc.freeze(): p95 "
        f"{frozen_p95:.1f} / {base_p95:.1f} = {frozen_p95 / base_p95:.2f}x"
    )
    big, medium = (
        pages[f"owner board (big: {params['big_open']} open)"],
        pages[f"owner board (medium: {params['medium_open']} open)"],
    )
    scale = params["big_open"] / params["medium_open"]
    print(
        f"growth with data (x{scale:.0f} open deals, {params['medium_open']} -> "
        f"{params['big_open']}): owner board p50 {medium['p50']:.1f} -> {big['p50']:.1f} ms "
        f"(x{big['p50'] / medium['p50']:.2f}), SQL p50 {medium['sql_p50']:.1f} -> "
        f"{big['sql_p50']:.1f} ms (x{big['sql_p50'] / medium['sql_p50']:.2f}); queries "
        f"{medium['queries_max']} -> {big['queries_max']}"
    )
    print()
    print("owner board statements (ms, SQL):")
    for spent, sql in statements:
        print(f"  {spent:8.2f}  {sql}")
    print()
    print("EXPLAIN (ANALYZE, BUFFERS) of the two slowest board statements:")
    print(plan)
    print(f"\nrun took {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick version")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=int, default=600, help="hard bound for the run (s)")
    args = parser.parse_args()
    params = dict(SMALL if args.small else FULL)
    command = ".venv/bin/python benchmarks/board.py" + (" --small" if args.small else "")
    _seed.install_hard_timeout(args.timeout)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    busy = _seed.machine_busy_share()
    log(f"machine busy before start: {busy * 100:.0f} %")
    try:
        _seed.flush_redis()
        with FreshDatabase("board") as database:
            app = _seed.make_app(database.dsn)
            from app.extensions import db

            try:
                seeded = seed(app, params, rng, now)
                with app.app_context():
                    counter = QueryCounter(db.engine)
                load = _seed.MachineLoad(database.name)
                figures = measure(app, seeded, params, counter)
                load = load.stop()
                statements, plan = explain_board(app, seeded, counter)
            finally:
                with app.app_context():
                    db.engine.dispose()
        print_report(
            params,
            seeded,
            figures,
            statements,
            plan,
            command,
            busy,
            load,
            time.perf_counter() - started,
        )
        return 0
    except (HardTimeout, KeyboardInterrupt) as error:
        log(f"aborted: {error}")
        return 2
    finally:
        _seed.flush_redis()


if __name__ == "__main__":
    sys.exit(main())
