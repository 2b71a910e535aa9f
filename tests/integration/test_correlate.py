"""`synthdiv correlate` end to end against a real MLflow server: score and eval runs are written
through synthdiv.tracking exactly as the stages tag them, and every number is recomputed here
from the values logged."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from synthdiv.analysis import correlate
from synthdiv.cli import app
from synthdiv.evaluate.correlate import CorrelateConfig, correlate_study
from synthdiv.tracking import TAG_DATASET, TAG_PARENT, TAG_STAGE, Tracker, ensure_experiment

N_BOOT = 400
VENDI = [3.1, 3.6, 4.0, 4.4, 5.2]  # higher = more diverse
COMPRESSION = [3.0, 2.6, 2.7, 2.2, 2.0]  # lower = more diverse
BASE_ACC = [0.40, 0.41, 0.44, 0.43, 0.47]
SFT_ACC = [0.50, 0.53, 0.52, 0.56, 0.58]


def _run(runtime, stage, tags, metrics, parent=None):
    """A finished run tagged as the stages tag theirs (three calls, not a whole stage_run)."""
    uri = runtime.tracking_uri
    client = MlflowClient(uri)
    exp_id = ensure_experiment(client, runtime.experiment, uri)
    all_tags = {TAG_STAGE: stage, **tags, **({TAG_PARENT: parent} if parent else {})}
    tracker = Tracker(uri, client.create_run(exp_id, tags=all_tags).info.run_id)
    tracker.log_metrics(metrics)
    tracker.end("FINISHED")
    return tracker.run_id


def _score_run(runtime, digest, vendi, compression, parent=None):
    _run(
        runtime,
        "score",
        {TAG_DATASET: digest},
        {
            "div.vendi.value": vendi,
            "div.vendi.ci_low": vendi - 0.1,
            "div.vendi.ci_high": vendi + 0.1,
            "div.compression_ratio.value": compression,
            "div.compression_ratio.ci_low": compression - 0.05,
            "div.compression_ratio.ci_high": compression + 0.05,
        },
        parent,
    )


def _eval_run(runtime, label, digest, size, variant, acc, parent=None):
    tags = {"synthdiv.model_size": size, "synthdiv.variant": variant, "synthdiv.corpus_name": label}
    tags |= {TAG_DATASET: digest} if digest else {}
    _run(runtime, "eval", tags, {"eval.avg": acc, "eval.local_arithmetic.score": acc / 2}, parent)


@pytest.fixture
def study(runtime):
    digests = [f"digest{i:02d}" for i in range(5)]
    for i, d in enumerate(digests):
        _score_run(runtime, d, VENDI[i], COMPRESSION[i])
        _eval_run(runtime, f"c{i}", d, "tiny", "base", BASE_ACC[i])  # the study's corpus names
        _eval_run(runtime, f"c{i}", d, "tiny", "sft", SFT_ACC[i])
    for i in range(3):  # a second size with only three corpora: rho yes, CI undefined
        _eval_run(runtime, f"c{i}", digests[i], "small", "base", BASE_ACC[i] + 0.1)
    _eval_run(runtime, "orphan", None, "tiny", "base", 0.9)  # no lineage tag: skipped, noted
    # a rerun of c0 base (newer) supersedes the older value
    _eval_run(runtime, "c0", digests[0], "tiny", "base", 0.39)
    return digests


def _expected(x, y):
    return correlate(x, y, n_boot=N_BOOT, seed=0)


@pytest.mark.slow
def test_correlate_reproduces_numbers_from_mlflow(ray_local, runtime, study):
    result = correlate_study(CorrelateConfig(runtime=runtime, n_boot=N_BOOT))
    corrs = {(c.metric, c.model_size, c.variant): c for c in result.extra["correlations"]}
    assert set(corrs) == {
        (m, s, v)
        for m in ("vendi", "compression_ratio")
        for s, v in (("tiny", "base"), ("tiny", "sft"), ("small", "base"))
    }
    base_acc = [0.39] + BASE_ACC[1:]  # the rerun superseded the first value
    want = _expected(VENDI, base_acc)
    got = corrs[("vendi", "tiny", "base")]
    assert got.n == 5
    assert got.spearman == pytest.approx(want["spearman"])
    assert got.pearson == pytest.approx(want["pearson"])
    assert (got.spearman_ci_low, got.spearman_ci_high) == pytest.approx(
        (want["spearman_ci_low"], want["spearman_ci_high"])
    )
    sft = corrs[("compression_ratio", "tiny", "sft")]
    assert sft.spearman == pytest.approx(_expected(COMPRESSION, SFT_ACC)["spearman"])
    assert sft.direction == -1 and sft.directional_spearman > 0  # from the metric registry
    small = corrs[("vendi", "small", "base")]
    assert small.n == 3 and small.spearman is not None and small.spearman_ci_low is None
    notes = result.extra["notes"]
    assert any("no synthdiv.dataset_digest tag" in n for n in notes)
    assert any("superseded" in n for n in notes)

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(result.outputs["mlflow_run_id"])
    assert run.data.tags["synthdiv.stage"] == "correlate"
    assert run.data.metrics["corr.vendi.tiny.base.spearman"] == pytest.approx(want["spearman"])
    assert run.data.metrics["corr.n_points"] == 13
    listed = {f.path for f in client.list_artifacts(run.info.run_id, "correlation")}
    assert {
        "correlation/correlations.csv",
        "correlation/correlations.md",
        "correlation/ranking.md",
        "correlation/points.csv",
        "correlation/plots",
    } <= listed
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "correlation/plots")}
    assert {"correlation/plots/scatter_vendi.png", "correlation/plots/ranking.png"} <= plots
    table = client.download_artifacts(run.info.run_id, "correlation/correlations.csv")
    rows = list(csv.DictReader(io.StringIO(Path(table).read_text())))
    row = next(
        r for r in rows if (r["metric"], r["model_size"], r["variant"]) == ("vendi", "tiny", "base")
    )
    assert float(row["spearman"]) == pytest.approx(want["spearman"])
    md = Path(client.download_artifacts(run.info.run_id, "correlation/correlations.md")).read_text()
    assert "undefined (n=3 < 4: CI undefined)" in md


@pytest.mark.slow
def test_correlate_limits_to_one_parent_run_and_other_targets(
    ray_local, runtime, tmp_path, monkeypatch
):
    parent = _run(runtime, "study", {}, {})
    for i in range(4):
        _score_run(runtime, f"p{i}", VENDI[i], COMPRESSION[i], parent=parent)
        _eval_run(runtime, f"p{i}", f"p{i}", "tiny", "base", BASE_ACC[i], parent=parent)
    _score_run(runtime, "outside", 9.0, 1.0)  # same experiment, not under the parent
    _eval_run(runtime, "outside", "outside", "tiny", "base", 0.99)
    cfg = CorrelateConfig(
        runtime=runtime,
        parent_run_id=parent,
        n_boot=N_BOOT,
        target="eval.local_arithmetic.score",
        metrics=["vendi"],
    )
    result = correlate_study(cfg)
    (corr,) = result.extra["correlations"]
    assert corr.n == 4
    want = _expected(VENDI[:4], list(np.array(BASE_ACC[:4]) / 2))
    assert corr.spearman == pytest.approx(want["spearman"])
    assert corr.spearman_ci_low == pytest.approx(want["spearman_ci_low"])

    # the CLI prints the same study's ranking and correlations
    monkeypatch.chdir(tmp_path)  # its default storage_uri is relative to the CWD
    res = CliRunner().invoke(
        app,
        [
            "correlate",
            "--parent",
            parent,
            "--target",
            "eval.local_arithmetic.score",
            "--metrics",
            "vendi",
            "--n-boot",
            str(N_BOOT),
            "--tracking-uri",
            runtime.tracking_uri,
            "--experiment",
            runtime.experiment,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "vendi" in res.output and f"{corr.spearman:.4g}" in res.output


def test_correlate_cli_names_a_missing_study(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "correlate",
            "--study",
            "no-such-study",
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'm.db'}",
        ],
    )
    assert res.exit_code == 2
    assert "MLflow experiment 'no-such-study' not found" in " ".join(res.output.split())
