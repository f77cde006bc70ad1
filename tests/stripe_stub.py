"""A local stand-in for the part of Stripe's HTTP API that Conveyor calls.

The real ``stripe`` library talks to it over HTTP on 127.0.0.1: it sends form-encoded
bodies, a Bearer key and an ``Idempotency-Key``, as it would to Stripe. The stub
records every request, replays the stored answer for a repeated idempotency key (and
refuses a reused key with other parameters), and keeps subscriptions that tests set.
It also signs webhook events the way Stripe does.
"""

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """``a[b][0][c]=v`` pairs into nested dicts and lists, as Stripe reads them."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    """Dicts keyed 0, 1, 2… become lists."""
    if not isinstance(node, dict):
        return node
    node = {key: _lists(value) for key, value in node.items()}
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


_ids = itertools.count(1)


def event(kind: str, obj: dict, created: int, event_id: str | None = None) -> bytes:
    """A webhook event body as Stripe sends it."""
    return json.dumps(
        {
            "id": event_id or f"evt_{next(_ids)}",
            "object": "event",
            "type": kind,
            "created": created,
            "livemode": False,
            "api_version": "2025-01-01",
            "data": {"object": obj},
        }
    ).encode()


def subscription(
    sub_id: str,
    customer: str,
    status: str,
    price: str,
    quantity: int = 1,
    item_id: str | None = None,
    period_end: int | None = None,
    tenant_id: int | None = None,
    cancel_at_period_end: bool = False,
) -> dict:
    """A subscription object in the shape the app reads."""
    item_id = item_id or f"si_{sub_id}"
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "metadata": {"tenant_id": str(tenant_id)} if tenant_id else {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": item_id,
                    "object": "subscription_item",
                    "quantity": quantity,
                    "price": {"id": price, "object": "price"},
                    "current_period_end": period_end or int(time.time()) + 30 * 86400,
                    "subscription": sub_id,
                }
            ],
        },
    }


class StripeStub:
    """The server, what it was asked, and the objects it holds."""

    def __init__(self):
        self.requests: list[dict] = []
        self.subscriptions: dict[str, dict] = {}
        self.failures: dict[str, int] = {}
        self._answers: dict[str, tuple[str, str, dict, int, dict]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StripeStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def calls(self, method: str, path: str) -> list[dict]:
        """Recorded requests with this method whose path starts with ``path``."""
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path)]

    def fail(self, path: str, status: int = 500) -> None:
        """Answer requests under ``path`` with an API error of ``status``."""
        self.failures[path] = status

    def handle(self, method: str, path: str, headers: dict, params: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(
                {"method": method, "path": path, "headers": headers, "params": params}
            )
            if not headers.get("Authorization", "").startswith("Bearer sk_"):
                return 401, _error("authentication_error", "Invalid API key provided")
            for prefix, status in self.failures.items():
                if path.startswith(prefix):
                    return status, _error("api_error", "the stub was told to fail")
            key = headers.get("Idempotency-Key")
            if method == "POST" and key and key in self._answers:
                old_method, old_path, old_params, status, body = self._answers[key]
                if (old_method, old_path, old_params) != (method, path, params):
                    return 400, _error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with.",
                    )
                return status, body
            status, body = self._route(method, path, params)
            if method == "POST" and key:
                self._answers[key] = (method, path, params, status, body)
            return status, body

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        n = next(self._counter)
        if method == "POST" and path == "/v1/customers":
            return 200, {"id": f"cus_{n}", "object": "customer", **params}
        if method == "POST" and path == "/v1/checkout/sessions":
            url = f"https://checkout.stripe.test/c/pay/cs_test_{n}"
            return 200, {"id": f"cs_test_{n}", "object": "checkout.session", "url": url, **params}
        if method == "POST" and path == "/v1/billing_portal/sessions":
            url = f"https://billing.stripe.test/p/session/bps_{n}"
            return 200, {"id": f"bps_{n}", "object": "billing_portal.session", "url": url, **params}
        found = re.fullmatch(r"/v1/subscriptions/([\w-]+)", path)
        if method == "GET" and found:
            sub = self.subscriptions.get(found.group(1))
            return (200, sub) if sub else (404, _error("invalid_request_error", "No such sub"))
        found = re.fullmatch(r"/v1/subscription_items/([\w-]+)", path)
        if method == "POST" and found:
            return self._update_item(found.group(1), params)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _update_item(self, item_id: str, params: dict) -> tuple[int, dict]:
        for sub in self.subscriptions.values():
            for item in sub["items"]["data"]:
                if item["id"] == item_id:
                    if "quantity" in params:
                        item["quantity"] = int(params["quantity"])
                    return 200, item
        return 404, _error("invalid_request_error", f"No such subscription item: '{item_id}'")


def _error(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(split.query, keep_blank_values=True) + parse_qsl(
            body, keep_blank_values=True
        )
        status, payload = self.server.stub.handle(
            self.command, split.path, dict(self.headers.items()), decode_form(pairs)
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{next(_ids)}")
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer
    do_DELETE = _answer

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        """Quiet: tests read ``StripeStub.requests`` instead."""
