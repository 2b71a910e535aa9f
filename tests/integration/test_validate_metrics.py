"""validate-metrics: corpora of known diversity, rank correlations, and the MLflow record."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import ConfigError, parse_config
from synthdiv.corpus import Corpus, read_corpus
from synthdiv.tracking import TAG_DATASET, TAG_STAGE
from synthdiv.validation import (
    ValidateMetricsConfig,
    build_corpora,
    correlation_rows,
    validate_metrics,
)
from synthdiv.validation_corpora import default_topic_levels, group_by_label


@pytest.fixture(scope="module")
def labelled():
    cfg = ValidateMetricsConfig()
    corpus, _ = read_corpus(cfg.labelled)
    return corpus


def config(**overrides) -> ValidateMetricsConfig:
    return parse_config(overrides, ValidateMetricsConfig)


# -- building corpora (fast, no Ray) ------------------------------------------------------------
def test_topic_series_has_equal_sizes_and_the_requested_label_counts(labelled):
    groups, missing = group_by_label(labelled, "meta.topic")
    assert missing == 0 and len(groups) == 12
    assert default_topic_levels(12) == [1, 2, 4, 8, 12]
    built = build_corpora(labelled, groups, config(series=["topics"], corpus_size=20), repeat=0)
    assert [b.level for b in built] == [1, 2, 4, 8, 12]
    for b in built:
        topics = Counter(m["topic"] for m in b.corpus.metas)
        assert len(b.corpus) == 20 and len(topics) == b.level
        assert max(topics.values()) - min(topics.values()) <= 1  # split evenly
        assert len(set(b.corpus.ids)) == 20  # no document twice
    again = build_corpora(labelled, groups, config(series=["topics"], corpus_size=20), repeat=0)
    other = build_corpora(labelled, groups, config(series=["topics"], corpus_size=20), repeat=1)
    assert [b.corpus.ids for b in again] == [b.corpus.ids for b in built]
    assert [b.corpus.ids for b in other] != [b.corpus.ids for b in built]


def test_duplication_series_copies_a_growing_share(labelled):
    groups, _ = group_by_label(labelled, "meta.topic")
    cfg = config(series=["duplication"], corpus_size=20, duplication_levels=[0.0, 0.5, 0.75])
    built = build_corpora(labelled, groups, cfg, repeat=0)
    assert [len(set(b.corpus.texts)) for b in built] == [20, 10, 5]
    assert all(len(b.corpus) == 20 and len(set(b.corpus.ids)) == 20 for b in built)
    assert [b.order for b in built] == [0.0, -0.5, -0.75]  # fewer copies = more diverse


def test_impossible_sizes_and_bad_configs_are_clear_errors(labelled):
    groups, _ = group_by_label(labelled, "meta.topic")
    with pytest.raises(ValueError, match="only 0 labels have that many"):
        build_corpora(labelled, groups, config(series=["topics"], corpus_size=40), repeat=0)
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        config(metrics={"nope": {}})
    with pytest.raises(ConfigError, match="duplication fractions"):
        config(duplication_levels=[0.5])
    docs = Corpus(["a", "b"], ["x", "y"], [{"topic": "t"}, {}])
    assert group_by_label(docs, "meta.topic") == ({"t": [0]}, 1)


def test_correlation_is_sign_corrected_by_direction():
    # self_repetition: lower = more diverse; a value falling with the order must score rho = +1.
    rows = [
        {"metric": "self_repetition", "series": "topics", "order": float(o), "level": o, "repeat": r,
         "value": 10.0 - o, "error": None}
        for o in (1, 2, 4, 8) for r in (0, 1)
    ] + [{"metric": "self_repetition", "series": "topics", "order": 16.0, "level": 16, "repeat": 0,
          "value": math.nan, "error": "boom"}]  # fmt: skip
    (row,) = correlation_rows(rows, config(metrics={"self_repetition": {}}, series=["topics"]))
    assert row["direction"] == -1 and row["rho"] == pytest.approx(1.0)
    assert row["n_points"] == 8 and row["n_failed"] == 1


# -- the stage end to end: real Ray, packaged MiniLM, MLflow server -------------------------------
@pytest.mark.slow
def test_validation_ranks_topic_counts_and_lands_in_mlflow(runtime, ray_local):
    cfg = ValidateMetricsConfig(
        runtime=runtime,
        metrics={"vendi": {}, "pairwise_cosine_distance": {}, "distinct_n": {}},
        repeats=2,
        n_boot=200,
    )
    result = validate_metrics(cfg)
    rho = {(c["metric"], c["series"]): c for c in result.extra["correlations"]}
    for metric in ("vendi", "pairwise_cosine_distance"):
        topics = rho[(metric, "topics")]
        assert topics["rho"] > 0.8, topics  # more labels → more diverse, in the right order
        assert topics["n_points"] == 2 * 5 and topics["n_failed"] == 0
        assert (
            topics["ci_low"] is not None and topics["ci_low"] <= topics["rho"] <= topics["ci_high"]
        )
    assert rho[("distinct_n", "duplication")]["rho"] > 0.8  # copies lower distinct-n

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(result.outputs["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_STAGE] == "validate_metrics" and TAG_DATASET in run.data.tags
    assert run.data.metrics["rho.vendi.topics"] == pytest.approx(rho[("vendi", "topics")]["rho"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {"validation/rank_correlation.md", "validation/rank_correlation.csv",
            "validation/rank_correlation.png"} <= names  # fmt: skip
    table = client.download_artifacts(run.info.run_id, "tables/rank_correlation.jsonl")
    logged = [json.loads(line) for line in Path(table).read_text().splitlines()]
    assert {(r["metric"], r["series"]) for r in logged} == set(rho)

    rerun = validate_metrics(cfg)  # finished repeats are read back, the run is reused
    assert rerun.outputs["mlflow_run_id"] == result.outputs["mlflow_run_id"]
    assert rerun.extra["rows"] == result.extra["rows"]
