"""Cluster-agent draws and what is reported with each score: document order in the prompts, the
single-seed interval, the iteration failure rate, and D without verification. Driven by the
scripted judge of tests/support/scripted_judge.py."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from synthdiv.llm.base import ChatRequest
from synthdiv.metrics.cluster_agent.criteria import draw_samples
from tests.support.scripted_judge import (
    TOPICS,
    compute,
    make_runner,
    oracle,
    samples_of,
    template_name,
    topic_corpus,
    verdicts,
)


# -- order of the documents in a draw ----------------------------------------------------------
def test_draws_are_shuffled_reproducibly():
    draws = np.array(draw_samples(30, 5, 3000, seed=0, stage="clustering"))
    assert all(len(set(d)) == 5 and 0 <= d.min() and d.max() < 30 for d in draws)
    assert draw_samples(30, 5, 3000, 0, "clustering") == draws.tolist()  # seeded
    assert draw_samples(30, 5, 3000, 1, "clustering") != draws.tolist()
    # In uniformly random order the smallest index is equally likely at each of the 5 positions
    # (a sorted draw always has it first) and 1/5! of the draws happen to be sorted.
    first_min = np.bincount(draws.argmin(axis=1), minlength=5) / len(draws)
    assert np.all(np.abs(first_min - 0.2) < 0.03), first_min
    assert np.mean([list(d) == sorted(d) for d in draws]) < 0.02


def corpus_positions(request: ChatRequest, per_topic: int) -> list[int]:
    """Corpus index of each document in a prompt, in prompt order (texts read '<topic> note i')."""
    text = request.messages[1]["content"]
    found = re.findall(r'^<document id="\d+">\n(\w+) note (\d+)', text, re.MULTILINE)
    return [TOPICS.index(topic) * per_topic + int(i) for topic, i in found]


def test_prompts_do_not_list_a_topic_grouped_corpus_in_corpus_order(tmp_path):
    backend, runner = make_runner(oracle)
    compute(topic_corpus(4), runner, tmp_path, M=8, N=8)
    for stage in ("criteria", "cluster"):
        prompts = [corpus_positions(r, 6) for r in backend.requests if template_name(r) == stage]
        assert len(prompts) == 8 and all(len(p) == len(set(p)) > 1 for p in prompts)
        assert any(p != sorted(p) for p in prompts), stage


# -- the interval with a single seed -------------------------------------------------------------
def test_a_single_seed_gets_a_bootstrap_interval_over_its_iterations(tmp_path):
    _, runner = make_runner(oracle)
    result = compute(topic_corpus(3), runner, tmp_path, N=40, n_seeds=1)
    D = np.array([it["D"] for it in result.details["iterations"][0] if it["status"] == "ok"])
    assert len(D) == 40 and np.ptp(D) > 0 and result.value == pytest.approx(D.mean())
    assert result.ci_low < result.value < result.ci_high
    assert "bootstrap" in result.details["ci_method"]
    # the percentile bootstrap of a mean is close to the normal interval mean ± 1.96 · s/√n
    half = 1.96 * D.std(ddof=1) / np.sqrt(len(D))
    assert (result.ci_high - result.ci_low) / 2 == pytest.approx(half, rel=0.3)
    again = compute(topic_corpus(3), make_runner(oracle)[1], tmp_path / "again", N=40, n_seeds=1)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)  # seeded


def test_several_seeds_keep_the_interval_over_seeds(tmp_path):
    _, runner = make_runner(oracle)
    result = compute(topic_corpus(3), runner, tmp_path, N=8, n_seeds=3)
    assert "student_t" in result.details["ci_method"] and len(result.per_seed) == 3


# -- failure rate and D without verification -----------------------------------------------------
def fail_when_astronomy_comes_first(request: ChatRequest) -> str:
    """An answer that is never a partition for prompts whose first document is on astronomy."""
    if template_name(request) == "cluster" and samples_of(request)[1] == "astronomy":
        return json.dumps({"clusters": [{"members": [1, 1], "scores": {}}]})
    return oracle(request)


def test_the_iteration_failure_rate_is_reported_with_the_score(tmp_path):
    _, runner = make_runner(fail_when_astronomy_comes_first, retries=1)
    result = compute(topic_corpus(3), runner, tmp_path, N=30, n_seeds=2)
    statuses = [it["status"] for seed in result.details["iterations"].values() for it in seed]
    rate = statuses.count("failed_clustering") / len(statuses)
    assert 0 < rate < 1 and result.details["failure_rate"] == pytest.approx(rate)
    assert result.details["summary_metrics"]["cluster_agent.failure_rate"] == pytest.approx(rate)
    for seed_summary in result.details["per_seed_details"]:
        assert seed_summary["failure_rate"] == pytest.approx(
            seed_summary["failed_iterations"] / seed_summary["N"]
        )


def reject_multi_member_clusters(request: ChatRequest) -> str:
    return oracle(request, verify=lambda r: verdicts(r, valid=0))


def test_D_without_verification_is_reported_beside_D(tmp_path):
    _, runner = make_runner(reject_multi_member_clusters)
    verified = compute(topic_corpus(2), runner, tmp_path / "on", N=10)
    _, runner = make_runner(reject_multi_member_clusters)
    unverified = compute(topic_corpus(2), runner, tmp_path / "off", N=10, verify=False)
    # the same clustering answers scored without the verifier: what verify=false reports
    assert verified.details["D_unverified"] == pytest.approx(unverified.value)
    assert unverified.details["D_unverified"] == pytest.approx(unverified.value)
    assert verified.value > verified.details["D_unverified"]  # rejected clusters were split
    summary = verified.details["summary_metrics"]
    assert summary["cluster_agent.D_unverified"] == verified.details["D_unverified"]
    for it in verified.details["iterations"][0]:
        assert it["D"] == pytest.approx(4.0) and it["D_unverified"] < it["D"]
