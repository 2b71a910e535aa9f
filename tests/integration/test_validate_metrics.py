"""validate-metrics: corpora of known diversity, rank correlations, and the MLflow record."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from synthdiv.cli import app
from synthdiv.config import ConfigError, config_digest, parse_config
from synthdiv.corpus import Corpus, read_corpus
from synthdiv.tracking import TAG_DATASET, TAG_STAGE
from synthdiv.validation import (
    ValidateMetricsConfig,
    below_min_rho,
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
        {"metric": "self_repetition", "series": "topics", "order": float(o), "level": o,
         "repeat": r, "value": 10.0 - o, "error": None}
        for o in (1, 2, 4, 8) for r in (0, 1)
    ] + [{"metric": "self_repetition", "series": "topics", "order": 16.0, "level": 16, "repeat": 0,
          "value": math.nan, "error": "boom"}]  # fmt: skip
    (row,) = correlation_rows(rows, config(metrics={"self_repetition": {}}, series=["topics"]))
    assert row["direction"] == -1 and row["rho"] == pytest.approx(1.0)
    assert row["n_points"] == 8 and row["n_failed"] == 1


def test_float_noise_around_one_value_gets_no_rho():
    # k-means with one document per centroid scored ~1e-8 noise; its order is not a ranking
    rows = [
        {"metric": "kmeans", "series": "topics", "order": float(o), "level": o, "repeat": 0,
         "value": 0.25 + o * 1e-13, "error": None}
        for o in (1, 2, 4, 8, 12)
    ]  # fmt: skip
    (row,) = correlation_rows(rows, config(metrics={"kmeans": {}}, series=["topics"]))
    assert row["rho"] is None and row["note"] == "constant metric values"


def test_min_rho_flags_low_and_undefined_rho_and_is_not_part_of_the_job_identity():
    rows = [
        {"metric": "vendi", "series": "topics", "rho": 0.95, "note": ""},
        {"metric": "distinct_n", "series": "topics", "rho": 0.5, "note": ""},
        {"metric": "context_length", "series": "duplication", "rho": None,
         "note": "constant metric values"},
    ]  # fmt: skip
    assert [r["metric"] for r in below_min_rho(rows, 0.9)] == ["distinct_n", "context_length"]
    assert below_min_rho(rows, 0.4) == rows[2:] and below_min_rho(rows, None) == []
    gated = config(min_rho=0.9)
    # a pass bar, not an input: moving it must reuse the job's values (and its LLM cache)
    assert gated.min_rho == 0.9 and config_digest(gated) == config_digest(config())
    with pytest.raises(ConfigError, match="min_rho"):
        config(min_rho=1.5)


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


def write_constant_length_corpus(path: Path, labels: int = 2, per_label: int = 8) -> Path:
    """Every document has 6 whitespace tokens, none shared: distinct-n falls exactly with each
    copied document, while the whitespace context length is the same on every corpus."""
    docs = [
        {"id": f"{lab}-{i}", "text": " ".join(f"w{lab}x{i}x{j}" for j in range(6)),
         "meta": {"topic": f"t{lab}"}}
        for lab in range(labels) for i in range(per_label)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


@pytest.mark.slow  # a Ray session and an MLflow server (shared with the other tests)
def test_cli_min_rho_fails_a_metric_that_cannot_order_a_series(runtime, ray_local, tmp_path):
    cfg = {
        "runtime": runtime.model_dump(mode="json"),
        "labelled": {"path": str(write_constant_length_corpus(tmp_path / "labelled.jsonl"))},
        "metrics": {"distinct_n": {}, "context_length": {"tokenizer": "whitespace"}},
        "series": ["duplication"], "corpus_size": 8, "repeats": 1, "n_boot": 100,
    }  # fmt: skip
    path = tmp_path / "validate.yaml"
    path.write_text(yaml.safe_dump(cfg))

    def invoke(*args: str):
        return CliRunner().invoke(app, ["validate-metrics", "-c", str(path), *args])

    gated = invoke("--min-rho", "0.9")
    text = " ".join(gated.output.split())
    assert gated.exit_code != 0, gated.output
    assert "below --min-rho 0.9: context_length on duplication, rho undefined" in text
    assert "distinct_n on duplication" not in text  # it orders the copies perfectly
    assert invoke().exit_code == 0  # the same values without a bar: nothing failed
    passing = invoke("-m", "distinct_n", "--min-rho", "0.9")
    assert passing.exit_code == 0, passing.output
    assert "below --min-rho" not in passing.output
