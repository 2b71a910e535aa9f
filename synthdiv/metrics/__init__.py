"""Diversity metrics. Importing this package registers every built-in metric."""

from synthdiv.metrics import cluster_agent, embedding, lexical, model_based  # noqa: F401
from synthdiv.metrics.base import Metric, MetricContext, MetricResult, available, create, register

__all__ = ["Metric", "MetricContext", "MetricResult", "available", "create", "register"]
