"""Task suites: the offline local tasks and the paper's eight benchmarks, as lm-eval task specs.

A :class:`TaskSpec` is what lm-eval is given (a registered task name or an inline config dict)
plus the metric synthdiv reports for it. Local tasks are inline dicts whose data paths were
resolved against their YAML's directory (lm-eval would resolve them against the CWD) and whose
rows were validated first, so a bad row fails with its file and line instead of deep in lm-eval.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from synthdiv.evaluate.config import EvalConfig, Paper8Data
from synthdiv.evaluate.taskdata import TaskDataError, validate_task_file

# The paper's eight zero-shot tasks (lm-eval names) and the metric it reports for each.
PAPER8_METRICS: dict[str, str] = {
    "arc_challenge": "acc_norm",
    "arc_easy": "acc",
    "hellaswag": "acc_norm",
    "boolq": "acc",
    "social_iqa": "acc",  # SIQA
    "winogrande": "acc",
    "piqa": "acc",
    "copa": "acc",
}
# Where lm-eval keeps each task's YAML (relative to lm_eval/tasks): indexing only these dirs
# takes milliseconds instead of the ~9 s scan of every built-in task.
PAPER8_DIRS: dict[str, str] = {
    "arc_challenge": "arc",
    "arc_easy": "arc",
    "hellaswag": "hellaswag",
    "boolq": "super_glue/boolq",
    "social_iqa": "siqa",
    "winogrande": "winogrande",
    "piqa": "piqa",
    "copa": "super_glue/copa",
}
DEFAULT_METRIC = "acc"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    metric: str  # the metric synthdiv reports (and averages) for this task
    spec: str | dict[str, Any]  # lm-eval task name, or an inline task config
    source: str  # YAML path or "lm_eval:<dir>", for error messages and the record
    n_rows: int | None = None  # validated local rows; None when lm-eval loads the data


def packaged_tasks_dir() -> Path:
    return Path(str(resources.files("synthdiv.evaluate") / "tasks"))


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def paper8_index_dirs() -> list[Path]:
    root = lm_eval_tasks_dir()
    return sorted({root / d for d in PAPER8_DIRS.values()})


# --------------------------------------------------------------------------- local tasks


def _resolve_data_files(value: Any, base: Path) -> Any:
    """data_files may be a path, a list, or {split: path | list}; make every path absolute."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())
    if isinstance(value, list):
        return [_resolve_data_files(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_data_files(v, base) for k, v in value.items()}
    raise TaskDataError(f"dataset_kwargs.data_files has unsupported type {type(value).__name__}")


def _data_paths(data_files: Any) -> list[Path]:
    if isinstance(data_files, str):
        return [Path(data_files)]
    if isinstance(data_files, list):
        return [p for v in data_files for p in _data_paths(v)]
    return [p for v in data_files.values() for p in _data_paths(v)]


def load_task_yaml(yaml_path: Path) -> TaskSpec:
    """One local task: its YAML as an inline lm-eval config with absolute, validated data."""
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        cfg = load_yaml(yaml_path, resolve_func=True)
    except Exception as err:  # noqa: BLE001 — a user's !function module may raise anything
        raise TaskDataError(f"{yaml_path}: cannot load task YAML: {err}") from None
    name = cfg.get("task")
    if not isinstance(name, str) or not name:
        raise TaskDataError(f"{yaml_path}: a task YAML needs a 'task: <name>' key")
    data_files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if cfg.get("dataset_path") != "json" or not data_files:
        raise TaskDataError(
            f"{yaml_path}: local tasks read JSONL: set dataset_path: json and "
            "dataset_kwargs.data_files"
        )
    cfg["dataset_kwargs"] = {
        **cfg["dataset_kwargs"],
        "data_files": _resolve_data_files(data_files, yaml_path.parent),
    }
    n_rows = sum(validate_task_file(p) for p in _data_paths(cfg["dataset_kwargs"]["data_files"]))
    metric = (cfg.get("metadata") or {}).get("primary_metric", DEFAULT_METRIC)
    return TaskSpec(name, metric, cfg, str(yaml_path), n_rows)


def load_task_dir(directory: str | Path) -> list[TaskSpec]:
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise TaskDataError(f"task directory not found: {directory}")
    yamls = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not yamls:
        raise TaskDataError(f"no task YAML files in {directory}")
    return [load_task_yaml(p) for p in yamls]


# --------------------------------------------------------------------------- paper8


def paper8_specs(data: Paper8Data) -> list[TaskSpec]:
    """The eight paper tasks; with a data dir, their lm-eval configs redirected to it."""
    if data.source == "hub" or (data.source == "hf_cache" and not data.dir):
        return [
            TaskSpec(name, metric, name, f"lm_eval:{PAPER8_DIRS[name]}")
            for name, metric in PAPER8_METRICS.items()
        ]
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    index = TaskManager(include_path=paper8_index_dirs(), include_defaults=False).task_index
    specs = []
    for name, metric in PAPER8_METRICS.items():
        cfg = load_yaml(index[name].yaml_path, resolve_func=True)
        root = str(Path(data.dir).expanduser().resolve())  # type: ignore[arg-type]
        if data.source == "hf_cache":
            cfg["dataset_kwargs"] = {**(cfg.get("dataset_kwargs") or {}), "cache_dir": root}
        else:  # mirror: <dir>/<hub id> holds a copy of the dataset repo
            cfg["dataset_path"] = f"{root}/{cfg['dataset_path']}"
        specs.append(TaskSpec(name, metric, cfg, str(index[name].yaml_path)))
    return specs


# --------------------------------------------------------------------------- selection


def task_specs(cfg: EvalConfig) -> list[TaskSpec]:
    """Every task the config selects, validated, in a stable order."""
    specs: list[TaskSpec] = []
    if cfg.suite == "local":
        specs += load_task_dir(packaged_tasks_dir())
    elif cfg.suite == "paper8":
        specs += paper8_specs(cfg.paper8_data)
    for directory in cfg.task_dirs:
        specs += load_task_dir(directory)
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            raise TaskDataError(
                f"task {spec.name!r} is defined twice: {seen[spec.name]} and {spec.source}"
            )
        seen[spec.name] = spec.source
    if cfg.tasks is not None:
        unknown = sorted(set(cfg.tasks) - set(seen))
        if unknown:
            raise TaskDataError(
                f"unknown task(s) {', '.join(unknown)}; available: {', '.join(sorted(seen))}"
            )
        specs = [s for s in specs if s.name in set(cfg.tasks)]
    return specs
