"""Cluster-agent settings (issue 16 items 5 and 6): presets, user-supplied criteria, the
truncation of samples to the context window, and missing 1-5 scores. Driven by the scripted judge
of tests/support/scripted_judge.py."""

from __future__ import annotations

import json

import pytest

from synthdiv.config import ConfigError
from synthdiv.corpus import Corpus
from synthdiv.llm.base import ChatRequest
from synthdiv.metrics import MetricContext, create
from synthdiv.metrics.cluster_agent.score import runner_key
from tests.support.scripted_judge import (
    TOPICS,
    compute,
    make_runner,
    oracle,
    oracle_clusters,
    template_name,
    topic_corpus,
)


# -- presets -------------------------------------------------------------------------------------
def test_paper_preset_sets_the_papers_values_and_the_context_length():
    p = create("cluster_agent", preset="paper").params
    assert (p.J, p.M, p.K, p.N, p.k, p.n_seeds) == (5, 100, 10, 5000, 4, 10)
    assert p.llm.context_length == 4096
    quick = create("cluster_agent", preset="quick").params
    assert (quick.K, quick.N, quick.n_seeds) == (5, 10, 1)


def test_explicit_fields_override_a_preset_key_by_key():
    p = create(
        "cluster_agent", preset="paper", N=50, llm={"backend": "embedded", "temperature": 0.5}
    ).params
    assert p.N == 50 and p.M == 100  # N given, M from the preset
    assert p.llm.temperature == 0.5 and p.llm.context_length == 4096  # llm merged, not replaced
    wider = create("cluster_agent", preset="paper", llm={"context_length": 8192}).params
    assert wider.llm.context_length == 8192


def test_an_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="preset"):
        create("cluster_agent", preset="fast")


def test_the_resolved_preset_values_are_what_gets_logged(tmp_path):
    _, runner = make_runner(oracle)
    metric = create("cluster_agent", preset="paper", M=2, N=6, K=4, n_seeds=1)
    ctx = MetricContext(work_dir=tmp_path / "work")
    ctx.resources[runner_key(metric.params.llm)] = runner
    result = metric.compute(topic_corpus(3), ctx)
    logged = result.details["params"]
    assert logged["preset"] == "paper" and (logged["J"], logged["k"]) == (5, 4)
    assert (logged["M"], logged["N"], logged["K"]) == (2, 6, 4)
    assert logged["llm"]["context_length"] == 4096


# -- truncation ----------------------------------------------------------------------------------
def half_long_corpus(budget: int) -> Corpus:
    """Topic-labelled texts (the oracle clusters by first word); every other one is longer than
    the per-sample budget."""
    texts = [
        f"{t} note {i}: " + ("many words " * budget if i % 2 else "short.")
        for t in TOPICS[:3]
        for i in range(6)
    ]
    return Corpus(ids=[f"d{i}" for i in range(len(texts))], texts=texts)


def test_the_share_of_truncated_samples_and_the_budget_are_logged(tmp_path):
    backend, runner = make_runner(oracle)
    corpus = half_long_corpus(100)
    result = compute(corpus, runner, tmp_path, N=12, max_sample_chars=100)
    rows = [
        json.loads(line)
        for line in (result.artifacts["cluster_agent"] / "seed_0" / "iterations.jsonl").open()
    ]
    long_ids = {
        doc_id for doc_id, text in zip(corpus.ids, corpus.texts, strict=True) if len(text) > 100
    }
    shown = [i for row in rows for i in row["sample_ids"]]
    share = sum(i in long_ids for i in shown) / len(shown)
    assert 0 < share < 1
    assert result.details["truncated_share"] == pytest.approx(share)
    assert result.details["sample_char_budget"] == 100
    assert result.details["context_length"] == 4096
    logged = result.details["summary_metrics"]  # what log_to_tracker sends to MLflow
    assert logged["cluster_agent.truncated_share"] == pytest.approx(share)
    assert logged["cluster_agent.sample_char_budget"] == 100
    assert logged["cluster_agent.sample_token_budget"] > 0
    # the cut is real: a long document reaches the clusterer cut to the budget, marked
    prompts = [r.messages[1]["content"] for r in backend.requests if template_name(r) == "cluster"]
    long_texts = [" ".join(t.split()) for t in corpus.texts if len(t) > 100]
    assert any("..." in p for p in prompts)
    assert not any(t in p for t in long_texts for p in prompts)


def test_the_paper_preset_leaves_a_few_hundred_chars_per_sample():
    p = create("cluster_agent", preset="paper").params
    # 4096 tokens less the answer and the instructions, over K = 10 samples: a few hundred chars
    assert 100 < p.sample_char_budget() < 400


# -- missing 1-5 scores --------------------------------------------------------------------------
def without_scores(request: ChatRequest) -> str:
    if template_name(request) != "cluster":
        return oracle(request)
    answer = oracle_clusters(request)
    for cluster in answer["clusters"]:
        cluster.pop("scores")
    return json.dumps(answer)


def test_a_missing_score_is_counted_not_a_failed_iteration(tmp_path):
    _, runner = make_runner(without_scores, retries=1)
    result = compute(topic_corpus(3), runner, tmp_path, N=10)
    _, runner = make_runner(oracle)
    scored = compute(topic_corpus(3), runner, tmp_path / "scored", N=10)
    assert result.details["failure_rate"] == 0 and result.value == pytest.approx(scored.value)
    n_metrics = len(result.details["criteria"][0]["metrics"])
    clusters = sum(it["C"] for it in result.details["iterations"][0])  # all verified valid
    assert result.details["missing_scores"] == clusters * n_metrics > 0
    assert result.details["iterations_with_missing_scores"] == 10
    assert result.details["summary_metrics"]["cluster_agent.missing_scores"] == clusters * n_metrics
    assert scored.details["missing_scores"] == 0


# -- user-supplied criteria ----------------------------------------------------------------------
USER = {
    "metadata": [{"name": "Subject Area", "definition": "the field the text is about"}],
    "metrics": [{"name": "technicality", "definition": "1 = lay reader, 5 = specialist"}],
}


def test_user_criteria_skip_stage_a_and_reach_the_clusterer(tmp_path):
    backend, runner = make_runner(oracle)
    result = compute(topic_corpus(3), runner, tmp_path, N=6, criteria=USER)
    asked = {template_name(r) for r in backend.requests}
    assert asked == {"cluster", "verify"}  # no criteria, merge or guidance call
    cluster = next(r for r in backend.requests if template_name(r) == "cluster")
    assert "1 = lay reader, 5 = specialist" in " ".join(m["content"] for m in cluster.messages)
    props = cluster.json_schema["properties"]["clusters"]["items"]["properties"]
    assert list(props["scores"]["properties"]) == ["technicality"]
    assert list(props["metadata"]["properties"]) == ["subject_area"]
    criteria = result.details["criteria"][0]
    assert criteria["notes"] == {"generated": False, "user_supplied": True}
    assert result.details["failure_rate"] == 0 and result.value > 0


def test_user_criteria_are_validated():
    with pytest.raises(ConfigError, match="distinct"):
        create("cluster_agent", criteria={"metrics": [{"name": "Depth", "definition": "a"}] * 2})
    with pytest.raises(ConfigError, match="at least one"):
        create("cluster_agent", criteria={"metadata": [], "metrics": []})
    with pytest.raises(ConfigError, match="generate_criteria"):
        create("cluster_agent", criteria=USER, generate_criteria=False)
