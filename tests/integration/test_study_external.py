"""``corpora[].path``: an external corpus skips generate, is scored, trained and evaluated like a
generated one, and the study's lineage names its path. No generator is configured at all."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import parse_config
from synthdiv.score import example_corpus_path
from synthdiv.study import StudyConfig, run_study
from tests.support.study_configs import external_study, public_set

pytestmark = pytest.mark.slow


def test_external_corpora_are_scored_trained_and_evaluated(ray_local, runtime, tmp_path):
    public = public_set(tmp_path / "public.jsonl")
    summary = run_study(parse_config(external_study(runtime.model_dump(), public), StudyConfig))

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
