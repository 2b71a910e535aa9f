"""`synthdiv report`: one static HTML page per study, built from MLflow alone.

Sections: the study's knobs, each corpus's scores with CIs, example samples, the cluster-agent's
criteria and a few clustered batches, training curves, eval tables and the correlation plots.
Images are inlined (base64), so the file can be mailed or attached to the study's MLflow run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from synthdiv.report_plots import plot_curves
from synthdiv.tracking import Tracker
from synthdiv.tracking.query import RunRecord, StudyQuery

LOSS_KEY = "train/loss"
MAX_SAMPLES = 2


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none recorded</em></p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _esc("" if value is None else value)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


class StudyReport:
    def __init__(self, tracking_uri: str, experiment: str, parent_run_id: str | None = None):
        self.uri = tracking_uri
        self.query = StudyQuery(tracking_uri, experiment, parent_run_id)
        self.experiment = experiment
        self._tmp = Path(tempfile.mkdtemp(prefix="synthdiv-report-"))

    def _artifact(self, run: RunRecord, path: str) -> Path | None:
        try:
            return Tracker(self.uri, run.run_id).download_artifacts(path, self._tmp / run.run_id)
        except Exception:  # an artifact a stage did not write is simply left out of the page
            return None

    def _name(self, run: RunRecord) -> str:
        return run.tags.get("synthdiv.corpus_name") or run.run_name

    def knobs(self) -> str:
        studies = self.query.stage_runs("study", ("FINISHED", "RUNNING", "FAILED", "KILLED"))
        if not studies:
            return "<p><em>no study run (stages were run by hand)</em></p>"
        path = self._artifact(studies[-1], "config/resolved.yaml")
        return f"<pre>{_esc(path.read_text()) if path else ''}</pre>"

    def scores(self) -> tuple[str, list[RunRecord]]:
        runs = self.query.stage_runs("score")
        rows = []
        for run in runs:
            row: dict[str, Any] = {"corpus": self._name(run)}
            for key, value in sorted(run.metrics.items()):
                if key.startswith("div.") and key.endswith(".value"):
                    metric = key[4:-6]
                    low = run.metrics.get(f"div.{metric}.ci_low", value)
                    high = run.metrics.get(f"div.{metric}.ci_high", value)
                    row[metric] = f"{value:.4g} [{low:.3g}, {high:.3g}]"
            rows.append(row)
        return _table(rows), runs

    def samples_and_criteria(self, score_runs: list[RunRecord]) -> str:
        parts = []
        for run in score_runs:
            parts.append(f"<h3>{_esc(self._name(run))}</h3>")
            source = run.tags.get("synthdiv.corpus_source")
            if source:
                parts.append(self._samples(source))
            criteria = self._artifact(run, "cluster_agent/seed_0/criteria.md")
            if criteria:
                parts.append(f"<details open><summary>Cluster-agent criteria</summary><pre>{_esc(criteria.read_text())}</pre></details>")
            iterations = self._artifact(run, "cluster_agent/seed_0/iterations.jsonl")
            if iterations:
                batches = iterations.read_text().splitlines()[:3]
                parts.append("<details><summary>Clustered batches</summary><pre>"
                             + _esc("\n".join(json.dumps(json.loads(b), indent=1)[:1500] for b in batches))
                             + "</pre></details>")
        return "".join(parts) or "<p><em>none recorded</em></p>"

    def _samples(self, source: str) -> str:
        from synthdiv.config import CorpusConfig
        from synthdiv.corpus import read_corpus

        try:
            corpus, _ = read_corpus(CorpusConfig(path=source, limit=MAX_SAMPLES))
        except Exception as err:  # the corpus may live on storage this machine cannot read
            return f"<p><em>samples unavailable: {_esc(err)}</em></p>"
        return "".join(f"<blockquote><pre>{_esc(t[:1200])}</pre></blockquote>" for t in corpus.texts)

    def training(self) -> str:
        curves: dict[str, list[tuple[int, float]]] = {}
        for stage in ("pretrain", "sft"):
            for run in self.query.stage_runs(stage):
                history = Tracker(self.uri, run.run_id).metric_history(LOSS_KEY)
                if history:
                    curves[f"{stage}: {run.run_name}"] = history
        if not curves:
            return "<p><em>no training runs</em></p>"
        buf = io.BytesIO()
        plot_curves(curves, buf, title="Training loss", ylabel=LOSS_KEY)
        return _img(buf.getvalue(), "training loss curves")

    def evals(self) -> str:
        rows = []
        for run in self.query.stage_runs("eval"):
            row: dict[str, Any] = {
                "corpus": run.tags.get("synthdiv.corpus_name", ""),
                "size": run.tags.get("synthdiv.model_size", ""),
                "variant": run.tags.get("synthdiv.variant", ""),
            }
            row.update({k[5:]: v for k, v in sorted(run.metrics.items()) if k.startswith("eval.") and "stderr" not in k})
            rows.append(row)
        return _table(rows)

    def correlation(self) -> str:
        runs = self.query.stage_runs("correlate")
        if not runs:
            return "<p><em>no correlation run</em></p>"
        run = runs[-1]
        parts = []
        for name in ("correlations.md",):
            path = self._artifact(run, f"correlate/{name}")
            if path:
                parts.append(f"<pre>{_esc(path.read_text())}</pre>")
        listing = Tracker(self.uri, run.run_id).list_artifact_files("correlate")
        for item in listing:
            if item.endswith(".png"):
                path = self._artifact(run, item)
                if path:
                    parts.append(_img(path.read_bytes(), item))
        return "".join(parts) or "<p><em>no correlation artifacts</em></p>"

    def render(self) -> str:
        score_table, score_runs = self.scores()
        sections = [
            ("Study knobs", self.knobs()),
            ("Diversity scores", score_table),
            ("Samples and cluster-agent criteria", self.samples_and_criteria(score_runs)),
            ("Training curves", self.training()),
            ("Evaluation", self.evals()),
            ("Diversity vs accuracy", self.correlation()),
        ]
        body = "".join(f"<h2>{_esc(t)}</h2>{c}" for t, c in sections)
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>synthdiv report: {_esc(self.experiment)}</title><style>{_CSS}</style></head>"
            f"<body><h1>synthdiv report: {_esc(self.experiment)}</h1>{body}</body></html>"
        )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
img{max-width:100%;border:1px solid #eee;margin:8px 0}h2{border-bottom:2px solid #ddd;padding-bottom:4px}
"""


def write_report(tracking_uri: str, experiment: str, out: Path, parent_run_id: str | None = None) -> Path:
    """Render the page to ``out`` and attach it to the study's parent run when there is one."""
    report = StudyReport(tracking_uri, experiment, parent_run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render())
    studies = report.query.stage_runs("study", ("FINISHED", "RUNNING", "FAILED", "KILLED"))
    if studies:
        Tracker(tracking_uri, studies[-1].run_id).log_artifact(out, "report")
    return out
