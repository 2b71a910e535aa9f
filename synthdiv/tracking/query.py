"""Read a study back from MLflow: the runs of one stage, with their tags and latest metrics.

The correlation stage works from MLflow alone (no files from other stages), so anyone with access
to the tracking server can recompute a study's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from synthdiv.errors import SynthdivError
from synthdiv.tracking import TAG_PARENT, TAG_STAGE

_PAGE = 1000


class StudyNotFoundError(SynthdivError, LookupError):
    """The experiment or parent run named in a query does not exist."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    run_name: str
    status: str
    start_time: int  # ms since epoch
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(TAG_PARENT)


def _record(run: Any) -> RunRecord:
    return RunRecord(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        status=run.info.status,
        start_time=run.info.start_time or 0,
        tags=dict(run.data.tags),
        metrics=dict(run.data.metrics),
    )


class StudyQuery:
    """Runs of one experiment (a study), optionally only those under one parent run."""

    def __init__(self, tracking_uri: str, experiment: str, parent_run_id: str | None = None):
        self.client = MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            raise StudyNotFoundError(
                f"MLflow experiment {experiment!r} not found at {tracking_uri}"
            )
        self.experiment = experiment
        self.experiment_id = exp.experiment_id
        self.parent_run_id = parent_run_id
        self._parents: dict[str, str | None] = {}
        if parent_run_id is not None:
            try:
                self.client.get_run(parent_run_id)
            except MlflowException as err:  # RESOURCE_DOES_NOT_EXIST
                raise StudyNotFoundError(f"parent run {parent_run_id!r} not found: {err}") from None

    def stage_runs(self, stage: str, statuses: tuple[str, ...] = ("FINISHED",)) -> list[RunRecord]:
        """Runs tagged ``synthdiv.stage = stage`` with one of ``statuses``, oldest first."""
        runs: list[RunRecord] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{TAG_STAGE}` = '{stage}'",
                max_results=_PAGE,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs += [_record(r) for r in page if r.info.status in statuses]
            token = page.token
            if not token:
                break
        if self.parent_run_id is not None:
            runs = [r for r in runs if self._descends_from(r)]
        return runs

    def _parent_of(self, run_id: str) -> str | None:
        if run_id not in self._parents:
            self._parents[run_id] = self.client.get_run(run_id).data.tags.get(TAG_PARENT)
        return self._parents[run_id]

    def _descends_from(self, run: RunRecord) -> bool:
        """True if the parent run is an ancestor at any depth (studies may nest sub-studies)."""
        seen: set[str] = set()
        current = run.parent_run_id
        while current and current not in seen:
            if current == self.parent_run_id:
                return True
            seen.add(current)
            current = self._parent_of(current)
        return False
