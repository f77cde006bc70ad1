"""A local stand-in for the part of Telegram's Bot API that Conveyor calls.

The app reaches it through ``TELEGRAM_API_BASE`` at ``/bot<token>/<method>`` with JSON
bodies, as it would reach Telegram. The stub records every call, numbers the messages
it "sends" per chat, and answers like Telegram when told to: 429 with ``retry_after``
(flood control) or 403 for a chat whose person blocked the bot. It also builds the
update JSON Telegram would post to the webhook.
"""

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT_USERNAME = "conveyor_test_bot"


class TelegramStub:
    def __init__(self, token: str = "123456:TEST-TOKEN"):
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        self.sent: list[dict] = []  # sendMessage results, in order
        self.blocked: set[int] = set()
        self._floods: list[int] = []  # retry_after of the next sendMessage answers
        self._message_ids = itertools.count(100)
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                params = json.loads(self.rfile.read(length) or b"{}")
                token, _, method = self.path.lstrip("/").partition("/")
                if token != f"bot{stub.token}":
                    return self._send(401, {"ok": False, "description": "Unauthorized"})
                status, body = stub.answer(method, params)
                self._send(status, body)

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- Answers ---------------------------------------------------------------------------

    def flood(self, retry_after: int, times: int = 1) -> None:
        """The next ``times`` sendMessage calls get 429 with this ``retry_after``."""
        self._floods.extend([retry_after] * times)

    def answer(self, method: str, params: dict) -> tuple[int, dict]:
        with self._lock:
            self.calls.append((method, params))
            chat_id = params.get("chat_id")
            if method == "sendMessage" and self._floods:
                retry_after = self._floods.pop(0)
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                }
            if chat_id in self.blocked:
                return 403, {
                    "ok": False,
                    "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user",
                }
            if method == "getMe":
                result = {"id": 123456, "is_bot": True, "first_name": "Conveyor"}
                return 200, {"ok": True, "result": {**result, "username": BOT_USERNAME}}
            if method in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
                message_id = params.get("message_id") or next(self._message_ids)
                message = {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "text": params.get("text", ""),
                }
                if params.get("reply_markup"):
                    message["reply_markup"] = params["reply_markup"]
                if method == "sendMessage":
                    self.sent.append(message)
                return 200, {"ok": True, "result": message}
            if method in ("answerCallbackQuery", "setWebhook"):
                return 200, {"ok": True, "result": True}
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    # --- What the app sent -----------------------------------------------------------------

    def called(self, method: str) -> list[dict]:
        return [params for name, params in self.calls if name == method]

    def sent_to(self, chat_id: int) -> list[dict]:
        """Messages sent to a chat (answered 200), as Telegram returned them."""
        return [message for message in self.sent if message["chat"]["id"] == chat_id]


_update_ids = itertools.count(1000)


def sender(chat_id: int, first_name: str = "Anna", language_code: str = "en") -> dict:
    return {
        "id": chat_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": language_code,
    }


def message_update(chat_id: int, text: str, language_code: str = "en", reply_to=None) -> dict:
    """A private text message as Telegram posts it (``reply_to``: the replied message)."""
    message = {
        "message_id": next(_update_ids),
        "from": sender(chat_id, language_code=language_code),
        "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return {"update_id": next(_update_ids), "message": message}


def callback_update(chat_id: int, message: dict, data: str, language_code: str = "en") -> dict:
    """A tap on an inline button under ``message`` (as the bot sent it)."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "from": sender(chat_id, language_code=language_code),
            "message": message,
            "chat_instance": "1",
            "data": data,
        },
    }
