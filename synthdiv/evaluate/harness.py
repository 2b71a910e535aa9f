"""The lm-eval bridge: load the model once, run the selected tasks, turn results into scores.

lm-eval (lm-evaluation-harness) does the scoring: loglikelihood of each choice, ``acc`` and
``acc_norm`` with their standard errors. synthdiv picks one metric per task (the paper's choice
for its eight tasks, ``acc`` for local tasks unless their YAML says otherwise) and averages them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from synthdiv.evaluate.checkpoint import ResolvedModel
from synthdiv.evaluate.config import EvalConfig
from synthdiv.evaluate.suites import TaskSpec, paper8_index_dirs


@dataclass
class TaskScore:
    task: str
    metric: str
    score: float
    stderr: float | None
    n: int
    acc: float | None = None
    acc_stderr: float | None = None
    acc_norm: float | None = None
    acc_norm_stderr: float | None = None


@dataclass
class EvalReport:
    tasks: list[TaskScore]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lm_eval_version: str | None = None

    @property
    def average(self) -> float:
        return sum(t.score for t in self.tasks) / len(self.tasks)

    @property
    def average_stderr(self) -> float | None:
        """Stderr of the unweighted mean of independent task scores."""
        errs = [t.stderr for t in self.tasks]
        if any(e is None for e in errs):
            return None
        return math.sqrt(sum(e * e for e in errs)) / len(errs)  # type: ignore[operator]

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """Flat MLflow metrics: ``eval.<task>.<metric>`` per task, ``eval.avg`` overall."""
        out: dict[str, float] = {}
        for t in self.tasks:
            base = f"{prefix}.{t.task}"
            values = {
                "score": t.score,
                "score_stderr": t.stderr,
                "n": t.n,
                "acc": t.acc,
                "acc_stderr": t.acc_stderr,
                "acc_norm": t.acc_norm,
                "acc_norm_stderr": t.acc_norm_stderr,
            }
            out |= {f"{base}.{k}": float(v) for k, v in values.items() if v is not None}
        out[f"{prefix}.avg"] = self.average
        if self.average_stderr is not None:
            out[f"{prefix}.avg_stderr"] = self.average_stderr
        out[f"{prefix}.n_tasks"] = float(len(self.tasks))
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "average": self.average,
            "average_stderr": self.average_stderr,
            "tasks": [asdict(t) for t in self.tasks],
            "lm_eval_version": self.lm_eval_version,
        }


def _number(value: Any) -> float | None:
    """lm-eval reports 'N/A' for a stderr it could not compute."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_results(raw: dict[str, Any], specs: list[TaskSpec]) -> EvalReport:
    scores = []
    for spec in specs:
        res = raw["results"].get(spec.name)
        if res is None:
            raise RuntimeError(f"lm-eval returned no result for task {spec.name!r}")
        key = f"{spec.metric},none"
        if key not in res:
            have = sorted(k.split(",")[0] for k in res if k.endswith(",none"))
            raise RuntimeError(f"task {spec.name!r} has no metric {spec.metric!r}; it has {have}")
        scores.append(
            TaskScore(
                task=spec.name,
                metric=spec.metric,
                score=float(res[key]),
                stderr=_number(res.get(f"{spec.metric}_stderr,none")),
                n=int(raw.get("n-samples", {}).get(spec.name, {}).get("effective", 0)),
                acc=_number(res.get("acc,none")),
                acc_stderr=_number(res.get("acc_stderr,none")),
                acc_norm=_number(res.get("acc_norm,none")),
                acc_norm_stderr=_number(res.get("acc_norm_stderr,none")),
            )
        )
    samples = {
        name: [_compact_sample(s) for s in rows] for name, rows in raw.get("samples", {}).items()
    }
    return EvalReport(scores, samples, raw.get("lm_eval_version"))


def _compact_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """What a person needs to inspect an answer: the question, the pick, right or wrong."""
    doc = sample.get("doc") or {}
    lls = [r[0] if isinstance(r, list | tuple) else r for r in sample.get("filtered_resps", [])]
    numeric = [float(x) for x in lls if isinstance(x, int | float)]
    args = sample.get("arguments") or []
    first = args[0] if args else None
    return {
        "doc_id": sample.get("doc_id"),
        "question": doc.get("question") if isinstance(doc, dict) else None,
        # the exact text the model was conditioned on (shows the system prompt / chat template)
        "context": first[0]
        if isinstance(first, list | tuple) and first and isinstance(first[0], str)
        else None,
        "target": sample.get("target"),
        "pred": max(range(len(numeric)), key=numeric.__getitem__) if numeric else None,
        "loglikelihoods": numeric,
        "acc": sample.get("acc"),
    }


def _dtype(cfg: EvalConfig) -> str:
    if cfg.model.dtype != "auto":
        return cfg.model.dtype
    # bf16 matmuls are slow on most CPUs; float32 is both faster and exact there.
    return "float32" if cfg.model.device == "cpu" else "auto"


def apply_offline_mode(cfg: EvalConfig) -> None:
    """Local and pre-staged data must never trigger a download (or a hang without network).

    ``datasets`` reads these at import, so this runs before anything imports lm-eval.
    """
    if cfg.suite != "paper8" or cfg.paper8_data.source != "hub":
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _quiet(hflm: type) -> type:
    """``hflm`` whose request loops honour ``TQDM_DISABLE`` (set by the CLI): lm-eval builds its
    bars with an explicit ``disable=False``, which overrides tqdm's own environment switch."""

    def off(disable_tqdm: bool) -> bool:
        return disable_tqdm or os.environ.get("TQDM_DISABLE", "") not in ("", "0", "false")

    class QuietHFLM(hflm):  # type: ignore[misc, valid-type]
        def loglikelihood(self, requests: Any, disable_tqdm: bool = False) -> Any:
            return super().loglikelihood(requests, disable_tqdm=off(disable_tqdm))

        def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> Any:
            return super().loglikelihood_rolling(requests, disable_tqdm=off(disable_tqdm))

        def generate_until(self, requests: Any, disable_tqdm: bool = False) -> Any:
            return super().generate_until(requests, disable_tqdm=off(disable_tqdm))

    return QuietHFLM


def run_harness(cfg: EvalConfig, model: ResolvedModel, specs: list[TaskSpec]) -> dict[str, Any]:
    """Evaluate ``model`` on ``specs`` with lm-eval; returns lm-eval's raw result dict."""
    apply_offline_mode(cfg)
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    named = [s for s in specs if isinstance(s.spec, str)]
    task_manager = TaskManager(
        include_path=paper8_index_dirs() if named else None, include_defaults=False
    )
    lm = _quiet(HFLM)(
        pretrained=model.path,
        tokenizer=model.tokenizer,
        device=cfg.model.device,
        dtype=_dtype(cfg),
        batch_size=cfg.model.batch_size,
        max_length=cfg.model.max_length,
    )
    raw = simple_evaluate(
        model=lm,
        tasks=[s.spec for s in specs],
        task_manager=task_manager,
        num_fewshot=cfg.num_fewshot,
        device=cfg.model.device,
        limit=cfg.limit,
        bootstrap_iters=cfg.bootstrap_iters,
        system_instruction=cfg.system_instruction,
        apply_chat_template=cfg.apply_chat_template,
        log_samples=True,
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
    )
    if raw is None:  # only happens on non-zero ranks of a distributed run
        raise RuntimeError("lm-eval returned no results")
    return raw
