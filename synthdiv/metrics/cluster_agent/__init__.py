"""The LLM cluster-agent diversity metric (docs/method.md §1), registered as ``cluster_agent``.

- :mod:`.config` — parameters (CPU-small defaults; the paper's in ``PAPER_DEFAULTS``)
- :mod:`.prompts` — versioned prompt templates in ``synthdiv/prompts/cluster_agent``
- :mod:`.criteria` — Stage A: propose, merge and phrase the clustering criteria
- :mod:`.clustering` — Stage B: clustering, partition validation, D_i
- :mod:`.verification` — Stage B step 5: self-verification of the clusters
- :mod:`.score` — the metric: seeds, D ± CI, records and tracking
"""

from synthdiv.metrics.base import close_resources
from synthdiv.metrics.cluster_agent.config import PAPER_DEFAULTS, ClusterAgentParams
from synthdiv.metrics.cluster_agent.score import ClusterAgent

__all__ = ["PAPER_DEFAULTS", "ClusterAgent", "ClusterAgentParams", "close_resources"]
