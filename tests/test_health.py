"""/healthz tells a load balancer whether the database and Redis answer."""

import redis


def test_health_is_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_health_is_503_when_redis_is_down(app, client):
    working = app.extensions["conveyor_redis"]
    app.extensions["conveyor_redis"] = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.5)
    try:
        response = client.get("/healthz")
    finally:
        app.extensions["conveyor_redis"] = working
    assert response.status_code == 503
    assert response.json["redis"] == "down" and response.json["database"] == "ok"
