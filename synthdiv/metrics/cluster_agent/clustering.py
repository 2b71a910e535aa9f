"""Stage B: N clustering iterations, self-verification, and the per-iteration score.

Each iteration clusters K random samples; the answer must be a partition of 1..K (validated, and
retried by the runner otherwise). Clusters of two or more members are then verified by a second
call; singletons are valid by definition. Rejected clusters are split into singletons or dropped
with their samples (``invalid_cluster_rule``), and the iteration scores D_i = C_i² / n_i
(docs/method.md §1: S_i = n_i / C_i is the mean cluster size, so D_i = C_i / S_i lies in [1/K, K]).
An iteration whose clustering or verification still fails after the retries is recorded as
failed and left out of the mean; it never stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from synthdiv.llm.base import ChatRequest, parse_json_text
from synthdiv.llm.runner import LLMRunner
from synthdiv.metrics.cluster_agent.config import ClusterAgentParams
from synthdiv.metrics.cluster_agent.criteria import Criteria, draw_samples, request_seed
from synthdiv.metrics.cluster_agent.prompts import load_template
from synthdiv.metrics.cluster_agent.verification import (  # noqa: F401 — re-exported
    FAILED_VERIFICATION,
    verification_schema,
    verification_validator,
    verify,
)

OK = "ok"
FAILED_CLUSTERING = "failed_clustering"
EMPTY_AFTER_DROP = "empty_after_drop"


@dataclass
class Iteration:
    """What one clustering iteration produced (one JSONL row of the artifact)."""

    index: int
    sample_ids: list[str]
    status: str = OK
    error: str | None = None
    clusters: list[list[int]] = field(default_factory=list)  # 1-based member numbers
    valid: list[bool] = field(default_factory=list)  # per cluster, after verification
    C: int = 0  # clusters counted after the invalid rule
    n: int = 0  # samples counted after the invalid rule
    S: float = 0.0  # mean cluster size n / C
    D: float = 0.0  # C² / n
    # C² / n of the partition as the clusterer answered it, before verification: what
    # ``verify: false`` would score on the same answer (the paper's verification ablation).
    D_unverified: float | None = None
    repaired: bool = False  # partition repaired after the retries (``repair_partitions``)
    answer: dict[str, Any] | None = None  # the clustering JSON (distinctness, metadata, scores)
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def row(self) -> dict[str, Any]:
        """Everything, including the LLM's answers (the JSONL artifact)."""
        return asdict(self)

    def compact(self) -> dict[str, Any]:
        """The numbers only (for ``MetricResult.details``; N can be thousands)."""
        n_valid = sum(self.valid)
        return {
            "index": self.index, "status": self.status, "C": self.C, "n": self.n, "S": self.S,
            "D": self.D, "D_unverified": self.D_unverified, "repaired": self.repaired,
            "valid": n_valid, "invalid": len(self.valid) - n_valid,
            "answered": len(self.clusters),  # clusters as answered (1 = all in one cluster)
        }  # fmt: skip


# -- partition and score -------------------------------------------------------------------------
def validate_partition(clusters: Any, K: int) -> str | None:
    """None if ``clusters`` (a list of member lists) places each of 1..K exactly once, else why."""
    if not isinstance(clusters, list) or not clusters:
        return "no clusters"
    seen: set[int] = set()
    for c, members in enumerate(clusters, start=1):
        if not isinstance(members, list) or not members:
            return f"cluster {c} has no members"
        for m in members:
            if isinstance(m, bool) or not isinstance(m, int):
                return f"cluster {c}: member {m!r} is not an integer"
            if not 1 <= m <= K:
                return f"cluster {c}: index {m} is outside 1..{K}"
            if m in seen:
                return f"index {m} is placed twice"
            seen.add(m)
    missing = sorted(set(range(1, K + 1)) - seen)
    return f"indices not placed: {missing}" if missing else None


def repair_partition(clusters: Any, K: int) -> list[list[int]] | None:
    """Last resort for an answer that stayed invalid after the retries: keep each in-range integer
    index at its first occurrence, drop empty clusters, and place every missing index as a
    singleton. None when there is no list of member lists to repair."""
    if not isinstance(clusters, list):
        return None
    seen: set[int] = set()
    repaired: list[list[int]] = []
    for members in clusters:
        if not isinstance(members, list):
            continue
        kept = []
        for m in members:
            if isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= K and m not in seen:
                seen.add(m)
                kept.append(m)
        if kept:
            repaired.append(kept)
    repaired += [[m] for m in range(1, K + 1) if m not in seen]
    return repaired


def apply_invalid_rule(sizes: Sequence[int], valid: Sequence[bool], rule: str) -> tuple[int, int]:
    """(C, n) after handling rejected clusters: 'split' → singletons, 'drop' → removed."""
    kept = [s for s, ok in zip(sizes, valid, strict=True) if ok]
    rejected = [s for s, ok in zip(sizes, valid, strict=True) if not ok]
    if rule == "split":
        return len(kept) + sum(rejected), sum(sizes)
    if rule == "drop":
        return len(kept), sum(kept)
    raise ValueError(f"unknown invalid_cluster_rule {rule!r}; use 'split' or 'drop'")


def iteration_score(C: int, n: int) -> float:
    """D_i = C / S with S = n / C: C² / n (in [1/K, K] for any partition of n ≤ K samples)."""
    return C * C / n


# -- schemas and validators ----------------------------------------------------------------------
def clustering_schema(criteria: Criteria, K: int, max_chars: int) -> dict[str, Any]:
    """Constrains an embedded model's grammar: member numbers are an enum of 1..K (llama.cpp's
    converter ignores minimum/maximum), every criterion is a required key, text is bounded."""
    text = {"type": "string", "maxLength": max_chars}
    scored = {
        "type": "object",
        "properties": {"reasoning": text, "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    }
    cluster = {
        "type": "object",
        "properties": {
            "members": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(1, K + 1))},
                "minItems": 1,
                "maxItems": K,
            },
            "distinct_because": text,
            "metadata": _fixed_keys({c.name: text for c in criteria.metadata}),
            "scores": _fixed_keys({c.name: scored for c in criteria.metrics}),
        },
        "required": ["members", "distinct_because", "metadata", "scores"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "clusters": {"type": "array", "items": cluster, "minItems": 1, "maxItems": K}
        },
        "required": ["clusters"],
        "additionalProperties": False,
    }


def _fixed_keys(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def clustering_validator(K: int, metric_names: Sequence[str]):
    """The runner's check of a clustering answer: a partition of 1..K. The 1-5 scores are asked
    for by the schema but not required here: D uses only the partition, so a missing score must
    not fail (or retry) the iteration; the metric counts them (``missing_scores``)."""

    def validate(parsed: Any) -> str | None:
        if not isinstance(parsed, dict) or not isinstance(parsed.get("clusters"), list):
            return "answer has no 'clusters' list"
        clusters = parsed["clusters"]
        if not all(isinstance(c, dict) for c in clusters):
            return "a cluster is not an object"
        return validate_partition([c.get("members") for c in clusters], K)

    return validate


# -- the stage -----------------------------------------------------------------------------------
def run_iterations(
    ids: Sequence[str],
    texts: Sequence[str],
    criteria: Criteria,
    params: ClusterAgentParams,
    runner: LLMRunner,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Iteration]:
    """N iterations: all clustering calls in one batch, then all verification calls."""
    K, chars = params.K, params.sample_char_budget()
    draws = draw_samples(len(texts), K, params.N, seed, "clustering")
    iterations = [Iteration(i, [ids[j] for j in draw]) for i, draw in enumerate(draws)]
    template = load_template("cluster", params.prompt_version)
    # One quoting for the clustering and the verification prompts of an iteration (same version).
    samples = [template.quote_documents([texts[j] for j in draw], chars) for draw in draws]
    schema = clustering_schema(criteria, K, params.max_reason_chars)
    criteria_text = criteria.as_prompt_text()
    requests = [
        ChatRequest(
            id=f"cluster-s{seed}-{it.index}",
            messages=template.messages(K=K, criteria=criteria_text, samples=samples[it.index]),
            json_schema=schema,
            temperature=params.temperature,
            max_tokens=params.max_tokens.clustering,
            seed=request_seed(seed, "cluster", it.index),
            prompt_id=template.ref,
        )
        for it in iterations
    ]
    validate = clustering_validator(K, [c.name for c in criteria.metrics])
    done = [0]

    def advance(n: int) -> None:  # the runner reports each finished chunk
        done[0] += n
        if progress is not None:
            progress("cluster_agent clustering", done[0], len(requests))

    for it, response in zip(
        iterations, runner.run(requests, validate=validate, on_done=advance), strict=True
    ):
        if response.ok:
            it.answer = response.parsed
            it.clusters = [list(c["members"]) for c in response.parsed["clusters"]]
        elif params.repair_partitions and (repaired := _repaired_answer(response.text, K)):
            it.answer, it.clusters, it.repaired = repaired
        else:
            it.status, it.error = FAILED_CLUSTERING, response.error
            continue
        it.valid = [True] * len(it.clusters)
        it.D_unverified = iteration_score(len(it.clusters), sum(map(len, it.clusters)))
    if params.verify:
        verify(iterations, samples, criteria_text, params, runner, seed)
    for it in iterations:
        if it.ok:
            score_iteration(it, params.invalid_cluster_rule)
    return iterations


def _repaired_answer(text: str, K: int) -> tuple[dict[str, Any], list[list[int]], bool] | None:
    """(answer, repaired clusters, True) from the last invalid answer's text, if it parses."""
    try:
        parsed = parse_json_text(text)
    except (ValueError, TypeError):
        return None
    found = parsed.get("clusters") if isinstance(parsed, dict) else None
    if not isinstance(found, list):
        return None
    members = [c.get("members") if isinstance(c, dict) else None for c in found]
    clusters = repair_partition(members, K)
    if not clusters:
        return None
    return {"clusters": [{"members": c} for c in clusters], "repaired_from": parsed}, clusters, True


def score_iteration(it: Iteration, rule: str) -> None:
    it.C, it.n = apply_invalid_rule([len(c) for c in it.clusters], it.valid, rule)
    if it.n == 0:  # 'drop' rejected every cluster: nothing left to score
        it.status, it.error = EMPTY_AFTER_DROP, "every cluster was rejected and dropped"
        return
    it.S = it.n / it.C
    it.D = iteration_score(it.C, it.n)
