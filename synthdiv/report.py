"""`synthdiv report`: one static HTML page per study, built from MLflow alone.

The page answers the study's question first: the diversity-vs-accuracy figures (one panel per
model size × variant), the metrics ranked by their Spearman ρ with CIs, and one line on how far
the numbers can be trusted. The evidence follows (per-corpus scores, training curves, evals,
samples and the cluster-agent's criteria); the resolved config comes last, collapsed, because
a reader needs it only to reproduce the study. Images are inlined (base64), so the file can be
mailed or attached to the study's MLflow run.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from synthdiv.analysis import claim_rule
from synthdiv.report_numbers import PanelCI, fmt_ci, trust_line
from synthdiv.report_plots import plot_curves
from synthdiv.tracking import Tracker
from synthdiv.tracking.query import RunRecord, StudyQuery

LOSS_KEY = "train/loss"
MAX_SAMPLES = 2


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    return fmt_ci(value) if isinstance(value, float) else _esc("" if value is None else value)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none recorded</em></p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"


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

    def _csv(self, run: RunRecord, path: str | None) -> list[dict[str, str]]:
        local = self._artifact(run, path) if path else None
        return list(csv.DictReader(local.open())) if local else []

    def _name(self, run: RunRecord) -> str:
        return run.tags.get("synthdiv.corpus_name") or run.run_name

    # ------------------------------------------------------------------ the answer
    def correlation(self) -> str:
        runs = self.query.stage_runs("correlate")
        if not runs:
            return "<p><em>no correlation run: run <code>synthdiv correlate</code></em></p>"
        run = runs[-1]
        # Found by file name anywhere in the run, not under a guessed directory: the stage logs
        # them under its own artifact dir (correlation/, plots in correlation/plots/), and the
        # report once looked in correlate/ and showed none of them.
        files = {Path(p).name: p for p in Tracker(self.uri, run.run_id).list_artifact_files()}
        ranking, panels = self._ranking(run, files)
        rank = {m: i for i, m in enumerate(ranking)}  # figures in ranking order, best first
        scatters = sorted(
            (p for n, p in files.items() if n.startswith("scatter_") and n.endswith(".png")),
            key=lambda p: (rank.get(Path(p).stem[len("scatter_") :], len(rank)), p),
        )
        if not ranking and not scatters:
            return "<p><em>no correlation artifacts</em></p>"
        cfg_path = self._artifact(run, files["resolved.yaml"]) if "resolved.yaml" in files else None
        cfg = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path else {}
        confidence, target = float(cfg.get("confidence", 0.95)), cfg.get("target", "accuracy")
        parts = []
        if ranking:
            known_n = max((p.n for ps in panels.values() for p in ps), default=0)
            n_corpora = int(run.metrics.get("corr.n_corpora", known_n))
            trust = trust_line(n_corpora, ranking[0], panels.get(ranking[0], []), confidence)
            parts.append(
                f"<p class='trust'><strong>How far to trust this:</strong> {_esc(trust)}</p>"
            )
        parts.append(
            f"<p>Spearman ρ of each diversity metric with <code>{_esc(target)}</code>, signed "
            f"so that ρ &gt; 0 means more diverse corpora gave more accurate models. Cells: "
            f"ρ [{confidence:.0%} CI, a paired bootstrap over corpora, accuracies redrawn from "
            "their stderr] · p = two-sided permutation p · n corpora. Scatter plots: ±1 stderr "
            "of each accuracy, the metric's CI, and the OLS line; their titles give the slope's "
            f"CI and the panel's verdict.</p><p class='rule'>{_esc(claim_rule(confidence))}</p>"
        )
        ranking_png = [files[n] for n in ("ranking.png",) if n in files]
        parts.append(
            f"<div class='row'>{self._ranking_table(ranking, panels)}"
            f"{self._images(run, ranking_png)}</div>"
        )
        parts.append(f"<div class='grid'>{self._images(run, scatters)}</div>")
        for name, summary in (
            ("correlations.md", "Every coefficient (Spearman, Pearson, p-values)"),
            ("notes.txt", "Runs left out of the correlation, and why"),
        ):
            path = self._artifact(run, files[name]) if name in files else None
            if path and path.read_text().strip():
                parts.append(
                    f"<details><summary>{summary}</summary>"
                    f"<pre>{_esc(path.read_text())}</pre></details>"
                )
        return "".join(parts)

    def _ranking(
        self, run: RunRecord, files: dict[str, str]
    ) -> tuple[list[str], dict[str, list[PanelCI]]]:
        """Metrics in the stage's ranking order, and each one's ρ per (size, variant) panel."""
        ranking = [r["metric"] for r in self._csv(run, files.get("ranking.csv"))]
        panels: dict[str, list[PanelCI]] = {}
        for row in self._csv(run, files.get("correlations.csv")):
            panels.setdefault(row["metric"], []).append(PanelCI.from_row(row))
        return ranking + [m for m in panels if m not in ranking], panels

    def _ranking_table(self, ranking: list[str], panels: dict[str, list[PanelCI]]) -> str:
        rows = []
        for i, metric in enumerate(ranking, start=1):
            row: dict[str, Any] = {"#": i, "metric": metric}
            row |= {f"{p.panel}: ρ [CI]": p.cell() for p in panels.get(metric, [])}
            rows.append(row)
        return _table(rows)

    def _images(self, run: RunRecord, paths: list[str]) -> str:
        local = [(p, self._artifact(run, p)) for p in paths]
        return "".join(f"<figure>{_img(f.read_bytes(), p)}</figure>" for p, f in local if f)

    # ------------------------------------------------------------------ the evidence
    def scores(self) -> tuple[str, list[RunRecord]]:
        """Value [CI] per metric × corpus, laid out with the fewer of the two as columns: ten
        value-with-CI columns do not fit a page, and a study has either many metrics or many
        corpora."""
        runs = self.query.stage_runs("score")
        cells: dict[str, dict[str, str]] = {}  # metric (with its direction) → corpus → cell
        for run in runs:
            for key, value in sorted(run.metrics.items()):
                if key.startswith("div.") and key.endswith(".value"):
                    metric = key[4:-6]
                    direction = run.tags.get(f"div.{metric}.higher_is_more_diverse", "")
                    arrow = {"true": " ↑", "false": " ↓"}.get(direction.lower(), "")
                    cells.setdefault(metric + arrow, {})[self._name(run)] = fmt_ci(
                        value,
                        run.metrics.get(f"div.{metric}.ci_low"),
                        run.metrics.get(f"div.{metric}.ci_high"),
                    )
        corpora = list(dict.fromkeys(c for by_corpus in cells.values() for c in by_corpus))
        if len(corpora) <= len(cells):
            rows = [{"metric": m} | by_corpus for m, by_corpus in cells.items()]
        else:
            rows = [{"corpus": c} | {m: cells[m].get(c) for m in cells} for c in corpora]
        legend = "<p>Value [CI] per corpus; ↑ higher = more diverse, ↓ lower = more diverse.</p>"
        return legend + _table(rows), runs

    def samples_and_criteria(self, score_runs: list[RunRecord]) -> str:
        parts = []
        for run in score_runs:
            parts.append(f"<h3>{_esc(self._name(run))}</h3>")
            source = run.tags.get("synthdiv.corpus_source")
            if source:
                parts.append(self._samples(source))
            criteria = self._artifact(run, "cluster_agent/seed_0/criteria.md")
            if criteria:
                parts.append(
                    "<details open><summary>Cluster-agent "
                    f"criteria</summary><pre>{_esc(criteria.read_text())}</pre></details>"
                )
            iterations = self._artifact(run, "cluster_agent/seed_0/iterations.jsonl")
            if iterations:
                batches = iterations.read_text().splitlines()[:3]
                parts.append(
                    "<details><summary>Clustered batches</summary><pre>"
                    + _esc("\n".join(json.dumps(json.loads(b), indent=1)[:1500] for b in batches))
                    + "</pre></details>"
                )
        return "".join(parts) or "<p><em>none recorded</em></p>"

    def _samples(self, source: str) -> str:
        from synthdiv.config import CorpusConfig
        from synthdiv.corpus import read_corpus

        try:
            corpus, _ = read_corpus(CorpusConfig(path=source, limit=MAX_SAMPLES))
        except Exception as err:  # the corpus may live on storage this machine cannot read
            return f"<p><em>samples unavailable: {_esc(err)}</em></p>"
        return "".join(
            f"<blockquote><pre>{_esc(t[:1200])}</pre></blockquote>" for t in corpus.texts
        )

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
            row.update(
                {
                    k[5:]: v
                    for k, v in sorted(run.metrics.items())
                    if k.startswith("eval.") and "stderr" not in k
                }
            )
            rows.append(row)
        return _table(rows)

    def knobs(self) -> str:
        studies = self.query.stage_runs("study", ("FINISHED", "RUNNING", "FAILED", "KILLED"))
        if not studies:
            return "<p><em>no study run (stages were run by hand)</em></p>"
        path = self._artifact(studies[-1], "config/resolved.yaml")
        return (
            "<details><summary>Every knob, as the study "
            f"ran</summary><pre>{_esc(path.read_text()) if path else ''}</pre></details>"
        )

    def render(self) -> str:
        score_table, score_runs = self.scores()
        sections = [
            ("answer", "Diversity vs accuracy", self.correlation()),
            ("scores", "Diversity scores", score_table),
            ("training", "Training curves", self.training()),
            ("evals", "Evaluation", self.evals()),
            (
                "samples",
                "Samples and cluster-agent criteria",
                self.samples_and_criteria(score_runs),
            ),
            ("config", "Resolved config", self.knobs()),
        ]
        nav = " · ".join(f"<a href='#{key}'>{_esc(title)}</a>" for key, title, _ in sections)
        body = "".join(
            f"<section id='{key}'><h2>{_esc(t)}</h2>{c}</section>" for key, t, c in sections
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>synthdiv report: {_esc(self.experiment)}</title><style>{_CSS}</style></head>"
            "<body><h1>synthdiv report: "
            f"{_esc(self.experiment)}</h1><nav>{nav}</nav>{body}</body></html>"
        )


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1240px;padding:0 16px;color:#222;
  line-height:1.4}
nav{font-size:14px;margin-bottom:1em}nav a{color:#246}
table{border-collapse:collapse;margin:.5em 0;font-size:13px;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f3f3f3}
.wide{overflow-x:auto;max-width:100%}
pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
img{max-width:100%;border:1px solid #eee}figure{margin:0}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.6em}
.trust{background:#fff7e0;border-left:4px solid #e0a000;padding:8px 12px;font-size:15px}
.row{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}.row>*{flex:1 1 420px;min-width:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px;margin-top:12px}
summary{cursor:pointer;font-weight:600}
"""


def write_report(
    tracking_uri: str, experiment: str, out: Path, parent_run_id: str | None = None
) -> Path:
    """Render the page to ``out`` and attach it to the study's parent run when there is one."""
    report = StudyReport(tracking_uri, experiment, parent_run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render())
    studies = report.query.stage_runs("study", ("FINISHED", "RUNNING", "FAILED", "KILLED"))
    if studies:
        Tracker(tracking_uri, studies[-1].run_id).log_artifact(out, "report")
    return out
