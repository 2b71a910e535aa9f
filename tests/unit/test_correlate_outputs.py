"""What correlate hands on: each accuracy's stderr from its eval run, y error bars in the
scatter plots, and the report's trust line following the stage's verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from synthdiv.analysis import MIN_CORPORA_FOR_CLAIM, Point, Score, correlate_study
from synthdiv.evaluate.correlate import join_runs
from synthdiv.evaluate.correlation_plots import scatter_figure
from synthdiv.report_numbers import PanelCI, trust_line
from synthdiv.tracking import TAG_DATASET
from synthdiv.tracking.query import RunRecord


def _run(i: int, stage_metrics: dict[str, float], tags: dict[str, str]) -> RunRecord:
    return RunRecord(f"r{i}", f"run{i}", "FINISHED", i, tags=tags, metrics=stage_metrics)


def test_join_reads_the_targets_stderr():
    scores = [_run(0, {"div.vendi.value": 2.0}, {TAG_DATASET: "d0"})]
    evals = [
        _run(1, {"eval.avg": 0.4, "eval.avg_stderr": 0.02}, {TAG_DATASET: "d0"}),
        _run(2, {"eval.t.score": 0.5, "eval.t.score_stderr": 0.03}, {TAG_DATASET: "d0"}),
    ]
    (avg,), _ = join_runs(scores, evals[:1], "eval.avg")
    (task,), _ = join_runs(scores, evals[1:], "eval.t.score")
    assert avg.accuracy_stderr == 0.02 and task.accuracy_stderr == 0.03
    no_err = [_run(3, {"eval.avg": 0.4}, {TAG_DATASET: "d0"})]
    assert join_runs(scores, no_err, "eval.avg")[0][0].accuracy_stderr is None


def test_scatter_draws_each_accuracys_stderr_as_a_y_error_bar():
    errs = [0.01, 0.02, 0.03, 0.04, 0.05]
    points = [
        Point(f"d{i}", "tiny", "base", 0.4 + 0.01 * i, {"m": Score(float(i))}, accuracy_stderr=e)
        for i, e in enumerate(errs)
    ]
    corrs = correlate_study(points, {"m": True}, n_boot=200)
    ax = scatter_figure("m", points, corrs, "eval.avg").axes[0]
    (bars,) = ax.containers
    assert bars.has_yerr
    _, _, (x_lines, y_lines) = bars.lines
    heights = [seg[1, 1] - seg[0, 1] for seg in y_lines.get_segments()]
    assert heights == pytest.approx([2 * e for e in errs])
    assert "slope" in ax.get_title() and corrs[0].verdict in ax.get_title()


def test_trust_line_follows_the_stage_verdict_beyond_the_bootstrap_ci():
    n = MIN_CORPORA_FOR_CLAIM
    clear = PanelCI("tiny / base", n, 0.9, 0.2, 0.99, perm_p=0.01, verdict="supported")
    assert trust_line(n, "vendi", [clear], 0.95).startswith("Supported")
    # bootstrap CI clear of 0, but the permutation test or Fisher-z CI said no
    failed = PanelCI("tiny / base", n, 0.9, 0.2, 0.99, perm_p=0.08, verdict="no claim")
    assert trust_line(n, "vendi", [failed], 0.95).startswith("No claim")
    assert "p=0.08" in failed.cell()


def test_correlate_without_stderr_still_runs_on_numpy_points():
    pts = [
        Point(f"d{i}", "tiny", "base", float(v), {"m": Score(float(i))})
        for i, v in enumerate(np.linspace(0.3, 0.5, 6))
    ]
    (c,) = correlate_study(pts, {}, n_boot=200)
    assert not c.stderr_propagated and c.verdict == "supported"


def test_verdict_lines_group_metrics_that_share_a_reason_and_panels():
    from synthdiv.analysis import Correlation
    from synthdiv.evaluate.correlate import verdict_notes

    def corr(metric: str, variant: str, verdict: str, reason: str) -> Correlation:
        return Correlation(
            metric, "tiny", variant, n=3, direction=1, verdict=verdict, verdict_reason=reason
        )

    few = "n=3 < 5"
    panels = [corr(m, v, "too few corpora", few) for m in ("vendi", "distinct_n") for v in "ab"]
    panels += [corr("cluster_agent", "a", "too few corpora", "n=2 < 5")]
    panels += [corr("kmeans", "b", "no claim", "permutation p=0.4")]
    assert verdict_notes(panels) == [
        "no claim (permutation p=0.4): kmeans in tiny/b",
        "too few corpora (n=2 < 5): cluster_agent in tiny/a",
        "too few corpora (n=3 < 5): distinct_n, vendi in tiny/a, tiny/b",
    ]
