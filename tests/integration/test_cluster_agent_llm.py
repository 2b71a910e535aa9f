"""The cluster-agent on the real packaged SmolLM2 (llama.cpp, grammar-constrained JSON).

SmolLM2-135M is far too small to judge diversity; what this checks is the plumbing under a real
model: every iteration is a valid partition or a counted failure, every score is within
[1/K, K], a rerun is served entirely from the cache, and the records land in MLflow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import CorpusConfig
from synthdiv.corpus import example_corpus_path, read_corpus
from synthdiv.metrics import MetricContext, create
from synthdiv.metrics.cluster_agent import close_resources
from synthdiv.metrics.cluster_agent.clustering import validate_partition
from synthdiv.tracking import stage_run

K = 3
# Tiny on purpose: ~9 calls, short bounded texts (a loaded 2-core machine runs ~2-100 tok/s).
PARAMS = {
    "K": K, "N": 2, "M": 1, "J": 2, "k": 1, "max_reason_chars": 24, "max_definition_chars": 24,
    "repair_partitions": True,
    "max_tokens": {"criteria": 400, "merge": 150, "guidance": 60, "clustering": 400,
                   "verification": 200},
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus():
    full, _ = read_corpus(CorpusConfig(path=example_corpus_path()))
    return full.take([i for i in range(len(full)) if i % 20 < 3][:9])  # 3 topics x 3 documents


@pytest.mark.slow
def test_real_model_invariants_cache_and_tracking(corpus, tmp_path, smollm2_gguf, runtime):
    ctx = MetricContext(work_dir=tmp_path)
    try:
        result = create("cluster_agent", **PARAMS).compute(corpus, ctx)
    finally:
        close_resources(ctx.resources)

    # SmolLM2-135M often repeats an index even after retries; those iterations are repaired
    # (counted). A NaN score would mean every iteration failed outright: possible, but counted.
    failed = result.details["failed_iterations"]
    assert (1 / K <= result.value <= K) or (math.isnan(result.value) and failed == PARAMS["N"])
    rows = [
        json.loads(line)
        for line in (result.artifacts["cluster_agent"] / "seed_0" / "iterations.jsonl").open()
    ]
    assert len(rows) == PARAMS["N"]
    for row in rows:
        if row["status"] == "ok":
            assert validate_partition(row["clusters"], K) is None
            assert row["D"] == pytest.approx(row["C"] ** 2 / row["n"]) and 1 / K <= row["D"] <= K
        else:
            assert row["error"]
    assert result.details["failed_iterations"] == sum(r["status"] != "ok" for r in rows)
    criteria = result.details["criteria"][0]
    assert len(criteria["metadata"]) == 1 and len(criteria["metrics"]) == 1
    assert all(c["guidance"] for c in criteria["metadata"] + criteria["metrics"])
    assert result.details["llm_usage"]["calls"] > 0

    # Rerun, logging to MLflow: nothing reaches the model, the numbers are identical.
    rerun_ctx = MetricContext(work_dir=tmp_path)
    metric = create("cluster_agent", **PARAMS)
    try:
        with stage_run("cluster_agent_test", metric.params, runtime) as tracker:
            rerun_ctx.tracker = tracker
            rerun = metric.compute(corpus, rerun_ctx)
    finally:
        close_resources(rerun_ctx.resources)
    assert rerun.details["llm_usage"]["calls"] == 0 and rerun.details["llm_usage"]["cache_hits"] > 0
    assert rerun.details["iterations"] == result.details["iterations"]
    assert rerun.value == result.value or (math.isnan(rerun.value) and math.isnan(result.value))

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics["cluster_agent.llm.calls"] == 0
    assert (
        run.data.metrics["cluster_agent.failed_iterations"] == result.details["failed_iterations"]
    )
    assert run.data.metrics["cluster_agent.failure_rate"] == pytest.approx(failed / PARAMS["N"])
    assert "cluster_agent.D_unverified" in run.data.metrics
    logged = {a.path for a in client.list_artifacts(tracker.run_id, "cluster_agent/seed_0")}
    assert {"cluster_agent/seed_0/iterations.jsonl", "cluster_agent/seed_0/criteria.md"} <= logged
    local = client.download_artifacts(tracker.run_id, "cluster_agent/prompts.json", str(tmp_path))
    prompts = json.loads(Path(local).read_text())
    assert prompts["cluster"] == "cluster_agent/cluster@v2"
