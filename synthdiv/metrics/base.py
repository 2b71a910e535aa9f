"""The metric contract and registry.

A metric has a ``name``, a ``version`` (bump it when its numbers change), a direction
(``higher_is_more_diverse``) and ``compute(corpus, ctx) -> MetricResult``. New metrics register
with :func:`register` instead of editing a central list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import stats

from synthdiv.corpus import Corpus


@dataclass
class MetricResult:
    """A score with its uncertainty. ``per_seed`` holds the value of each bootstrap/subsample."""

    name: str
    version: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    seed: int
    higher_is_more_diverse: bool
    per_seed: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    tokens: int = 0

    def as_row(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "version": self.version,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "seed": self.seed,
            "higher_is_more_diverse": self.higher_is_more_diverse,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class MetricContext:
    """What a metric may use besides the corpus. Expensive resources are built lazily, once."""

    seed: int = 0
    n_seeds: int = 5
    sample_size: int | None = None
    # half-sample replicates behind a cheap metric's interval (synthdiv.metrics.protocol)
    n_resamples: int = 200
    confidence: float = 0.95
    work_dir: Path = Path(".synthdiv/work")
    embeddings: Callable[[Corpus], np.ndarray] | None = None
    tracker: Any = None  # synthdiv.tracking.Tracker, for metrics that log per-iteration detail
    progress: Callable[[str, int, int], None] | None = None  # (task, done, total)
    resources: dict[str, Any] = field(default_factory=dict)  # shared lazily-built objects

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n_seeds)]


class Metric(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_more_diverse: ClassVar[bool]

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult: ...


def close_resources(resources: dict[Any, Any]) -> None:
    """Close every shared resource that can be closed (LLM runners, models) and forget them.
    Whoever builds a :class:`MetricContext` calls this when its metrics are done."""
    for value in resources.values():
        close = getattr(value, "close", None)
        if callable(close):
            close()
    resources.clear()


# name → metric class; filled by @register as the metric modules are imported (synthdiv.metrics
# imports every built-in one: look metrics up through that package, never here).
_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a metric available by name to configs and the CLI."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"metric {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and a Student-t interval over per-seed values (the paper's 'several seeds')."""
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if len(arr) < 2 or float(arr.std()) == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(arr) - 1) * stats.sem(arr))
    return mean, mean - half, mean + half
