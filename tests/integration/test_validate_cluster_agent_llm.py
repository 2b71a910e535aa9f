"""validate-metrics with the cluster-agent on a REAL judge: the packaged SmolLM2 through
llama.cpp (backend: embedded), in a Ray actor, on a small topics series and injection canaries.

SmolLM2-135M cannot judge diversity, so no rho is asserted: its rho is recorded in
docs/validate_metrics.md whatever it is. What this proves is that the path a capable judge takes
(llm: {backend: openai|vllm}) works end to end under a real model: every built corpus gets a
score in [1/K, K] or a recorded error, rho and its interval come from those scores, and the
canary report carries the judge's real one-cluster share at both ends."""

from __future__ import annotations

import math

import pytest

from synthdiv.config import RuntimeConfig
from synthdiv.validation import ValidateMetricsConfig, validate_metrics

K = 3
# Small on purpose (~20 calls). SmolLM2 tends to list every document in each of K clusters:
# with no retry such an answer is repaired at once (counted), and the token budgets fit K
# clusters of K members with 24-character reasons, so no answer is cut off mid-JSON.
JUDGE = {
    "K": K, "N": 2, "generate_criteria": False, "repair_partitions": True,
    "max_reason_chars": 24, "max_tokens": {"clustering": 150, "verification": 100},
    "llm": {"max_retries": 0},
}  # fmt: skip


@pytest.mark.slow
def test_the_cluster_agent_orders_topics_with_the_embedded_judge(tmp_path, ray_local, smollm2_gguf):
    # MLflow in a local sqlite file: what is under test is the judge, and the tracking server
    # path of this stage is covered by test_validate_metrics.py.
    runtime = RuntimeConfig(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", storage_uri=str(tmp_path / "runs")
    )
    cfg = ValidateMetricsConfig(
        runtime=runtime,
        metrics={"cluster_agent": JUDGE},
        series=["topics", "injection"],
        topic_levels=[1, 2, 4],
        injection_levels=[0.0, 1.0],
        corpus_size=8,
        repeats=1,
        n_boot=200,
    )
    result = validate_metrics(cfg)
    rows = result.extra["rows"]
    assert len(rows) == 5  # 3 topic corpora + 2 injection corpora, one repeat
    for row in rows:
        assert row["error"] is None or row["error"]  # a failure is recorded, not raised
        if row["error"] is None and math.isfinite(row["value"]):
            assert 1 / K <= row["value"] <= K
            assert row["ci_low"] is None or row["ci_low"] <= row["value"] <= row["ci_high"]
            share = row["one_cluster_share"]
            assert share is None or 0 <= share <= 1
    (topics,) = [c for c in result.extra["correlations"] if c["series"] == "topics"]
    assert topics["kind"] == "ordered" and topics["n_points"] + topics["n_failed"] == 3
    assert topics["rho"] is None or -1 <= topics["rho"] <= 1
    print("embedded judge, topics:", topics)  # the figure docs/validate_metrics.md records
    (canary,) = result.extra["controls"]
    assert canary["series"] == "injection" and canary["low_level"] == 0.0
    assert "one_cluster_low" in canary and "one_cluster_high" in canary
    print("embedded judge, injection:", canary)
    assert result.metrics["validate.values"] == 5
