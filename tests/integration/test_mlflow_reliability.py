"""Reliability of the chart's MLflow server, for real on loopback (tests/deploy/mlflow_chart.py:
the chart's auth setup and flags, 2 workers, proxied artifacts; sqlite stands in for Postgres,
which this machine cannot install).

- 8 writer processes (``SYNTHDIV_MLFLOW_WRITERS``; docs/kubernetes.md reports 16) log at once
  as the jobs' user: 0 failed calls (HTTP retries off), and every param, metric point and
  artifact is there afterwards.
- The artifact proxy (--serve-artifacts) refuses paths escaping its root (../, absolute,
  encoded), for reads, writes, listings and deletes, and nothing outside the root is touched.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import multiprocessing
import os
from pathlib import Path

import pytest
import requests

from tests.deploy import mlflow_load
from tests.deploy.mlflow_chart import ChartMlflow, start

# 8 keep CI's budget; the figure in docs/kubernetes.md is from SYNTHDIV_MLFLOW_WRITERS=16
WRITERS = int(os.environ.get("SYNTHDIV_MLFLOW_WRITERS", "8"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = start(tmp_path_factory.mktemp("chart-mlflow-load"))
    try:
        yield srv
    finally:
        srv.stop()


def test_concurrent_writers_lose_nothing(server: ChartMlflow) -> None:
    from mlflow.tracking import MlflowClient

    user, password = server.job
    created = requests.post(
        f"{server.uri}/api/2.0/mlflow/experiments/create",
        json={"name": "concurrent-writers"},
        auth=server.job,
        timeout=30,
    )
    assert created.ok, created.text
    exp_id = created.json()["experiment_id"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WRITERS) as pool:
        start = manager.Barrier(WRITERS)  # all begin once every one has imported mlflow
        args = [(server.uri, user, password, exp_id, w, start) for w in range(WRITERS)]
        results = pool.starmap(mlflow_load.write, args)
    calls = sum(r[1] for r in results)
    failures = sum(r[2] for r in results)
    print(
        f"\n{WRITERS} writers: {calls} calls, {failures} failed, "
        f"slowest writer {max(r[3] for r in results):.1f} s (all started together)"
    )
    assert failures == 0 and all(r[0] for r in results)
    assert calls == WRITERS * (1 + mlflow_load.PARAMS + mlflow_load.STEPS + 2)

    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = server.job
    client = MlflowClient(tracking_uri=server.uri)
    lost = 0
    for writer, (run_id, *_rest) in enumerate(results):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        expected = {f"p{i}": f"w{writer}-v{i}" for i in range(mlflow_load.PARAMS)}
        assert run.data.params == expected
        history = {m.step: m.value for m in client.get_metric_history(run_id, "loss")}
        wanted = {s: mlflow_load.expected_metric(writer, s) for s in range(mlflow_load.STEPS)}
        lost += sum(1 for s, v in wanted.items() if history.get(s) != v)
        path = client.download_artifacts(run_id, "notes.txt", str(server.root / f"dl{writer}"))
        assert Path(path).read_text() == mlflow_load.artifact_text(writer)
    print(f"lost metric points: {lost} of {WRITERS * mlflow_load.STEPS}")
    assert lost == 0


def test_the_server_fits_its_pod_memory_limit(server: ChartMlflow) -> None:
    """The whole process tree of the server as the chart runs it (its flags and env, 2 workers),
    after serving the writers above, stays well inside the container's memory limit: a pod over
    it is OOM-killed. (MLflow 3's server-side job runner, on by default, alone took ~1.7 GB.)"""
    import psutil

    root = psutil.Process(server.proc.pid)
    tree = [root, *root.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in tree)
    names = [" ".join(p.cmdline()[1:4]) for p in tree]
    print(f"\nMLflow server: {len(tree)} processes, {rss / 2**20:.0f} MiB RSS; {names}")
    assert not [n for n in names if "huey" in n or "job_runner" in n], names
    assert rss < 0.6 * server.memory_limit, (rss, server.memory_limit)


def _tree(root: Path, skip: Path) -> dict[str, str]:
    """Every file under root except the artifact root and the server's own db/log."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents and not path.name.startswith("mlflow.db"):
            if path.name != "server.log":
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _raw(server: ChartMlflow, method: str, path: str, body: bytes | None = None):
    """Send the path byte for byte (requests/urllib3 would normalise the dot segments)."""
    token = base64.b64encode(f"{server.job[0]}:{server.job[1]}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Basic {token}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# Relative to an experiment the job user owns (the auth layer checks the experiment id in
# the first segment, so only such paths reach the artifact handler); two levels up is the
# directory holding the artifact root.
TRAVERSALS = [
    "../../outside/secret.txt",
    "a/../../../outside/secret.txt",
    "%2e%2e/%2e%2e/outside/secret.txt",
    "%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt",
    "..%2f..%2foutside%2fsecret.txt",
    "%252e%252e%252f%252e%252e%252foutside%252fsecret.txt",
    "..%5c..%5coutside%5csecret.txt",
    "/{outside}/secret.txt",
    "%2F{outside}%2Fsecret.txt",
]


@pytest.fixture(scope="module")
def experiment(server: ChartMlflow) -> str:
    resp = requests.post(
        f"{server.uri}/api/2.0/mlflow/experiments/create",
        json={"name": "traversal"},
        auth=server.job,
        timeout=30,
    )
    assert resp.ok, resp.text
    return resp.json()["experiment_id"]


@pytest.mark.parametrize("variant", TRAVERSALS)
def test_artifact_proxy_refuses_paths_outside_its_root(
    server: ChartMlflow, experiment: str, variant: str
) -> None:
    outside = server.root / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.txt"
    secret.write_text("do not serve me")
    rel = f"{experiment}/" + variant.format(outside=str(outside).lstrip("/"))
    before = _tree(server.root, server.artifacts)

    # Positive control: the proxy serves and stores inside its root for this user.
    inside = f"{ARTIFACTS}/{experiment}/ok/inside.txt"
    assert _raw(server, "PUT", inside, b"fine")[0] == 200
    assert _raw(server, "GET", inside) == (200, b"fine")

    status, body = _raw(server, "GET", f"{ARTIFACTS}/{rel}")
    assert status >= 400 and b"do not serve me" not in body, (status, body[:200])
    status, body = _raw(server, "GET", f"{ARTIFACTS}?path={rel}")
    assert status >= 400 or b"secret.txt" not in body, (status, body[:200])
    status, _ = _raw(server, "PUT", f"{ARTIFACTS}/{rel.replace('secret', 'pwned')}", b"pwned")
    if status < 400:  # only as a plain file name inside the root: `\` is no separator on Linux
        stored = [f for f in server.artifacts.rglob("*") if f.is_file() and "pwned" in f.name]
        assert stored and all(f.read_bytes() == b"pwned" for f in stored), status
    status, _ = _raw(server, "DELETE", f"{ARTIFACTS}/{rel}")
    assert status >= 400 or secret.exists(), status

    assert secret.read_text() == "do not serve me"
    assert _tree(server.root, server.artifacts) == before, "a file outside the root changed"
    assert not list(server.root.parent.rglob("pwned*")), "a write escaped the artifact root"
