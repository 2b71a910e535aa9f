"""Ray is initialised here and nowhere else, from the ``runtime:`` config block."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from synthdiv.config import RuntimeConfig

# Workers inherit these: one BLAS thread per task keeps small machines from oversubscribing, and
# model code must never reach for a hub at run time.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
}


class StageKilled(BaseException):
    """Raised in the main thread on SIGTERM so ``finally`` blocks run and the run ends KILLED."""


# Set on SIGTERM as well as raising: a library that swallows the exception (one measured run
# finished its study with exit code 0) still cannot start another stage.
_STOP_REQUESTED = threading.Event()


def request_stop() -> None:
    _STOP_REQUESTED.set()


def raise_if_stopped() -> None:
    """Called before every stage: a SIGTERM received earlier ends the job here."""
    if _STOP_REQUESTED.is_set():
        raise StageKilled("received signal 15")


def quiet_ray_data() -> None:
    """Ray Data's per-operator progress logs drown the CLI's own progress bars."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def default_num_cpus() -> int:
    # Ray actor pools with fractional CPUs deadlock on 2 real cores unless Ray sees more slots.
    return max(8, os.cpu_count() or 1)


@contextlib.contextmanager
def ray_session(runtime: RuntimeConfig | None) -> Iterator[None]:
    """Connect to (or start) Ray for the duration of a stage.

    If Ray is already initialised (a test fixture, or a driver inside a Ray job) it is reused and
    left running; a Ray started here is always shut down, even on error.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    runtime = runtime or RuntimeConfig()
    if runtime.ray_address is None:  # a local Ray needs no token; a remote one brings its own
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict = {
        "runtime_env": {"env_vars": WORKER_ENV},
        "log_to_driver": True,
        "include_dashboard": False,
    }
    if runtime.ray_address:
        kwargs = {"address": runtime.ray_address, "runtime_env": kwargs["runtime_env"]}
    else:
        kwargs["num_cpus"] = runtime.num_cpus or default_num_cpus()
        # Ray Train's controller polls its workers every 2 s, so each fit ends up to 2 s after its
        # workers do; on one machine polling is cheap (a no-op fit: 13.2 → 10.3 s).
        kwargs["runtime_env"] = {"env_vars": WORKER_ENV | {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"}}
    ray.init(logging_level=logging.WARNING, **kwargs)
    quiet_ray_data()
    try:
        yield
    finally:
        ray.shutdown()
