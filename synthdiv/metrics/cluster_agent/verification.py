"""Stage B step 5: self-verification of the clusters an iteration answered (docs/method.md §1).

Each cluster of two or more members is reviewed by a second call (``valid`` 0/1 with a reason);
singletons are valid by definition. A verification that still fails validation after the runner's
retries marks the iteration ``failed_verification``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from synthdiv.llm.base import ChatRequest
from synthdiv.llm.runner import LLMRunner
from synthdiv.metrics.cluster_agent.config import ClusterAgentParams
from synthdiv.metrics.cluster_agent.criteria import request_seed
from synthdiv.metrics.cluster_agent.prompts import load_template

if TYPE_CHECKING:  # clustering imports this module
    from synthdiv.metrics.cluster_agent.clustering import Iteration

FAILED_VERIFICATION = "failed_verification"


def verification_schema(n_clusters: int, max_chars: int) -> dict[str, Any]:
    verdict = {
        "type": "object",
        "properties": {
            "cluster": {"type": "integer", "enum": list(range(1, n_clusters + 1))},
            "reasoning": {"type": "string", "maxLength": max_chars},
            "valid": {"type": "integer", "enum": [0, 1]},
        },
        "required": ["cluster", "reasoning", "valid"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "verdicts": {
                "type": "array",
                "items": verdict,
                "minItems": n_clusters,
                "maxItems": n_clusters,
            }
        },
        "required": ["verdicts"],
        "additionalProperties": False,
    }


def verification_validator(n_clusters: int):
    """One verdict per reviewed cluster, numbered 1..n once each, valid ∈ {0, 1}."""

    def validate(parsed: Any) -> str | None:
        verdicts = parsed.get("verdicts") if isinstance(parsed, dict) else None
        if not isinstance(verdicts, list):
            return "answer has no 'verdicts' list"
        if len(verdicts) != n_clusters:
            return f"{len(verdicts)} verdicts for {n_clusters} clusters"
        numbers = [v.get("cluster") if isinstance(v, dict) else None for v in verdicts]
        if sorted(n for n in numbers if isinstance(n, int)) != list(range(1, n_clusters + 1)):
            return f"verdict cluster numbers {numbers} are not 1..{n_clusters} once each"
        for v in verdicts:
            if v.get("valid") not in (0, 1):  # True/False compare equal to 1/0 and are accepted
                return f"cluster {v['cluster']}: 'valid' is {v.get('valid')!r}, not 0 or 1"
        return None

    return validate


def verify(
    iterations: list[Iteration],
    samples: list[str],
    criteria_text: str,
    params: ClusterAgentParams,
    runner: LLMRunner,
    seed: int,
) -> None:
    """Step 5: review every multi-member cluster; singletons are valid without a call.

    The runner's validator sees only the answer, and the expected verdict count differs between
    iterations, so requests are grouped by that count: at most K/2 batches.
    """
    template = load_template("verify", params.prompt_version)
    groups: dict[int, list[tuple[Iteration, list[int]]]] = defaultdict(list)
    for it in iterations:
        multi = [c for c, members in enumerate(it.clusters) if len(members) > 1]
        if it.ok and multi:
            groups[len(multi)].append((it, multi))
    for n_reviewed, group in sorted(groups.items()):
        requests = [
            ChatRequest(
                id=f"verify-s{seed}-{it.index}",
                messages=template.messages(
                    criteria=criteria_text,
                    samples=samples[it.index],
                    clusters=_clusters_text(it, multi),
                ),
                json_schema=verification_schema(n_reviewed, params.max_reason_chars),
                temperature=params.temperature,
                max_tokens=params.max_tokens.verification,
                seed=request_seed(seed, "verify", it.index),
                prompt_id=template.ref,
            )
            for it, multi in group
        ]
        responses = runner.run(requests, validate=verification_validator(n_reviewed))
        for (it, multi), response in zip(group, responses, strict=True):
            if not response.ok:
                it.status, it.error = FAILED_VERIFICATION, response.error
                continue
            it.verdicts = response.parsed["verdicts"]
            for verdict in it.verdicts:
                it.valid[multi[verdict["cluster"] - 1]] = bool(verdict["valid"])


def _clusters_text(it: Iteration, multi: list[int]) -> str:
    clusters = (it.answer or {}).get("clusters", [])
    lines = []
    for number, c in enumerate(multi, start=1):
        members = ", ".join(str(m) for m in it.clusters[c])
        reason = clusters[c].get("distinct_because", "") if c < len(clusters) else ""
        lines.append(f"Cluster {number}: documents {members}. Stated reason: {reason}")
    return "\n".join(lines)
