"""A real, scriptable OpenAI-compatible HTTP server on loopback, for backend tests.

Each POST to ``/v1/chat/completions`` is answered by the first matching script rule: a rule
matches when its ``match`` text occurs in the request's last user message. A rule's ``replies``
are used in turn (the last one repeats), so "malformed, then valid" is two replies. A reply is:

- ``{"content": "..."}``            a normal answer with that text
- ``{"status": 500, "body": ...}``  an HTTP error (a dict body is sent as JSON, a str as text)
- ``{"delay": 2.0, ...}``           sleep first (to trigger client timeouts)

Every request is recorded (``server.requests``), so tests count real HTTP calls server-side.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

DEFAULT_REPLY = {"content": '{"answer": "ok"}'}


class ScriptedOpenAIServer:
    def __init__(self, script: dict[str, list[dict[str, Any]]] | None = None):
        self.script: dict[str, list[dict[str, Any]]] = dict(script or {})
        self.requests: list[dict[str, Any]] = []
        self._served: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def count(self, match: str) -> int:
        """How many requests whose last user message contains ``match`` reached the server."""
        with self._lock:
            return sum(match in _last_user_text(r) for r in self.requests)

    def reply_for(self, body: dict[str, Any]) -> dict[str, Any]:
        text = _last_user_text(body)
        with self._lock:
            self.requests.append(body)
            for match, replies in self.script.items():
                if match in text:
                    n = self._served[match]
                    self._served[match] += 1
                    return replies[min(n, len(replies) - 1)]
        return DEFAULT_REPLY

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, {"error": {"message": "request body is not JSON"}})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                body["_authorization"] = self.headers.get("Authorization", "")
                reply = server.reply_for(body)
                if reply.get("delay"):
                    time.sleep(reply["delay"])
                if "status" in reply:
                    return self._send(reply["status"], reply.get("body", ""))
                self._send(200, _completion(body, reply["content"]))

            def _send(self, status: int, payload: Any) -> None:
                is_json = not isinstance(payload, str)
                data = (json.dumps(payload) if is_json else payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    pass

        return Handler


def _last_user_text(body: dict[str, Any]) -> str:
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def _completion(request: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_tokens = sum(len(m.get("content", "").split()) for m in request.get("messages", []))
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(content.split()),
            "total_tokens": prompt_tokens + len(content.split()),
        },
    }
