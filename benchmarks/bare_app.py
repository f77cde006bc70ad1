"""The baselines: the least a Flask app can do for the same request, under the same gunicorn.

- ``POST /in/<token>``: parse the JSON body, one autocommit INSERT, answer 201 with
  the new id (no ORM, no Redis, no checks, no idempotency);
- ``GET /board?tenant=N`` (the board's yardstick): one SELECT of the cards the owner's
  board shows (the first 25 of every stage by last activity, read along the stage's
  index; Won and Lost only from the last 30 days; each with its contact's name) and a Jinja
  page of them in the board card's markup: status mark, name, value, next step, the move
  form with every stage. No session, no sign-in, no translations, no locale-aware
  formatting (amounts and words are plain English).

One psycopg connection per gunicorn worker, opened after the fork. Started by
``harness.bare_app`` (intake) or ``benchmarks/board.py`` with ``BENCH_BARE_DSN``.
"""

import os
from datetime import UTC, datetime, timedelta

import psycopg
from flask import Flask, jsonify, render_template_string, request
from psycopg.types.json import Jsonb

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Board</title>
</head><body><main class="wide"><h1>Board</h1><div id="board"><div class="columns">
{% for stage in stages %}{% set cards = by_stage.get(stage.id, []) %}
<section class="column" aria-labelledby="stage-{{ stage.id }}-title"><header>
<h2 id="stage-{{ stage.id }}-title">{{ stage.name }}</h2></header>
<div class="cards" data-stage-cards data-stage-id="{{ stage.id }}" id="stage-{{ stage.id }}-cards">
{% for lead in cards %}
{%- set idle_days = (today - lead.last_activity_at.date()).days -%}
{%- set rotting = stage.rot_days is not none and idle_days > stage.rot_days -%}
{%- set days_left = (lead.decision_date - today).days if lead.decision_date else none -%}
{%- if lead.flagged %}{% set mark, mark_text = "flagged", "flagged" -%}
{%- elif days_left is not none and days_left < 0 %}{% set mark, mark_text = "overdue", "decision date passed" -%}
{%- elif rotting %}{% set mark, mark_text = "rotting", "idle %d d" % idle_days -%}
{%- elif days_left is not none and days_left <= 3 %}{% set mark, mark_text = "window", "decision is near" -%}
{%- else %}{% set mark, mark_text = "ok", "on track" %}{% endif -%}
<article class="card deal mark-{{ mark }}{% if rotting %} rotting{% endif %}" id="deal-{{ lead.id }}" data-move-url="/deals/{{ lead.id }}/move" tabindex="0">
<h3><span class="status-mark" role="img" aria-label="{{ mark_text }}" title="{{ mark_text }}"></span><a href="/deals/{{ lead.id }}">{{ lead.name }}</a>{% if lead.value_minor %}<span class="value">${{ "{:,}".format(lead.value_minor // 100) }}</span>{% endif %}</h3>
<p class="meta next-step">{% if days_left is not none %}<span>decides in {{ days_left }} d</span>{% elif lead.next_touch_on %}<span>touch {{ lead.next_touch_on }}</span>{% else %}<span>idle {{ idle_days }} d</span>{% endif %}</p>
<form method="post" action="/deals/{{ lead.id }}/move" class="move" hx-post="/deals/{{ lead.id }}/move" hx-target="#board" hx-swap="outerHTML" hx-include="#board-filters">
<input type="hidden" name="from" value="board"><label class="sr-only" for="move-{{ lead.id }}">Move to</label>
<select name="stage_id" id="move-{{ lead.id }}">{% for s in stages %}<option value="{{ s.id }}"{% if s.id == lead.stage_id %} selected{% endif %}>{{ s.name }}</option>{% endfor %}</select>
<button type="submit" class="link">Move</button></form></article>
{% endfor %}</div></section>{% endfor %}
</div></div></main></body></html>"""  # noqa: E501 (the card markup, one line a part)

CARDS = """
SELECT lead.id, lead.stage_id, lead.value_minor, lead.decision_date, lead.next_touch_on,
       lead.last_activity_at, lead.flagged, contact.name, stage.name, stage.rot_days,
       stage.is_won OR stage.is_lost
FROM stage
JOIN LATERAL (SELECT lead.id FROM lead
              WHERE lead.tenant_id = stage.tenant_id AND lead.stage_id = stage.id
                AND (NOT (stage.is_won OR stage.is_lost)
                     OR coalesce(lead.won_at, lead.closed_at, lead.last_activity_at) >= %(since)s)
              ORDER BY lead.last_activity_at DESC, lead.id DESC LIMIT 25) AS page ON true
JOIN lead ON lead.id = page.id
JOIN contact ON contact.id = lead.contact_id
WHERE stage.tenant_id = %(tenant)s
ORDER BY stage.position, lead.last_activity_at DESC, lead.id DESC
"""

app = Flask(__name__)
_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["BENCH_BARE_DSN"], autocommit=True)
    return _connection


@app.post("/in/<token>")
def receive(token: str):
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": "send a JSON object"}), 400
    row = (
        connection()
        .execute(
            "INSERT INTO bare_lead (token, idempotency_key, name, email, phone, message, utm)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                token[:64],
                request.headers.get("Idempotency-Key"),
                str(data.get("name") or "")[:200],
                data.get("email"),
                data.get("phone"),
                data.get("message"),
                Jsonb({k: str(data[k]) for k in UTM_FIELDS if data.get(k)}),
            ),
        )
        .fetchone()
    )
    return jsonify({"id": row[0], "status": "created"}), 201


@app.get("/board")
def board():
    now = datetime.now(UTC)
    rows = connection().execute(
        CARDS, {"tenant": request.args.get("tenant", type=int), "since": now - timedelta(days=30)}
    )
    stages, by_stage = {}, {}
    keys = ("id", "stage_id", "value_minor", "decision_date", "next_touch_on")
    keys += ("last_activity_at", "flagged", "name")
    for row in rows:
        stage_id, closed = row[1], row[10]
        stages.setdefault(
            stage_id, {"id": stage_id, "name": row[8], "rot_days": None if closed else row[9]}
        )
        by_stage.setdefault(stage_id, []).append(dict(zip(keys, row[:8], strict=True)))
    return render_template_string(
        PAGE, stages=list(stages.values()), by_stage=by_stage, today=now.date()
    )


@app.get("/healthz")
def healthz():
    connection().execute("SELECT 1")
    return jsonify({"status": "ok"})
