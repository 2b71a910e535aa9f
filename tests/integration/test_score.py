"""`synthdiv score` end to end: real Ray, real MiniLM, real MLflow server, quarantine, failures."""

import json

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import CorpusConfig
from synthdiv.score import ScoreConfig, metric_keys, score_corpus

FAST_METRICS = {"distinct_n": {}, "compression_ratio": {}, "vendi": {}}


def _corpus(tmp_path, n_topics=4, per_topic=10, bad_rows=True):
    topics = ["stars and galaxies", "bread baking", "chess openings", "tax returns", "jazz piano"]
    lines = []
    for t in range(n_topics):
        for i in range(per_topic):
            lines.append(
                json.dumps(
                    {
                        "id": f"{t}-{i}",
                        "text": f"A note about {topics[t]}, "
                        "number {i}: {topics[t]} matter {i * t}.",
                    }
                )
            )
    if bad_rows:
        lines += [
            '{"id": "x", "text": ""}',
            "not json at all",
            json.dumps({"id": "0-0", "text": "dup"}),
        ]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_score_logs_every_metric_and_quarantines(ray_local, runtime, tmp_path):
    path = _corpus(tmp_path)
    cfg = ScoreConfig(
        runtime=runtime, corpus=CorpusConfig(path=str(path)), metrics=FAST_METRICS, n_seeds=2
    )
    result = score_corpus(cfg)
    extra = result.extra
    assert extra["validation"].n_in == 43 and extra["validation"].n_rejected == 3
    assert {r["metric"] for r in extra["rows"]} == set(FAST_METRICS)
    assert not extra["failures"]
    run = MlflowClient(runtime.tracking_uri).get_run(result.outputs["mlflow_run_id"])
    for name in FAST_METRICS:
        keys = metric_keys(name)
        value = run.data.metrics[keys["value"]]
        assert run.data.metrics[keys["ci_low"]] <= value <= run.data.metrics[keys["ci_high"]]
    assert run.data.metrics["corpus.n_rejected"] == 3
    assert run.info.status == "FINISHED"
    artifacts = {
        f.path for f in MlflowClient(runtime.tracking_uri).list_artifacts(run.info.run_id, "report")
    }
    assert {"report/scores.json", "report/scores.md", "report/scores.png"} <= artifacts
    # a rerun of the same job lands in the same run and reuses the embedding shards
    again = score_corpus(cfg)
    assert again.outputs["mlflow_run_id"] == result.outputs["mlflow_run_id"]


@pytest.mark.slow
def test_a_finished_score_is_not_computed_again_even_without_its_mlflow_run(
    ray_local, runtime, tmp_path, monkeypatch
):
    import synthdiv.score as score_module

    cfg = ScoreConfig(
        runtime=runtime,
        corpus=CorpusConfig(path=str(_corpus(tmp_path, bad_rows=False))),
        metrics={"distinct_n": {}, "compression_ratio": {}},
        n_seeds=1,
    )
    first = score_corpus(cfg)
    MlflowClient(runtime.tracking_uri).delete_run(first.outputs["mlflow_run_id"])  # record gone

    def no_metric(*args, **kwargs):
        raise AssertionError("a metric was computed again")

    monkeypatch.setattr(score_module, "create", no_metric)
    again = score_corpus(cfg)  # same job: the storage marker answers
    assert again.outputs["mlflow_run_id"] != first.outputs["mlflow_run_id"]
    assert again.extra["rows"] == first.extra["rows"] and not again.extra["failures"]
    logged = MlflowClient(runtime.tracking_uri).get_run(again.outputs["mlflow_run_id"]).data.metrics
    assert logged[metric_keys("distinct_n")["value"]] == first.extra["rows"][0]["value"]


@pytest.mark.slow
def test_more_topics_score_more_diverse(ray_local, runtime, tmp_path):
    narrow = _corpus(tmp_path / "a", n_topics=1, per_topic=20, bad_rows=False)
    wide = _corpus(tmp_path / "b", n_topics=5, per_topic=4, bad_rows=False)
    values = {}
    for label, path in {"narrow": narrow, "wide": wide}.items():
        cfg = ScoreConfig(
            runtime=runtime, corpus=CorpusConfig(path=str(path)), metrics={"vendi": {}}, n_seeds=1
        )
        values[label] = score_corpus(cfg).extra["rows"][0]["value"]
    assert values["wide"] > values["narrow"]


def test_unknown_metric_fails_at_config_time(tmp_path):
    with pytest.raises(ValueError, match="unknown metric"):
        ScoreConfig(corpus=CorpusConfig(path="x"), metrics={"not_a_metric": {}})


@pytest.mark.slow
def test_broken_metric_is_recorded_and_others_kept(ray_local, runtime, tmp_path):
    # perplexity pointed at a model path that does not exist: that metric fails, the rest land
    cfg = ScoreConfig(
        runtime=runtime,
        corpus=CorpusConfig(path=str(_corpus(tmp_path, bad_rows=False))),
        metrics={"distinct_n": {}, "perplexity": {"model": "/nonexistent/model"}},
        n_seeds=1,
    )
    result = score_corpus(cfg)
    assert [r["metric"] for r in result.extra["rows"]] == ["distinct_n"]
    assert "perplexity" in result.extra["failures"]
    run = MlflowClient(runtime.tracking_uri).get_run(result.outputs["mlflow_run_id"])
    assert run.data.tags["synthdiv.failed_metrics"] == "perplexity"
    assert metric_keys("distinct_n")["value"] in run.data.metrics
