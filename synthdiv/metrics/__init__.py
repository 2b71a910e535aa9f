"""Diversity metrics. Importing this package registers every built-in metric; look metrics up
through it (:func:`available`, :func:`metric_class`, :func:`create`), so the lookup always sees
them all."""

from typing import Any

from synthdiv.metrics import cluster_agent, embedding, lexical, model_based  # noqa: F401
from synthdiv.metrics.base import _REGISTRY, Metric, MetricContext, MetricResult, register

__all__ = [
    "Metric",
    "MetricContext",
    "MetricResult",
    "available",
    "check_selection",
    "create",
    "metric_class",
    "register",
]


def available() -> list[str]:
    return sorted(_REGISTRY)


def metric_class(name: str) -> type[Metric]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **params: Any) -> Metric:
    return metric_class(name)(**params)


def check_selection(selection: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A config's ``metrics:`` block (name → params): unknown names and bad params fail at load
    time with a clear message, not after hours of work."""
    if not selection:
        raise ValueError("select at least one metric")
    for name, params in selection.items():
        try:
            create(name, **(params or {}))
        except KeyError as err:  # pydantic only turns ValueError into a config error
            raise ValueError(err.args[0]) from None
    return selection
