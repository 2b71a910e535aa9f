"""The local Ray of ``ray_session``: workers get the worker environment, the driver keeps its own,
and the state API (the dashboard) answers.

Run in fresh interpreters: the suite's session-wide Ray must not be the one under test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from synthdiv.runtime import LOCAL_WORKER_ENV

PROBE = """
import json, os
import ray
from synthdiv.config import RuntimeConfig
from synthdiv.runtime import LOCAL_WORKER_ENV, ray_session

def env():
    return {key: os.environ.get(key) for key in LOCAL_WORKER_ENV}

def actor_state(actor_id):
    from ray.util.state import get_actor  # what Ray Train's placement-group cleaner calls
    # this cluster's address: auto-detection is ambiguous when another Ray runs on the machine
    return get_actor(actor_id, address=ray.get_runtime_context().gcs_address, timeout=10).state

@ray.remote(num_cpus=0.5)
class Actor:
    def env(self):
        return env()

with ray_session(RuntimeConfig(num_cpus=4)):
    actor = Actor.remote()
    out = {"task": ray.get(ray.remote(num_cpus=0.5)(env).remote()),
           "actor": ray.get(actor.env.remote()), "driver": env(),
           "state_api": actor_state(actor._actor_id.hex())}
out["driver_after"] = env()
print(json.dumps(out))
"""


def test_workers_inherit_the_worker_env_and_the_driver_env_is_restored():
    driver_env = {**os.environ, "OMP_NUM_THREADS": "7", "RAY_AUTH_MODE": "disabled"}
    driver_env.pop("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", None)
    driver_env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=driver_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["task"] == LOCAL_WORKER_ENV
    assert seen["actor"] == LOCAL_WORKER_ENV
    assert seen["state_api"] == "ALIVE"
    for when in ("driver", "driver_after"):  # the driver's own values, untouched
        assert seen[when]["OMP_NUM_THREADS"] == "7"
        assert seen[when]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] is None
