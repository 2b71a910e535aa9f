"""MLflow conventions. This package is the only place that imports mlflow.

One experiment per study; one run per stage job, found again by its ``synthdiv.job_id`` tag so a
rerun or a resumed job logs into the same run instead of creating a duplicate. Every exit path
ends the run as FINISHED, FAILED or KILLED (SIGTERM included).
"""

from __future__ import annotations

import logging

from synthdiv.tracking.identity import (
    TAG_CONFIG,
    TAG_DATASET,
    TAG_ERROR,
    TAG_JOB,
    TAG_PARENT,
    TAG_STAGE,
    ensure_experiment,
    find_run,
    job_id_for,
    open_run,
)
from synthdiv.tracking.journal import apply_http_retry_defaults
from synthdiv.tracking.runs import (
    finished_run,
    pending_journals,
    stage_run,
    sync_journal,
    temp_artifact_dir,
)
from synthdiv.tracking.tracker import (
    MAX_PARAM_CHARS,
    MAX_TAG_CHARS,
    Tracker,
    default_tracking_uri,
    resolve_tracking_uri,
)

__all__ = [
    "MAX_PARAM_CHARS",
    "MAX_TAG_CHARS",
    "TAG_CONFIG",
    "TAG_DATASET",
    "TAG_ERROR",
    "TAG_JOB",
    "TAG_PARENT",
    "TAG_STAGE",
    "Tracker",
    "default_tracking_uri",
    "ensure_experiment",
    "find_run",
    "finished_run",
    "job_id_for",
    "open_run",
    "pending_journals",
    "resolve_tracking_uri",
    "stage_run",
    "sync_journal",
    "temp_artifact_dir",
]

# MLflow's and alembic's INFO lines (schema migrations, run links) drown the CLI's own output.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)
apply_http_retry_defaults()
