"""Eval task definitions: the shipped local tasks, user task dirs, bad rows, the paper's suite,
checkpoint checks. No model is loaded here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from synthdiv.config import ConfigError, parse_config
from synthdiv.evaluate.checkpoint import CheckpointError, resolve_model
from synthdiv.evaluate.config import EvalConfig, ModelConfig, Paper8Data
from synthdiv.evaluate.suites import (
    PAPER8_METRICS,
    load_task_dir,
    packaged_tasks_dir,
    paper8_index_dirs,
    paper8_specs,
    task_specs,
)
from synthdiv.evaluate.taskdata import TaskDataError, validate_task_file
from synthdiv.models import ModelNotFoundError

REPO = Path(__file__).resolve().parents[2]
TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""
GOOD_ROW = {"question": "2 + 2 = ?", "choices": ["3", "4"], "answer": 1}


def _user_task(directory: Path, name: str = "my_task", rows: list | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in (rows or [GOOD_ROW] * 3)]
    (directory / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    (directory / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=f"{name}.jsonl"))
    return directory


def _cfg(**kw) -> EvalConfig:
    return EvalConfig(model=ModelConfig(path="unused"), **kw)


def test_packaged_local_suite_has_enough_valid_unambiguous_questions():
    specs = task_specs(_cfg())
    assert len(specs) >= 4
    for spec in specs:
        assert spec.n_rows >= 120, spec.name
        assert spec.metric == "acc"
        (data,) = spec.spec["dataset_kwargs"]["data_files"].values()
        assert Path(data).is_absolute() and Path(data).is_file()
        answers: dict[str, set[str]] = defaultdict(set)
        for line in Path(data).read_text().splitlines():
            row = json.loads(line)
            answers[row["question"]].add(row["choices"][row["answer"]])
        ambiguous = {q: a for q, a in answers.items() if len(a) > 1}
        assert not ambiguous, f"{spec.name}: same question, different answers: {ambiguous}"


def test_local_tasks_are_reproducible_from_the_generator(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_local_tasks.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    shipped = sorted(
        p.name for p in packaged_tasks_dir().iterdir() if p.suffix in {".yaml", ".jsonl"}
    )
    assert shipped == sorted(p.name for p in tmp_path.iterdir())
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (packaged_tasks_dir() / name).read_bytes(), name


def test_user_task_dir_resolves_data_against_the_yaml_not_the_cwd(tmp_path, monkeypatch):
    task_dir = _user_task(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)  # a different CWD must not matter
    (spec,) = task_specs(_cfg(suite=None, task_dirs=["mine"]))
    assert spec.name == "my_task" and spec.n_rows == 3
    assert spec.spec["dataset_kwargs"]["data_files"]["test"] == str(
        task_dir.resolve() / "my_task.jsonl"
    )


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("{not json", "invalid JSON"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "out of range"),
        ({"question": "q", "choices": ["a", "a"], "answer": 0}, "duplicates"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "integer index"),
        ({"question": "", "choices": ["a", "b"], "answer": 0}, "non-empty string"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "at least 2"),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad_row, reason):
    task_dir = _user_task(tmp_path, rows=[GOOD_ROW, GOOD_ROW, bad_row, GOOD_ROW])
    with pytest.raises(TaskDataError) as err:
        task_specs(_cfg(task_dirs=[str(task_dir)]))
    message = str(err.value)
    assert message.startswith(f"{task_dir / 'my_task.jsonl'}:3: ")
    assert reason in message


def test_empty_and_missing_task_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(TaskDataError, match="no questions"):
        validate_task_file(tmp_path / "empty.jsonl")
    with pytest.raises(TaskDataError, match="not found"):
        validate_task_file(tmp_path / "nope.jsonl")
    with pytest.raises(TaskDataError, match="no task YAML"):
        load_task_dir(tmp_path)


def test_task_selection_duplicates_and_unknown_names(tmp_path):
    _user_task(tmp_path / "a", name="local_arithmetic")
    with pytest.raises(TaskDataError, match="defined twice"):
        task_specs(_cfg(task_dirs=[str(tmp_path / "a")]))
    picked = task_specs(_cfg(tasks=["local_world_facts", "local_arithmetic"]))
    assert [s.name for s in picked] == ["local_arithmetic", "local_world_facts"]
    with pytest.raises(TaskDataError, match="unknown task.*nope"):
        task_specs(_cfg(tasks=["nope"]))


def test_config_needs_something_to_evaluate():
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        parse_config({"model": {"path": "x"}, "suite": None}, EvalConfig)
    with pytest.raises(ConfigError, match="mirror"):
        parse_config({"model": {"path": "x"}, "paper8_data": {"source": "mirror"}}, EvalConfig)


# --------------------------------------------------------------------------- paper8


def test_paper8_suite_is_the_papers_eight_tasks_and_metrics():
    assert PAPER8_METRICS == {
        "arc_challenge": "acc_norm",
        "hellaswag": "acc_norm",
        "arc_easy": "acc",
        "boolq": "acc",
        "social_iqa": "acc",
        "winogrande": "acc",
        "piqa": "acc",
        "copa": "acc",
    }
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    index = TaskManager(include_path=paper8_index_dirs(), include_defaults=False).task_index
    for name, metric in PAPER8_METRICS.items():
        cfg = load_yaml(index[name].yaml_path, resolve_func=False)
        assert cfg["output_type"] == "multiple_choice", name
        assert metric in [m["metric"] for m in cfg["metric_list"]], name
    assert [s.spec for s in paper8_specs(Paper8Data(source="hub"))] == list(PAPER8_METRICS)


def test_paper8_pre_staged_data_redirects_every_task(tmp_path):
    mirror = paper8_specs(Paper8Data(source="mirror", dir=str(tmp_path)))
    assert {s.name for s in mirror} == set(PAPER8_METRICS)
    assert all(s.spec["dataset_path"].startswith(f"{tmp_path}/") for s in mirror)
    arc = next(s for s in mirror if s.name == "arc_challenge")
    assert arc.spec["dataset_path"] == f"{tmp_path}/allenai/ai2_arc"
    assert arc.spec["dataset_name"] == "ARC-Challenge"  # the include of arc_easy.yaml resolved
    cached = paper8_specs(Paper8Data(source="hf_cache", dir=str(tmp_path)))
    assert all(s.spec["dataset_kwargs"]["cache_dir"] == str(tmp_path) for s in cached)


def test_paper8_mirror_loads_offline_from_a_local_copy(tmp_path):
    """A pre-staged copy of a benchmark repo (here: a two-row stand-in for PIQA) is read with
    no network, through the same lm-eval task config the paper suite uses."""
    from lm_eval.api.task import ConfigurableTask

    repo = tmp_path / "baber" / "piqa"
    repo.mkdir(parents=True)
    rows = [
        {"goal": "Dry wet hands", "sol1": "use a towel", "sol2": "use a fork", "label": 0},
        {"goal": "Cut bread", "sol1": "use a sponge", "sol2": "use a knife", "label": 1},
    ]
    for split in ("train", "validation"):
        (repo / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = next(
        s for s in paper8_specs(Paper8Data(source="mirror", dir=str(tmp_path))) if s.name == "piqa"
    )
    assert os.environ.get("HF_DATASETS_OFFLINE") == "1"
    task = ConfigurableTask(config=spec.spec)
    docs = list(task.validation_docs())
    assert [d["goal"] for d in docs] == ["Dry wet hands", "Cut bread"]
    assert task.doc_to_choice(docs[1]) == ["use a sponge", "use a knife"]


# --------------------------------------------------------------------------- checkpoints


def _checkpoint(directory: Path, tokenizer: bool) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / "model.safetensors").write_bytes(b"")
    if tokenizer:
        (directory / "tokenizer.json").write_text("{}")
    return directory


def test_checkpoint_without_tokenizer_names_the_path_and_the_fix(tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt", tokenizer=False)
    with pytest.raises(CheckpointError) as err:
        resolve_model(ModelConfig(path=str(ckpt)))
    assert str(ckpt) in str(err.value) and "model.tokenizer" in str(err.value)
    tok = _checkpoint(tmp_path / "tok", tokenizer=True)
    resolved = resolve_model(ModelConfig(path=str(ckpt), tokenizer=str(tok)))
    assert resolved.path == str(ckpt.resolve()) and resolved.tokenizer == str(tok.resolve())


def test_checkpoint_layout_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(ModelConfig(path=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        resolve_model(ModelConfig(path=str(tmp_path / "empty")))
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no weights"):
        resolve_model(ModelConfig(path=str(tmp_path / "noweights")))
    assert resolve_model(ModelConfig(path="org/some-model")).path == "org/some-model"  # hub id


def test_remote_checkpoint_is_fetched_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDIV_CACHE", str(tmp_path / "cache"))
    ckpt = _checkpoint(tmp_path / "remote" / "ckpt", tokenizer=True)
    resolved = resolve_model(ModelConfig(path=f"file://{ckpt}"))
    local = Path(resolved.path)
    assert local.is_relative_to(tmp_path / "cache")
    assert (local / "tokenizer.json").is_file() and (local / "config.json").is_file()
    (ckpt / "config.json").unlink()  # cached: the second resolve does not read the source
    assert resolve_model(ModelConfig(path=f"file://{ckpt}")).path == resolved.path


@pytest.mark.parametrize("name", ["eval_local.yaml", "eval_paper_suite.yaml"])
def test_example_configs_load(name):
    from synthdiv.config import load_config

    cfg = load_config(REPO / "examples" / name, EvalConfig)
    assert cfg.model.path
