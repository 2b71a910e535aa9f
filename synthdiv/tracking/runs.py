"""Run identity and lifecycle: one run per stage job, found again by its ``synthdiv.job_id`` tag,
opened (or reopened) by :func:`stage_run` and ended FINISHED, FAILED or KILLED; journals of runs
recorded while MLflow was away are replayed by :func:`sync_journal`."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from synthdiv.config import RuntimeConfig, config_digest, resolved_dict, resolved_yaml
from synthdiv.runtime import StageKilled, sigterm_as_exception
from synthdiv.tracking.identity import (
    TAG_CONFIG,
    TAG_ERROR,
    TAG_JOB,
    TAG_PARENT,
    TAG_STAGE,
    find_run,
    job_id_for,
    open_run,
)
from synthdiv.tracking.journal import (
    OFFLINE_PREFIX,
    is_unavailable,
    journal_dir,
    reachable,
    recover_orphans,
)
from synthdiv.tracking.shared_journal import pending_remote_journals, shared_journal_root
from synthdiv.tracking.tracker import (
    MAX_TAG_CHARS,
    Tracker,
    resolve_tracking_uri,
)


def finished_run(runtime: RuntimeConfig | None, job_id: str, stage: str) -> Any | None:
    """The FINISHED run of (job, stage), if any: what a resumed study may reuse instead of
    running the stage again. Returns the MLflow ``Run`` (tags, metrics) or None."""
    uri = resolve_tracking_uri(runtime)
    client = MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(runtime.experiment if runtime else "synthdiv")
        run_id = find_run(client, exp.experiment_id, job_id, stage) if exp else None
        run = client.get_run(run_id) if run_id else None
    except Exception as err:
        if not is_unavailable(err):
            raise
        # Cannot tell: run the stage; its completion markers skip the work already on storage.
        logging.getLogger("synthdiv.tracking").warning(
            "MLflow unreachable (%s): %s runs again", err, job_id
        )
        return None
    return run if run is not None and run.info.status == "FINISHED" else None


@contextlib.contextmanager
def stage_run(
    stage: str,
    config: BaseModel,
    runtime: RuntimeConfig | None,
    *,
    parent: Tracker | None = None,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[Tracker]:
    """Open (or reopen) the MLflow run of one stage job and close it with the right status.

    The run is found by (job id, stage); the resolved config is logged as params and as
    ``config/resolved.yaml``. Exceptions end it FAILED, Ctrl-C and SIGTERM end it KILLED.
    """
    uri = resolve_tracking_uri(runtime)
    experiment = runtime.experiment if runtime else "synthdiv"
    job_id = job_id_for(stage, config, runtime)
    all_tags = {
        TAG_STAGE: stage,
        TAG_JOB: job_id,
        TAG_CONFIG: config_digest(config),
        **({TAG_PARENT: parent.run_id} if parent else {}),
        **(tags or {}),
    }
    all_tags = {k: str(v) for k, v in all_tags.items()}
    run_name = run_name or job_id
    journal_root = shared_journal_root(runtime.storage_uri if runtime else None)
    try:
        tracker = Tracker(
            uri,
            open_run(MlflowClient(uri), uri, experiment, job_id, stage, run_name, all_tags),
            journal_root=journal_root,
        )
    except Exception as err:
        if not is_unavailable(err):
            raise
        # The server is away: do the work anyway and journal the run, to be created on replay.
        tracker = Tracker(uri, f"{OFFLINE_PREFIX}{uuid.uuid4().hex}", journal_root=journal_root)
        tracker.guard.journal.append(
            "open",
            {
                "experiment": experiment,
                "job_id": job_id,
                "stage": stage,
                "run_name": run_name,
                "tags": all_tags,
            },
            str(err),
        )
        logging.getLogger("synthdiv.tracking").warning(
            "MLflow unreachable (%s): %s runs unrecorded; its tracking calls are journaled in %s",
            err,
            job_id,
            tracker.guard.journal.path,
        )
    tracker.set_tags(all_tags)
    tracker.log_params(resolved_dict(config))
    tracker.log_text(resolved_yaml(config), "config/resolved.yaml")
    status = "FAILED"
    try:
        with sigterm_as_exception():
            yield tracker
        status = "FINISHED"
    except (KeyboardInterrupt, StageKilled):
        status = "KILLED"
        raise
    except Exception as err:  # the reason a run FAILED, readable in the UI's tags
        tracker.set_tags({TAG_ERROR: f"{type(err).__name__}: {err}"[:MAX_TAG_CHARS]})
        raise
    finally:
        tracker.end(status)
        if not tracker.online:
            sync_journal(uri, tracker.journal_id, quiet=True, journal_root=journal_root)


def sync_journal(
    tracking_uri: str, journal_id: str, quiet: bool = False, journal_root: str | None = None
) -> int:
    """Replay one pending journal into MLflow (a run that was never created is created first).
    Returns the number of calls replayed; 0 while the server is still away."""
    if not reachable(tracking_uri):
        return 0
    unopened = journal_id.startswith(OFFLINE_PREFIX)
    run_id = "unopened" if unopened else journal_id
    tracker = Tracker(tracking_uri, run_id, journal_id=journal_id, journal_root=journal_root)
    try:
        return tracker.guard.flush(force=True)
    except Exception:
        if quiet:
            return 0
        raise


def pending_journals(journal_root: str | None = None) -> list[str]:
    """Ids of runs with tracking calls still waiting to be replayed (``synthdiv tracking-sync``),
    including calls a process that died mid-replay had claimed. ``journal_root``: a journal
    directory on shared storage (:func:`shared_journal_root`); default: this machine's."""
    if journal_root is not None:
        return pending_remote_journals(journal_root)
    root = journal_dir()
    recover_orphans(root)
    return (
        sorted(p.stem for p in root.glob("*.jsonl") if not p.name.endswith(".replayed.jsonl"))
        if root.is_dir()
        else []
    )


def temp_artifact_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="synthdiv-artifacts-")
