"""Stage A: the criteria the cluster-agent clusters by (docs/method.md §1, steps 1–3).

1. M calls, each on J random samples → 3–5 metadata and 3–5 metrics with definitions.
2. Answers merged by (normalised) name; one merge call per kind keeps k refined items.
3. One call per kept item turns it into one sentence of clustering guidance.

Every call goes through the :class:`LLMRunner` (cache, validation, bounded retries). A failed
merge falls back to the k most frequently proposed names, a failed guidance call to the item's
definition; both are counted in :attr:`Criteria.notes`, never silent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from synthdiv.llm.base import ChatRequest
from synthdiv.llm.runner import LLMRunner
from synthdiv.metrics.cluster_agent.config import MAX_NAME_CHARS, ClusterAgentParams, slugify
from synthdiv.metrics.cluster_agent.prompts import load_template, truncate

Kind = Literal["metadata", "metric"]
KINDS: tuple[Kind, ...] = ("metadata", "metric")
ANSWER_KEYS = {"metadata": "metadata", "metric": "metrics"}
KIND_TEXT = {
    "metadata": (
        "metadata",
        (
            "Metadata are descriptive attributes of a document (possibly hierarchical, like a "
            "subject domain), whose values are short labels."
        ),
    ),
    "metric": (
        "metrics",
        "Metrics are attributes of a document scored from 1 (low) to 5 (high) with a rubric.",
    ),
}
MIN_ITEMS, MAX_ITEMS = 3, 5
# The merge prompt lists at most this many candidate names (most proposed first) and this many
# definitions per name: M=100 rounds propose hundreds of names, which would overflow the context.
MAX_MERGE_CANDIDATES = 40
MAX_DEFINITIONS_SHOWN = 3


@dataclass
class Criterion:
    kind: Kind
    name: str
    definition: str
    guidance: str = ""

    def line(self) -> str:
        label = "metadata" if self.kind == "metadata" else "metric, scored 1-5"
        return f"{self.name} ({label}): {self.guidance or self.definition}"


@dataclass
class Criteria:
    metadata: list[Criterion] = field(default_factory=list)
    metrics: list[Criterion] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def interleaved(self) -> list[Criterion]:
        """metadata_1, metric_1, metadata_2, … as the paper presents them to the clusterer."""
        out: list[Criterion] = []
        for i in range(max(len(self.metadata), len(self.metrics))):
            out.extend(group[i] for group in (self.metadata, self.metrics) if i < len(group))
        return out

    def as_prompt_text(self) -> str:
        items = self.interleaved()
        if not items:  # the "without criteria generation" ablation
            return "(none given: judge similarity by topic, purpose, genre and style yourself)"
        return "\n".join(f"{i}. {c.line()}" for i, c in enumerate(items, start=1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": [asdict(c) for c in self.metadata],
            "metrics": [asdict(c) for c in self.metrics],
            "notes": self.notes,
        }


def request_seed(seed: int, stage: str, index: int) -> int:
    """A stable per-request seed (same corpus seed → same requests → cache hits on rerun)."""
    digest = hashlib.sha256(f"{seed}:{stage}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def draw_samples(n_docs: int, size: int, rounds: int, seed: int, stage: str) -> list[list[int]]:
    """``rounds`` draws of ``size`` distinct document indices in random order, reproducible from
    ``seed``. The order is the order the LLM reads them in: it must not follow the corpus, since
    a corpus grouped by topic would put similar documents next to each other in every prompt
    (an order bias in what the model proposes and how it clusters)."""
    rng = np.random.default_rng([seed, int.from_bytes(stage.encode()[:4], "big")])
    return [
        rng.choice(n_docs, size=size, replace=False, shuffle=True).tolist() for _ in range(rounds)
    ]


# -- schemas and validators ----------------------------------------------------------------------
def _items_schema(max_chars: int, min_items: int, max_items: int) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            "definition": {"type": "string", "minLength": 1, "maxLength": max_chars},
        },
        "required": ["name", "definition"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": item, "minItems": min_items, "maxItems": max_items}


def criteria_schema(max_chars: int) -> dict[str, Any]:
    items = _items_schema(max_chars, MIN_ITEMS, MAX_ITEMS)
    return {
        "type": "object",
        "properties": {"metadata": items, "metrics": items},
        "required": ["metadata", "metrics"],
        "additionalProperties": False,
    }


def _items_problem(items: Any, what: str, min_items: int, max_items: int) -> str | None:
    if not isinstance(items, list):
        return f"{what} is not a list"
    if not min_items <= len(items) <= max_items:
        return f"{what} has {len(items)} items, expected {min_items}-{max_items}"
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            return f"{what} item {i} is not an object"
        name, definition = item.get("name"), item.get("definition")
        if not isinstance(name, str) or not slugify(name):
            return f"{what} item {i} has no usable name"
        if not isinstance(definition, str) or not definition.strip():
            return f"{what} item {i} has no definition"
    return None


def validate_criteria_answer(parsed: Any) -> str | None:
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    for key in ("metadata", "metrics"):
        problem = _items_problem(parsed.get(key), key, MIN_ITEMS, MAX_ITEMS)
        if problem:
            return problem
    return None


def merge_schema(k: int, max_chars: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": _items_schema(max_chars, k, k)},
        "required": ["items"],
        "additionalProperties": False,
    }


def merge_validator(k: int):
    def validate(parsed: Any) -> str | None:
        if not isinstance(parsed, dict):
            return "answer is not a JSON object"
        items = parsed.get("items")
        problem = _items_problem(items, "items", k, k)
        if problem:
            return problem
        names = [slugify(item["name"]) for item in items]
        if len(set(names)) != len(names):
            return f"duplicate item names: {names}"
        return None

    return validate


def guidance_schema(max_chars: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"guidance": {"type": "string", "minLength": 1, "maxLength": max_chars}},
        "required": ["guidance"],
        "additionalProperties": False,
    }


def validate_guidance(parsed: Any) -> str | None:
    if not isinstance(parsed, dict) or not isinstance(parsed.get("guidance"), str):
        return "answer has no 'guidance' string"
    return None if parsed["guidance"].strip() else "guidance is empty"


# -- merging -------------------------------------------------------------------------------------
CandidatePool = dict[str, list[str]]  # normalised name → definitions, in first-proposed order


def merge_by_name(answers: Sequence[dict[str, Any]]) -> dict[Kind, CandidatePool]:
    """Pool every valid answer's items by normalised name, per kind (step 2's input)."""
    pools: dict[Kind, CandidatePool] = {kind: {} for kind in KINDS}
    for answer in answers:
        for kind in KINDS:
            for item in answer[ANSWER_KEYS[kind]]:
                pools[kind].setdefault(slugify(item["name"]), []).append(item["definition"].strip())
    return pools


def ranked_names(pool: CandidatePool) -> list[str]:
    """Most proposed first; ties keep first-proposed order (dicts preserve insertion order)."""
    order = {name: i for i, name in enumerate(pool)}
    return sorted(pool, key=lambda name: (-len(pool[name]), order[name]))


def top_k(pool: CandidatePool, kind: Kind, k: int) -> list[Criterion]:
    """The k most proposed names with their first definition (no LLM needed)."""
    return [Criterion(kind, name, pool[name][0]) for name in ranked_names(pool)[:k]]


def candidates_text(pool: CandidatePool) -> str:
    lines = []
    for name in ranked_names(pool)[:MAX_MERGE_CANDIDATES]:
        distinct = list(dict.fromkeys(pool[name]))[:MAX_DEFINITIONS_SHOWN]
        shown = " | ".join(distinct)
        lines.append(f"- {name} (x{len(pool[name])}): {shown}")
    return "\n".join(lines)


# -- the stage -----------------------------------------------------------------------------------
def generate_criteria(
    texts: Sequence[str], params: ClusterAgentParams, runner: LLMRunner, seed: int
) -> Criteria:
    """Run steps 1–3 on ``texts`` (the corpus) and return the kept, guided criteria."""
    if not params.generate_criteria:
        return Criteria(notes={"generated": False})
    chars = params.sample_char_budget()
    version = params.prompt_version
    proposals = propose(texts, params, runner, seed, chars)
    ok = [r.parsed for r in proposals if r.ok]
    notes: dict[str, Any] = {
        "generated": True,
        "rounds": len(proposals),
        "rounds_failed": len(proposals) - len(ok),
        "merge_fallbacks": [],
        "guidance_fallbacks": 0,
    }
    if not ok:
        first = next((r.error for r in proposals if r.error), "no answer")
        raise RuntimeError(f"cluster_agent: all {len(proposals)} criteria calls failed ({first})")
    pools = merge_by_name(ok)
    notes["candidates"] = {kind: {n: len(d) for n, d in pools[kind].items()} for kind in KINDS}
    kept = {kind: refine(pools[kind], kind, params, runner, seed, notes) for kind in KINDS}
    criteria = Criteria(kept["metadata"], kept["metric"], notes)
    add_guidance(criteria.interleaved(), params, runner, seed, notes)
    notes["prompts"] = {
        name: load_template(name, version).ref for name in ("criteria", "merge", "guidance")
    }
    return criteria


def propose(
    texts: Sequence[str], params: ClusterAgentParams, runner: LLMRunner, seed: int, chars: int
):
    template = load_template("criteria", params.prompt_version)
    schema = criteria_schema(params.max_definition_chars)
    requests = [
        ChatRequest(
            id=f"criteria-s{seed}-{m}",
            messages=template.messages(
                samples=template.quote_documents([texts[i] for i in draw], chars)
            ),
            json_schema=schema,
            temperature=params.temperature,
            max_tokens=params.max_tokens.criteria,
            seed=request_seed(seed, "criteria", m),
            prompt_id=template.ref,
        )
        for m, draw in enumerate(draw_samples(len(texts), params.J, params.M, seed, "criteria"))
    ]
    return runner.run(requests, validate=validate_criteria_answer)


def refine(
    pool: CandidatePool,
    kind: Kind,
    params: ClusterAgentParams,
    runner: LLMRunner,
    seed: int,
    notes: dict[str, Any],
) -> list[Criterion]:
    """Step 2 for one kind: k refined items (no call needed when at most k names were proposed)."""
    k = params.k
    if len(pool) <= k:
        return top_k(pool, kind, k)
    template = load_template("merge", params.prompt_version)
    plural, explanation = KIND_TEXT[kind]
    request = ChatRequest(
        id=f"merge-s{seed}-{kind}",
        messages=template.messages(
            kind_plural=plural, kind_explanation=explanation, k=k, candidates=candidates_text(pool)
        ),
        json_schema=merge_schema(k, params.max_definition_chars),
        temperature=params.temperature,
        max_tokens=params.max_tokens.merge,
        seed=request_seed(seed, f"merge-{kind}", 0),
        prompt_id=template.ref,
    )
    (response,) = runner.run([request], validate=merge_validator(k))
    if not response.ok:
        notes["merge_fallbacks"].append({"kind": kind, "error": response.error})
        return top_k(pool, kind, k)
    return [
        Criterion(kind, slugify(item["name"]), item["definition"].strip())
        for item in response.parsed["items"]
    ]


def add_guidance(
    items: list[Criterion],
    params: ClusterAgentParams,
    runner: LLMRunner,
    seed: int,
    notes: dict[str, Any],
) -> None:
    """Step 3: one sentence of guidance per kept item, all in one batch (fills ``guidance``)."""
    template = load_template("guidance", params.prompt_version)
    requests = [
        ChatRequest(
            id=f"guidance-s{seed}-{i}",
            messages=template.messages(kind=c.kind, name=c.name, definition=c.definition),
            json_schema=guidance_schema(params.max_reason_chars),
            temperature=params.temperature,
            max_tokens=params.max_tokens.guidance,
            seed=request_seed(seed, "guidance", i),
            prompt_id=template.ref,
        )
        for i, c in enumerate(items)
    ]
    for criterion, response in zip(
        items, runner.run(requests, validate=validate_guidance), strict=True
    ):
        if response.ok:
            criterion.guidance = " ".join(response.parsed["guidance"].split())
        else:  # bounded like guidance: the clustering prompt's budget assumes guidance lengths
            criterion.guidance = truncate(criterion.definition, params.max_reason_chars)
            notes["guidance_fallbacks"] += 1
