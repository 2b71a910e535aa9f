"""The :class:`Tracker`: one MLflow run's params, metrics, tags, artifacts and models, each call
performed now or journaled while the server is away (:mod:`synthdiv.tracking.journal`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from synthdiv.config import RuntimeConfig, flatten
from synthdiv.tracking.identity import TAG_DATASET, open_run
from synthdiv.tracking.journal import OFFLINE_PREFIX, Guard, journal_dir
from synthdiv.tracking.shared_journal import open_journal, sync_command

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
                f"{self.guard.journal.path}, replay with: {sync_command(self.journal_root)})"
            )
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{exp_id}/runs/{self.run_id}"
        return f"run {self.run_id} (browse: mlflow ui --backend-store-uri {self.tracking_uri})"

    def end(self, status: str) -> None:
        if self.online and not self.guard.offline:
            # the run's calls journaled by workers elsewhere land before it ends, not on the
            # next throttled look (there is none after the end)
            self.guard.flush(force=True)
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
