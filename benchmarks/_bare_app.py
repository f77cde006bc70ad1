"""Baseline for benchmarks/intake.py: the least a Flask intake endpoint can do.

Parse the JSON body, do one INSERT (autocommit, so one round trip and one durable
commit), answer 201 with the new id. One psycopg connection per gunicorn worker,
opened on first use after the fork. No ORM, no Redis, no validation, no idempotency.

Run only by benchmarks/intake.py: ``BENCH_BARE_DSN=postgresql://... gunicorn _bare_app:app``.
The table is created by intake.py (see ``BARE_SCHEMA`` there).
"""

import os
import threading

import psycopg
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

app = Flask(__name__)
_lock = threading.Lock()
_connection: psycopg.Connection | None = None
_connection_pid: int | None = None


def connection() -> psycopg.Connection:
    """This worker's one connection (psycopg serialises use across gthread threads)."""
    global _connection, _connection_pid
    with _lock:
        if _connection is None or _connection.closed or _connection_pid != os.getpid():
            _connection = psycopg.connect(os.environ["BENCH_BARE_DSN"], autocommit=True)
            _connection_pid = os.getpid()
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
                (request.headers.get("Idempotency-Key") or "")[:250] or None,
                str(data.get("name") or "")[:200],
                str(data.get("email") or "")[:254] or None,
                str(data.get("phone") or "")[:40] or None,
                str(data.get("message") or "")[:5000] or None,
                Jsonb({k: str(data[k]) for k in UTM_FIELDS if data.get(k)}),
            ),
        )
        .fetchone()
    )
    return jsonify({"id": row[0], "status": "created"}), 201


@app.get("/healthz")
def healthz():
    connection().execute("SELECT 1")
    return jsonify({"status": "ok"})
