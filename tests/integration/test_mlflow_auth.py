"""The chart's MLflow auth, for real: a server on loopback started from the basic_auth.ini the
chart's own setup script writes (tests/deploy/mlflow_chart.py). Anonymous calls get 401; the
jobs' user logs runs and artifacts but gets 403 on user management; the admin can manage users
(so the 403s are about the user, not a broken endpoint); the health probe passes only with the
Host header the chart sends."""

from __future__ import annotations

import http.client
import secrets
from pathlib import Path

import pytest
import requests

from tests.deploy.mlflow_chart import ChartMlflow, start

API = "/api/2.0/mlflow"
pytestmark = pytest.mark.slow  # the server's start (2 workers, migrations) dominates


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = start(tmp_path_factory.mktemp("chart-mlflow"))
    try:
        yield srv
    finally:
        srv.stop()


def call(srv: ChartMlflow, method: str, path: str, auth=None, **kw) -> requests.Response:
    return requests.request(method, srv.uri + path, auth=auth, timeout=30, **kw)


ANONYMOUS = [
    ("GET", f"{API}/experiments/search?max_results=1", None),
    ("POST", f"{API}/experiments/create", {"name": "anon"}),
    ("POST", f"{API}/runs/create", {"experiment_id": "0"}),
    ("GET", f"{API}/users/get?username=admin", None),
    ("POST", f"{API}/users/create", {"username": "x", "password": "y" * 12}),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", None),
]


@pytest.mark.parametrize("method, path, body", ANONYMOUS, ids=[p for _, p, _ in ANONYMOUS])
def test_anonymous_calls_get_401(server: ChartMlflow, method: str, path: str, body) -> None:
    resp = call(server, method, path, json=body)
    assert resp.status_code == 401, (resp.status_code, resp.text[:200])


def _admin_ops(srv: ChartMlflow) -> list[tuple[str, str, dict]]:
    new = f"u{secrets.token_hex(4)}"
    return [
        ("POST", f"{API}/users/create", {"username": new, "password": secrets.token_urlsafe(16)}),
        ("PATCH", f"{API}/users/update-admin", {"username": srv.job[0], "is_admin": True}),
        ("PATCH", f"{API}/users/update-password", {"username": "admin", "password": "x" * 16}),
        ("DELETE", f"{API}/users/delete", {"username": "admin"}),
        ("GET", f"{API}/users/get?username=admin", {}),
    ]


def test_job_user_gets_403_on_user_management(server: ChartMlflow) -> None:
    for method, path, body in _admin_ops(server):
        resp = call(server, method, path, auth=server.job, json=body or None)
        assert resp.status_code == 403, (method, path, resp.status_code, resp.text[:200])
    # The admin still exists with its password: nothing above took effect.
    resp = call(server, "GET", f"{API}/users/get?username={server.job[0]}", auth=server.admin)
    assert resp.status_code == 200 and resp.json()["user"]["is_admin"] is False


def test_admin_can_manage_users(server: ChartMlflow) -> None:
    """Positive control: the endpoints the job user is refused work for the admin."""
    name = f"u{secrets.token_hex(4)}"
    body = {"username": name, "password": secrets.token_urlsafe(16)}
    assert call(server, "POST", f"{API}/users/create", auth=server.admin, json=body).ok
    resp = call(server, "DELETE", f"{API}/users/delete", auth=server.admin, json={"username": name})
    assert resp.ok, resp.text


def test_job_user_logs_runs_and_artifacts(server: ChartMlflow) -> None:
    auth = server.job
    exp = call(server, "POST", f"{API}/experiments/create", auth=auth, json={"name": "jobs"})
    assert exp.ok, exp.text
    exp_id = exp.json()["experiment_id"]
    run = call(server, "POST", f"{API}/runs/create", auth=auth, json={"experiment_id": exp_id})
    assert run.ok, run.text
    run_id = run.json()["run"]["info"]["run_id"]
    metric = {"run_id": run_id, "key": "loss", "value": 1.5, "timestamp": 0, "step": 0}
    assert call(server, "POST", f"{API}/runs/log-metric", auth=auth, json=metric).ok
    path = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/a.txt"
    assert call(server, "PUT", path, auth=auth, data=b"hello").ok
    got = call(server, "GET", path, auth=auth)
    assert got.ok and got.content == b"hello"
    # An experiment the admin made: READ (the chart's defaultPermission), so no writes there.
    admin_exp = call(
        server, "POST", f"{API}/experiments/create", auth=server.admin, json={"name": "admins"}
    ).json()["experiment_id"]
    body = {"experiment_id": admin_exp}
    assert call(server, "POST", f"{API}/runs/create", auth=auth, json=body).status_code == 403


def test_setup_rerun_follows_the_secret_and_never_makes_an_admin(server: ChartMlflow) -> None:
    """Every MLflow pod start reruns the setup: a rotated job password takes effect, and a job
    user someone promoted to admin is demoted again."""
    promote = {"username": server.job[0], "is_admin": True}
    resp = call(server, "PATCH", f"{API}/users/update-admin", auth=server.admin, json=promote)
    assert resp.ok
    new_password = secrets.token_urlsafe(24)
    done = server.run_setup(JOB_PASSWORD=new_password)
    assert done.returncode == 0, done.stderr
    server.job = (server.job[0], new_password)
    user = call(server, "GET", f"{API}/users/get?username={server.job[0]}", auth=server.admin)
    assert user.json()["user"]["is_admin"] is False
    # The new password works at once (the old one may stay cached for auth_cache_ttl_seconds).
    assert call(server, "GET", f"{API}/experiments/search?max_results=1", auth=server.job).ok
    server.setup_env["JOB_PASSWORD"] = new_password
    # The setup refuses a job user named like the admin (it would demote the admin).
    clash = server.run_setup(JOB_USERNAME=server.admin[0])
    assert clash.returncode != 0 and "must differ" in clash.stderr


def _status(port: int, path: str, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def test_health_probe_passes_with_the_charts_host_header(server: ChartMlflow) -> None:
    assert _status(server.port, "/health", server.probe_host) == 200  # no credentials needed
    # --allowed-hosts is in force: other paths refuse a Host such as a pod IP (what a probe
    # sends by default). MLflow 3.17 exempts /health from that check; the probe's header keeps
    # it valid either way.
    assert _status(server.port, f"{API}/experiments/search", "10.1.2.3:5000") in (400, 403)


def test_server_ran_with_the_rendered_auth_flags(server: ChartMlflow) -> None:
    ini = Path(server.setup_env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert "authenticate_request_basic_auth" in ini and "default_permission = READ" in ini
    assert "auth_cache_ttl_seconds = 60" in ini
    cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--app-name=basic-auth" in cmdline and b"--serve-artifacts" in cmdline
