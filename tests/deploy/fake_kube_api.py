"""A loopback HTTP server speaking the few Kubernetes API calls `synthdiv submit --rayjob` makes.

It plays KubeRay's part from a scripted timeline: each created RayJob walks through a list of
``status`` dicts (one per watch event), and the pods the client may look at (the submitter, the
cluster's pods) are declared per scenario. Every request is recorded so tests can check exactly
which verbs and resources the client used (and compare them with the chart's Role).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml


@dataclass
class Scenario:
    statuses: list[dict]  # the RayJob's status after each watch event; the last one sticks
    submitter_log: str = ""
    cluster_pod_waiting: str | None = None  # e.g. "ImagePullBackOff" on the head pod


@dataclass
class FakeKube:
    scenario: Scenario
    configmaps: dict[str, dict] = field(default_factory=dict)
    rayjobs: dict[str, dict] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (verb, resource, name)
    server: ThreadingHTTPServer | None = None

    def start(self) -> FakeKube:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "dev", "user": {"token": "not-a-secret"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "dev"}}],
                }
            )
        )
        return path

    # --- KubeRay's part ----------------------------------------------------------------------
    def advance(self, name: str) -> dict:
        step = min(self.steps[name], len(self.scenario.statuses) - 1)
        self.steps[name] += 1
        self.rayjobs[name]["status"] = self.scenario.statuses[step]
        return self.rayjobs[name]

    def pods(self, selector: str) -> list[dict]:
        key, _, value = selector.partition("=")
        out = []
        for name, job in self.rayjobs.items():
            cluster = job.get("status", {}).get("rayClusterName")
            if key == "job-name" and value == name and self.scenario.submitter_log:
                out.append(_pod(f"{name}-submitter", None))
            if key == "ray.io/cluster" and value == cluster:
                out.append(_pod(f"{cluster}-head", self.scenario.cluster_pod_waiting))
        return out


def _pod(name: str, waiting_reason: str | None) -> dict:
    state = (
        {
            "waiting": {
                "reason": waiting_reason,
                "message": f"Back-off pulling image: {waiting_reason}",
            }
        }
        if waiting_reason
        else {"running": {}}
    )
    return {
        "metadata": {"name": name},
        "status": {
            "phase": "Pending" if waiting_reason else "Running",
            "containerStatuses": [
                {
                    "name": "ray-head",
                    "image": "x",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": state,
                }
            ],
        },
    }


ROUTES = [
    ("configmaps", re.compile(r"^/api/v1/namespaces/[^/]+/configmaps(?:/(?P<name>[^/]+))?$")),
    ("pods/log", re.compile(r"^/api/v1/namespaces/[^/]+/pods/(?P<name>[^/]+)/log$")),
    ("pods", re.compile(r"^/api/v1/namespaces/[^/]+/pods(?:/(?P<name>[^/]+))?$")),
    ("rayjobs", re.compile(r"^/apis/ray\.io/v1/namespaces/[^/]+/rayjobs(?:/(?P<name>[^/]+))?$")),
]


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube  # set per server by _handler()

    protocol_version = "HTTP/1.0"  # a watch stream ends when the connection closes

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _route(self) -> tuple[str, str | None, dict]:
        url = urlparse(self.path)
        for resource, pattern in ROUTES:
            m = pattern.match(url.path)
            if m:
                return resource, m.group("name"), parse_qs(url.query)
        return "", None, {}

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _missing(self, what: str) -> None:
        self._send(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
                "message": f"{what} not found",
            },
        )

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_POST(self) -> None:
        resource, _, _ = self._route()
        obj = self._body()
        name = obj["metadata"]["name"]
        self.kube.requests.append(("create", resource, name))
        obj["metadata"]["uid"] = str(uuid.uuid4())
        if resource == "rayjobs":
            self.kube.rayjobs[name] = obj
            self.kube.steps[name] = 0
        else:
            self.kube.configmaps[name] = obj
        self._send(201, obj)

    def do_DELETE(self) -> None:
        resource, name, _ = self._route()
        self.kube.requests.append(("delete", resource, name or ""))
        if self.kube.rayjobs.pop(name or "", None) is None:
            return self._missing(f"rayjobs {name}")
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    def do_GET(self) -> None:
        resource, name, query = self._route()
        if resource == "rayjobs" and query.get("watch") == ["true"]:
            return self._watch(query)
        verb = "get" if name or resource == "pods/log" else "list"
        self.kube.requests.append((verb, resource, name or query.get("labelSelector", [""])[0]))
        if resource == "configmaps":
            return (
                self._send(200, self.kube.configmaps[name])
                if name in self.kube.configmaps
                else self._missing(name)
            )
        if resource == "rayjobs":
            return (
                self._send(200, self.kube.rayjobs[name])
                if name in self.kube.rayjobs
                else self._missing(name)
            )
        if resource == "pods":
            return self._send(
                200,
                {
                    "kind": "PodList",
                    "apiVersion": "v1",
                    "metadata": {},
                    "items": self.kube.pods(query["labelSelector"][0]),
                },
            )
        if resource == "pods/log":
            return self._send(200, self.kube.scenario.submitter_log, "text/plain")
        self._missing(self.path)

    def _watch(self, query: dict) -> None:
        name = query["fieldSelector"][0].removeprefix("metadata.name=")
        self.kube.requests.append(("watch", "rayjobs", name))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        # One MODIFIED event per scripted status, then close (the client re-watches).
        while name in self.kube.rayjobs:
            before = self.kube.steps[name]
            job = self.kube.advance(name)
            event = {"type": "MODIFIED", "object": job}
            self.wfile.write((json.dumps(event) + "\n").encode())
            self.wfile.flush()
            time.sleep(0.05)
            if before >= len(self.kube.scenario.statuses) - 1:
                break


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one fake cluster."""
    return type("Handler", (_Handler,), {"kube": kube})
