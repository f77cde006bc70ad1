"""The baselines: the least a Flask app can do for the same request, under the same gunicorn.

- ``POST /in/<token>``: parse the JSON body, one autocommit INSERT, answer 201 with
  the new id (no ORM, no Redis, no checks, no idempotency);
- ``GET /cards?tenant=N&limit=M``: one SELECT of a workspace's newest leads with
  their contacts and a Jinja page of cards (the board's floor).

One psycopg connection per gunicorn worker, opened after the fork. Started by
``harness.bare_app`` with ``BENCH_BARE_DSN``.
"""

import os

import psycopg
from flask import Flask, jsonify, render_template_string, request
from psycopg.types.json import Jsonb

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CARDS = """<!doctype html><html><head><title>Board</title></head><body><main>
<h1>Board</h1><section class="column"><h2>{{ cards|length }} cards</h2>
{% for card in cards %}<article class="card"><a href="/deals/{{ card.id }}">{{ card.title }}</a>
<p>{{ card.name }} · {{ card.email or card.phone }}</p>
<p>{{ "%.2f"|format((card.value or 0) / 100) }} · {{ card.created.date() }}</p></article>
{% endfor %}</section></main></body></html>"""

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


@app.get("/cards")
def cards():
    rows = connection().execute(
        "SELECT lead.id, lead.title, lead.value_minor, lead.created_at, contact.name,"
        " contact.email, contact.phone FROM lead JOIN contact ON contact.id = lead.contact_id"
        " WHERE lead.tenant_id = %s ORDER BY lead.id DESC LIMIT %s",
        (request.args.get("tenant", type=int), request.args.get("limit", 50, type=int)),
    )
    keys = ("id", "title", "value", "created", "name", "email", "phone")
    return render_template_string(CARDS, cards=[dict(zip(keys, row, strict=True)) for row in rows])


@app.get("/healthz")
def healthz():
    connection().execute("SELECT 1")
    return jsonify({"status": "ok"})
