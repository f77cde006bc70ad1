"""A webhook receiver on loopback that verifies each delivery with the standardwebhooks
library (not our code), answers as told, and keeps what it accepted."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    def __init__(self):
        self.secret: str | None = None
        self.received: list[dict] = []  # every verified request: id, type, payload
        self.failures_left = 0  # answer 500 to this many requests first
        self.hold_seconds = 0.0  # wait this long before answering (a slow endpoint)
        self.seen = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload = Webhook(receiver.secret).verify(body, headers)
                receiver.received.append(
                    {"id": headers["webhook-id"], "type": payload["type"], "payload": payload}
                )
                receiver.seen.set()
                if receiver.hold_seconds:
                    time.sleep(receiver.hold_seconds)
                if receiver.failures_left > 0:
                    receiver.failures_left -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/conveyor"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types(self) -> list[str]:
        return [r["type"] for r in self.received]

    def unique(self) -> list[dict]:
        """What a receiver that drops repeats of a webhook-id keeps."""
        kept, ids = [], set()
        for request in self.received:
            if request["id"] not in ids:
                ids.add(request["id"])
                kept.append(request)
        return kept

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dumps(payload) -> str:
    return json.dumps(payload, sort_keys=True)
