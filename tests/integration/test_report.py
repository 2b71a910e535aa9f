"""The study report read as a reader would: the answer first, numbers at sensible precision.

Score and eval runs of eight corpora are logged to the real MLflow server (no Ray, no training:
what the report reads is MLflow alone), the real correlate stage correlates them, and the page is
rendered in headless Chromium at 1300 px. The tiny end-to-end study's own report is checked in
test_study.py.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from synthdiv.evaluate.correlate import CorrelateConfig, correlate_study
from synthdiv.report import write_report
from synthdiv.stats import MIN_CORPORA_FOR_CLAIM
from tests.support.browser import screenshot

N_CORPORA = 8
# metric → (higher is more diverse, how the metric follows a corpus's quality q in [0, 1])
METRICS = {
    "vendi": (True, lambda q, noise: 4 + 6 * q + 0.3 * noise),  # tracks accuracy closely
    "self_repetition": (
        False,
        lambda q, noise: 0.6 - 0.4 * q + 0.2 * noise,
    ),  # lower = more diverse
    "distinct_n": (True, lambda q, noise: 0.5 + 0.05 * noise),  # unrelated to accuracy
    "kl_tiny": (True, lambda q, noise: 2e-8 + 1e-9 * noise),  # tiny magnitudes, as in the issue
}


def log_study(uri: str, experiment: str, seed: int = 0) -> None:
    """One score run per corpus and a base and an SFT eval run per corpus, tagged as the stages
    tag them (the join key is the dataset digest)."""
    client = MlflowClient(uri)
    exp_id = client.create_experiment(experiment)
    rng = np.random.default_rng(seed)
    for i, quality in enumerate(np.linspace(0, 1, N_CORPORA)):
        digest, name = f"digest{i:02d}", f"corpus-{i}"
        common = {"synthdiv.dataset_digest": digest, "synthdiv.corpus_name": name}
        run = client.create_run(
            exp_id,
            tags=common
            | {"synthdiv.stage": "score"}
            | {
                f"div.{m}.higher_is_more_diverse": str(up).lower() for m, (up, _) in METRICS.items()
            },
        )
        for metric, (_, follow) in METRICS.items():
            value = follow(quality, rng.normal())
            half = abs(value) * 0.05
            client.log_metric(run.info.run_id, f"div.{metric}.value", value)
            client.log_metric(run.info.run_id, f"div.{metric}.ci_low", value - half)
            client.log_metric(run.info.run_id, f"div.{metric}.ci_high", value + half)
        client.set_terminated(run.info.run_id)
        for variant, gain in (("base", 0.0), ("sft", 0.1)):
            run = client.create_run(
                exp_id,
                tags=common
                | {
                    "synthdiv.stage": "eval",
                    "synthdiv.model_size": "tiny",
                    "synthdiv.variant": variant,
                },
            )
            accuracy = 0.3 + gain + 0.3 * quality + 0.02 * rng.normal()
            client.log_metric(run.info.run_id, "eval.avg", accuracy)
            client.set_terminated(run.info.run_id)


def _artifact_csv(client: MlflowClient, run_id: str, name: str, dst: Path) -> list[dict[str, str]]:
    path = client.download_artifacts(run_id, f"correlation/{name}", str(dst))
    return list(csv.DictReader(open(path)))


def _ranking_rows(page: str) -> list[list[str]]:
    """The cells of the first table in the answer section (the metric ranking)."""
    answer = page[page.index("<section id='answer'>") : page.index("<section id='scores'>")]
    table = answer[answer.index("<table>") : answer.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    return [re.findall(r"<td>(.*?)</td>", row) for row in rows]


@pytest.mark.slow
def test_report_puts_the_ranking_with_cis_first(runtime, tmp_path):
    log_study(runtime.tracking_uri, runtime.experiment)
    result = correlate_study(CorrelateConfig(runtime=runtime, n_boot=400))
    client = MlflowClient(runtime.tracking_uri)
    run_id = client.search_runs(
        [client.get_experiment_by_name(runtime.experiment).experiment_id],
        filter_string="tags.`synthdiv.stage` = 'correlate'",
    )[0].info.run_id
    ranking = [r["metric"] for r in _artifact_csv(client, run_id, "ranking.csv", tmp_path / "a")]
    correlations = _artifact_csv(client, run_id, "correlations.csv", tmp_path / "b")
    assert result.metrics["corr.n_corpora"] == N_CORPORA

    page = write_report(
        runtime.tracking_uri, runtime.experiment, tmp_path / "report.html"
    ).read_text()

    # the answer comes first, then the evidence (test_study.py checks the config, last)
    order = [
        page.index(f"<section id='{key}'>")
        for key in ("answer", "scores", "training", "evals", "samples", "config")
    ]
    assert order == sorted(order)

    # the ranking table follows the correlate stage's ranking, one column per (size, variant)
    rows = _ranking_rows(page)
    assert [r[1] for r in rows] == ranking
    assert len(rows[0]) == 2 + 2  # rank, metric, tiny/base, tiny/sft
    # ρ is signed by direction: self_repetition falls with accuracy, so it is shown positive
    raw = [float(r["spearman"]) for r in correlations if r["metric"] == "self_repetition"]
    assert all(rho < 0 for rho in raw), "the fixture's data should make self_repetition fall"
    shown = rows[ranking.index("self_repetition")][2:]
    assert all(
        re.match(r"0\.\d+ \[-?\d\.\d+, \d\.\d+\] · p=[\d.]+ · n=8$", cell) for cell in shown
    ), shown

    # one line on trust: n is enough here, and the top metric's CIs decide whether it is a claim
    top = [r for r in correlations if r["metric"] == ranking[0]]
    lows = [float(r["spearman_ci_low"]) * int(r["direction"]) for r in top]
    highs = [float(r["spearman_ci_high"]) * int(r["direction"]) for r in top]
    excludes_zero = (
        all(lo * hi > 0 for lo, hi in zip(lows, highs, strict=True))
        and len({lo > 0 for lo in lows}) == 1
    )
    assert N_CORPORA >= MIN_CORPORA_FOR_CLAIM
    trust = re.search(r"<p class='trust'>(.*?)</p>", page).group(1)
    assert f"n = {N_CORPORA} corpora" in trust and ranking[0] in trust
    supported = excludes_zero and all(r["verdict"] == "supported" for r in top)
    assert trust.split("</strong> ")[1].startswith("Supported" if supported else "No claim")

    # numbers at sensible precision: no exponent notation, tiny magnitudes share a power of ten
    text = re.sub(r'src="data:[^"]*"', "", page)  # the inlined images are base64, not numbers
    assert not re.search(r"\d[eE][-+]\d", text)
    scores = page[page.index("<section id='scores'>") : page.index("<section id='training'>")]
    tiny = re.findall(r"<td>(\d\.\d+ \[\d\.\d+, \d\.\d+\] ×10⁻⁸)</td>", scores)
    assert len(tiny) == N_CORPORA and "<th>kl_tiny ↑</th>" in scores  # 8 corpora: one row each

    # the scatter figures, best-ranked metric first
    alts = re.findall(r'<img alt="([^"]*scatter_[^"]*)"', page)
    assert [Path(a).stem.removeprefix("scatter_") for a in alts] == ranking

    dom, shot = screenshot((tmp_path / "report.html").as_uri(), tmp_path / "shot")
    assert "How far to trust this" in dom and shot.stat().st_size > 20_000
