"""``corpora[].path``: an external corpus skips generate, is scored, trained and evaluated like a
generated one, and the study's lineage names its path. No generator is configured at all."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import parse_config
from synthdiv.score import example_corpus_path
from synthdiv.study import StudyConfig, run_study

pytestmark = pytest.mark.slow


def _public_set(path) -> str:
    """A small 'public synthetic set': 24 short JSONL documents on four repeated themes."""
    themes = ["tides follow the moon", "bees dance to share", "rust needs water", "ice floats"]
    rows = [
        {"id": f"pub-{i}", "text": f"Fact {i}: {themes[i % 4]}, as every textbook says."}
        for i in range(24)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _study(runtime: dict, public: str) -> dict:
    return {
        "runtime": runtime,
        "name": "external",
        "corpora": [
            {"name": "real_only", "path": example_corpus_path()},
            {"name": "public", "path": public},
        ],
        "score": {"n_seeds": 1, "metrics": {"distinct_n": {}}},
        "pretrain": {
            "data": {"seq_len": 32, "tokenize_with_ray": False},
            "train": {
                "schedule": {"global_batch_size": 2, "micro_batch_size": 2, "max_steps": 2},
                "scale": {"num_workers": 1},
                "checkpoint": {"every_steps": 2},
            },
        },
        "sft": None,
        "eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 4},
        "correlate": {"n_boot": 100},
    }


def test_external_corpora_are_scored_trained_and_evaluated(ray_local, runtime, tmp_path):
    public = _public_set(tmp_path / "public.jsonl")
    summary = run_study(parse_config(_study(runtime.model_dump(), public), StudyConfig))

    assert summary["corpora"]["public"]["corpus"] == public
    assert {b["origin"] for b in summary["corpora"].values()} == {"external"}
    assert all(b["tiny.base"] is not None for b in summary["corpora"].values())

    client = MlflowClient(runtime.tracking_uri)
    experiment = client.get_experiment_by_name(runtime.experiment).experiment_id
    runs = client.search_runs([experiment])
    stages = [r.data.tags.get("synthdiv.stage") for r in runs]
    assert "generate" not in stages and stages.count("score") == 2 and stages.count("eval") == 2
    (parent,) = [r for r in runs if r.data.tags.get("synthdiv.stage") == "study"]
    assert parent.data.tags["synthdiv.corpus.public.path"] == public
    assert parent.data.tags["synthdiv.corpus.real_only.origin"] == "external"
    sources = {
        r.data.tags["synthdiv.corpus_name"]: r.data.tags["synthdiv.corpus_source"]
        for r in runs
        if r.data.tags.get("synthdiv.stage") == "score"
    }
    assert sources == {"public": public, "real_only": example_corpus_path()}
