"""MLflow conventions. This package is the only place that imports mlflow.

One experiment per study; one run per stage job, found again by its ``synthdiv.job_id`` tag so a
rerun or a resumed job logs into the same run instead of creating a duplicate. Every exit path
ends the run as FINISHED, FAILED or KILLED (SIGTERM included).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from synthdiv.config import RuntimeConfig, config_digest, flatten, resolved_dict, resolved_yaml
from synthdiv.runtime import StageKilled, request_stop
from synthdiv.tracking.journal import (
    OFFLINE_PREFIX,
    Guard,
    apply_http_retry_defaults,
    is_unavailable,
    journal_dir,
    open_journal,
    reachable,
    recover_orphans,
    shared_journal_root,
)

# MLflow's and alembic's INFO lines (schema migrations, run links) drown the CLI's own output.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)
apply_http_retry_defaults()

TAG_STAGE = "synthdiv.stage"
TAG_JOB = "synthdiv.job_id"
TAG_CONFIG = "synthdiv.config_digest"
TAG_DATASET = "synthdiv.dataset_digest"
TAG_PARENT = "mlflow.parentRunId"
TAG_ERROR = "synthdiv.error"  # why the run FAILED; cleared when a rerun reopens it
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 5000  # under MLflow's limit on a tag value
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch


def default_tracking_uri() -> str:
    root = Path.cwd() / ".synthdiv"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def resolve_tracking_uri(runtime: RuntimeConfig | None) -> str:
    uri = (runtime.tracking_uri if runtime else None) or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or default_tracking_uri()


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        # A local store keeps artifacts beside the database, not in whatever CWD a worker has.
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        artifact_location = (db.parent / "artifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created concurrently by another process
        return client.get_experiment_by_name(name).experiment_id


class Tracker:
    """A handle on one MLflow run. Picklable (uri + run id), so Ray workers can log to it.

    Writes go through a :class:`~synthdiv.tracking.journal.Guard`: if the server is away they
    are journaled on local disk and replayed when it answers again; reads are not guarded.
    """

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        journal_id: str | None = None,
        journal_root: str | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.journal_id = journal_id or run_id
        # resolved where the tracker is made (the driver), so Ray workers journal beside it; a
        # URI (the job's shared storage) lets the driver replay what workers on other nodes wrote
        self.journal_root = journal_root or str(journal_dir().resolve())
        self._client: MlflowClient | None = None
        self.guard = Guard(
            tracking_uri,
            open_journal(self.journal_root, self.journal_id),
            self._apply,
            online=not run_id.startswith(OFFLINE_PREFIX),
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "run_id": self.run_id,
            "journal_id": self.journal_id,
            "journal_root": self.journal_root,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            state["tracking_uri"],
            state["run_id"],
            state.get("journal_id"),
            state.get("journal_root"),
        )

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    @property
    def online(self) -> bool:
        return not self.run_id.startswith(OFFLINE_PREFIX)

    def journaled_call(self, op: str, **args: Any) -> Any:
        """Perform ``op`` now, or journal it (returning None) while the server is away."""
        return self.guard.call(op, args, lambda: self._apply(op, args))

    def _apply(self, op: str, args: dict[str, Any]) -> Any:
        """Perform one tracking call (live, or replayed from the journal)."""
        if op == "log_model":
            from synthdiv.tracking.models import log_hf_model_now

            return log_hf_model_now(self, **args)
        return getattr(self, f"_{op}")(**args)

    # -- params, metrics, tags -------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params that are not yet set. A resumed run keeps the params it started with."""
        self.journaled_call(
            "log_params", params={k: _param_value(v) for k, v in flatten(dict(params)).items()}
        )

    def _log_params(self, params: dict[str, str]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, v) for k, v in params.items() if k not in existing]
        for i in range(0, len(fresh), 100):
            self.client.log_batch(self.run_id, params=fresh[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {_metric_key(k): float(v) for k, v in metrics.items() if v is not None}
        self.journaled_call(
            "log_metrics", metrics=values, step=step or 0, timestamp=int(time.time() * 1000)
        )

    def _log_metrics(self, metrics: dict[str, float], step: int, timestamp: int) -> None:
        rows = [Metric(k, v, timestamp, step) for k, v in metrics.items()]
        for i in range(0, len(rows), _BATCH):
            self.client.log_batch(self.run_id, metrics=rows[i : i + _BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self.journaled_call("set_tags", tags={k: str(v) for k, v in tags.items()})

    def _set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    # -- artifacts -------------------------------------------------------------------------
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.journaled_call("log_artifact", path=str(path), artifact_path=artifact_path)

    def _log_artifact(self, path: str, artifact_path: str | None) -> None:
        if Path(path).is_dir():
            self.client.log_artifacts(self.run_id, path, artifact_path)
        else:
            self.client.log_artifact(self.run_id, path, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.journaled_call("log_text", text=text, artifact_file=artifact_file)

    def _log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.journaled_call(
            "log_dict", obj=json.loads(json.dumps(obj, default=str)), artifact_file=artifact_file
        )

    def _log_dict(self, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_table_rows(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """Rows as JSONL: readable without pandas, and by ``mlflow.load_table``-free tools."""
        self.log_text("".join(json.dumps(r, default=str) + "\n" for r in rows), artifact_file)

    def download_artifacts(self, artifact_path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(self.run_id, artifact_path, str(dst)))

    def list_artifact_files(self, path: str | None = None) -> list[str]:
        """Every artifact file under ``path``, recursively."""
        files: list[str] = []
        for item in self.client.list_artifacts(self.run_id, path):
            files += self.list_artifact_files(item.path) if item.is_dir else [item.path]
        return files

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(self.run_id, key)]

    # -- lineage ---------------------------------------------------------------------------
    def log_dataset(
        self,
        *,
        name: str,
        digest: str,
        source: str,
        n_rows: int | None = None,
        context: str = "input",
    ) -> None:
        """Record a corpus as an MLflow dataset input (shown in the UI's Datasets column)."""
        self.journaled_call(
            "log_dataset", name=name, digest=digest, source=source, n_rows=n_rows, context=context
        )
        if context == "input":
            self.set_tags({TAG_DATASET: digest})

    def _log_dataset(
        self, name: str, digest: str, source: str, n_rows: int | None, context: str
    ) -> None:
        profile = json.dumps({"num_rows": n_rows}) if n_rows is not None else None
        dataset = Dataset(
            name=name,
            digest=digest[:36],
            source_type="local" if "://" not in source else source.split("://")[0],
            source=json.dumps({"uri": source}),
            profile=profile,
        )
        tags = [InputTag("mlflow.data.context", context)]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags)])

    def link(self) -> str:
        """Where a person finds this run: a UI URL for a server, the ``mlflow ui`` command else."""
        if self.guard.offline:  # also true for a run that was never created
            return (
                f"run {self.run_id} not yet in MLflow (server unreachable; calls journaled in "
                f"{self.guard.journal.path}, replay with: synthdiv tracking-sync)"
            )
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{exp_id}/runs/{self.run_id}"
        return f"run {self.run_id} (browse: mlflow ui --backend-store-uri {self.tracking_uri})"

    def end(self, status: str) -> None:
        self.journaled_call("end", status=status)

    def _end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def _open(
        self, experiment: str, job_id: str, stage: str, run_name: str, tags: dict[str, str]
    ) -> None:
        """Replay of a run that was never created: find it by job (or create it), adopt its id."""
        self.run_id = open_run(
            self.client, self.tracking_uri, experiment, job_id, stage, run_name, tags
        )


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _metric_key(key: str) -> str:
    # MLflow keys allow [A-Za-z0-9_\-. /]; metric names from users may carry other characters.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def find_run(client: MlflowClient, experiment_id: str, job_id: str, stage: str) -> str | None:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_JOB}` = '{job_id}' and tags.`{TAG_STAGE}` = '{stage}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


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


def job_id_for(stage: str, config: BaseModel, runtime: RuntimeConfig | None) -> str:
    if runtime is not None and runtime.job_id:
        return runtime.job_id
    return f"{stage}-{config_digest(config)}"


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
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
        with _sigterm_as_exception():
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


def open_run(
    client: MlflowClient,
    uri: str,
    experiment: str,
    job_id: str,
    stage: str,
    run_name: str,
    tags: dict[str, str],
) -> str:
    """The run of (job, stage) in ``experiment``, reopened as RUNNING, or a new one."""
    exp_id = ensure_experiment(client, experiment, uri)
    run_id = find_run(client, exp_id, job_id, stage)
    if run_id is None:
        return client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
    client.update_run(run_id, status="RUNNING")
    if TAG_ERROR in client.get_run(run_id).data.tags:  # the failure it records is history now
        client.delete_tag(run_id, TAG_ERROR)
    return run_id


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
        return tracker.guard.flush()
    except Exception:
        if quiet:
            return 0
        raise


def pending_journals() -> list[str]:
    """Ids of runs with tracking calls still waiting to be replayed (``synthdiv tracking-sync``),
    including calls a process that died mid-replay had claimed."""
    root = journal_dir()
    recover_orphans(root)
    return (
        sorted(p.stem for p in root.glob("*.jsonl") if not p.name.endswith(".replayed.jsonl"))
        if root.is_dir()
        else []
    )


def temp_artifact_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="synthdiv-artifacts-")
