"""The MLflow server as the chart runs it, started on loopback: the chart's own auth-setup
script (from its rendered ConfigMap) writes basic_auth.ini and creates the jobs' user, then
`mlflow server` runs with the rendered Deployment's flags and environment contract. Only the
bind address, port, backend (sqlite instead of Postgres) and artifact destination (a local
directory instead of the bucket) differ."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes.utils.quantity import parse_quantity

from tests.deploy.conftest import CHART, helm_template
from tests.support.servers import free_port, wait_http

# The basic-auth app needs mlflow's `auth` extra (Flask-WTF); the chart's "-full" image has it.
pytest.importorskip("flask_wtf", reason="mlflow[auth] (Flask-WTF) is not installed")

LOCAL_FLAGS = ("--host=", "--port=", "--artifacts-destination=")


def _named(objs: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


@dataclass
class ChartMlflow:
    uri: str
    port: int
    root: Path
    artifacts: Path
    admin: tuple[str, str]
    job: tuple[str, str]
    proc: subprocess.Popen
    probe_host: str  # the Host header the chart's probes send
    setup_env: dict[str, str]
    setup_script: Path
    memory_limit: int  # bytes: the rendered container's resources.limits.memory

    def run_setup(self, **overrides: str) -> subprocess.CompletedProcess:
        """Run the chart's auth-setup script again (what every pod start does)."""
        env = {**self.setup_env, **overrides}
        return subprocess.run(
            [sys.executable, str(self.setup_script)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start(root: Path) -> ChartMlflow:
    objs = helm_template(CHART, None)
    deploy = _named(objs, "Deployment", "rel-synthdiv-mlflow")["spec"]["template"]["spec"]
    (init,) = [c for c in deploy["initContainers"] if c["name"] == "setup-auth"]
    server = deploy["containers"][0]
    script = _named(objs, "ConfigMap", "rel-synthdiv-mlflow-auth-setup")["data"]["setup_auth.py"]
    job_user = base64.b64decode(
        _named(objs, "Secret", "rel-synthdiv-mlflow-job")["data"]["username"]
    ).decode()
    root.mkdir(parents=True, exist_ok=True)
    (root / "setup_auth.py").write_text(script)
    artifacts = root / "artifacts"
    artifacts.mkdir(exist_ok=True)
    admin = ("admin", secrets.token_urlsafe(24))
    job = (job_user, secrets.token_urlsafe(24))
    local = {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
        "ADMIN_USERNAME": admin[0],
        "ADMIN_PASSWORD": admin[1],
        "JOB_USERNAME": job[0],
        "JOB_PASSWORD": job[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "HOME": str(root),
    }
    base = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    setup_env = dict(base)
    for var in init["env"]:  # the init container's env contract, filled in locally
        if var["name"] == "DB_PASSWORD":  # only composes the Postgres URI (sqlite here)
            continue
        literal = "value" in var and var["name"] not in local
        setup_env[var["name"]] = var["value"] if literal else local[var["name"]]
    subprocess.run([sys.executable, str(root / "setup_auth.py")], env=setup_env, check=True)

    port = free_port()
    flags = [a for a in server["command"][2:] if not a.startswith(LOCAL_FLAGS)]
    cmd = [sys.executable, "-m", "mlflow", "server", *flags]
    cmd += ["--host=127.0.0.1", f"--port={port}", f"--artifacts-destination={artifacts}"]
    # The server's env as rendered: its literal values as they are, local values for what it
    # needs from Secrets and paths here (no S3, no Postgres).
    env = dict(base)
    env |= {v["name"]: v["value"] for v in server["env"] if "value" in v}
    env |= {v["name"]: local[v["name"]] for v in server["env"] if v["name"] in local}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - owned by the server process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    probe = server["readinessProbe"]["httpGet"]
    (probe_host,) = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
    uri = f"http://127.0.0.1:{port}"
    wait_http(f"{uri}/health", timeout=300, proc=proc)  # 2 workers on a busy machine
    return ChartMlflow(
        uri=uri,
        port=port,
        root=root,
        artifacts=artifacts,
        admin=admin,
        job=job,
        proc=proc,
        probe_host=probe_host,
        setup_env=setup_env,
        setup_script=root / "setup_auth.py",
        memory_limit=int(parse_quantity(server["resources"]["limits"]["memory"])),
    )
