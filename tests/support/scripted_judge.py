"""A scripted judge for the cluster-agent tests: a deterministic stand-in for an LLM, so each test
can produce exactly the answer it needs (a malformed partition, a rejected cluster, …). It
clusters documents by their first word, which makes it a perfect oracle on the topic-labelled
texts of :func:`topic_corpus`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from synthdiv.corpus import Corpus
from synthdiv.llm.base import ChatRequest, ChatResponse
from synthdiv.llm.runner import LLMRunner, ResponseCache
from synthdiv.metrics import MetricContext, create
from synthdiv.metrics.cluster_agent.score import runner_key

TOPICS = ["astronomy", "baking", "chess", "dentistry", "economics", "falconry"]


class ScriptedBackend:
    name = "scripted"
    model_id = "scripted-judge"

    def __init__(self, answer: Callable[[ChatRequest], str]):
        self.answer = answer
        self.requests: list[ChatRequest] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    def run(self, requests: Iterable[ChatRequest]) -> Iterator[ChatResponse]:
        for r in requests:
            self.requests.append(r)
            yield ChatResponse(id=r.id, text=self.answer(r), prompt_tokens=10, completion_tokens=5)

    def close(self) -> None:
        pass


def template_name(request: ChatRequest) -> str:
    return request.prompt_id.split("@")[0].split("/")[1]


def samples_of(request: ChatRequest) -> dict[int, str]:
    """Document number → first word, parsed back from the quoted samples of a prompt: v2's
    ``<document id="N">`` blocks or v1's ``[N] text`` lines."""
    text = request.messages[1]["content"]
    found = re.findall(r'^<document id="(\d+)">\n(\w+)', text, re.MULTILINE)
    return {int(n): w for n, w in found or re.findall(r"^\[(\d+)\] (\w+)", text, re.MULTILINE)}


def criteria_answer(request: ChatRequest) -> dict:
    names = {"metadata": ["Topic", "genre", "audience"], "metrics": ["depth", "clarity", "rigour"]}
    return {k: [{"name": n, "definition": f"the {n}"} for n in v] for k, v in names.items()}


def oracle_clusters(request: ChatRequest) -> dict:
    """Groups documents by their first word (their topic), with the keys the schema demands."""
    groups: dict[str, list[int]] = {}
    for number, word in sorted(samples_of(request).items()):
        groups.setdefault(word, []).append(number)
    props = request.json_schema["properties"]["clusters"]["items"]["properties"]
    return {
        "clusters": [
            {
                "members": members,
                "distinct_because": f"all about {word}",
                "metadata": {k: word for k in props["metadata"]["properties"]},
                "scores": {
                    k: {"reasoning": "ok", "score": 3} for k in props["scores"]["properties"]
                },
            }
            for word, members in groups.items()
        ]
    }


def verdicts(request: ChatRequest, valid: int = 1) -> dict:
    n = request.json_schema["properties"]["verdicts"]["minItems"]
    return {
        "verdicts": [{"cluster": i, "reasoning": "fine", "valid": valid} for i in range(1, n + 1)]
    }


def oracle(request: ChatRequest, *, cluster=oracle_clusters, verify=verdicts) -> str:
    name = template_name(request)
    if name == "criteria":
        return json.dumps(criteria_answer(request))
    if name == "merge":
        k = request.json_schema["properties"]["items"]["minItems"]
        names = re.findall(r"^- (\w+) \(x", request.messages[1]["content"], re.MULTILINE)[:k]
        return json.dumps({"items": [{"name": n, "definition": f"merged {n}"} for n in names]})
    if name == "guidance":
        return json.dumps({"guidance": "Put documents with the same value together."})
    if name == "cluster":
        return json.dumps(cluster(request))
    if name == "verify":
        return json.dumps(verify(request))
    raise AssertionError(f"unexpected prompt {request.prompt_id}")


def topic_corpus(n_topics: int, per_topic: int = 6) -> Corpus:
    texts = [
        f"{t} note {i}: a few words on {t}." for t in TOPICS[:n_topics] for i in range(per_topic)
    ]
    return Corpus(ids=[f"d{i}" for i in range(len(texts))], texts=texts)


def make_runner(answer: Callable[[ChatRequest], str], cache: Path | None = None, retries: int = 2):
    backend = ScriptedBackend(answer)
    return backend, LLMRunner(backend, ResponseCache(cache) if cache else None, max_retries=retries)


def compute(corpus: Corpus, runner: LLMRunner, tmp_path: Path, **params):
    metric = create("cluster_agent", **({"K": 4, "N": 6, "M": 2, "J": 3, "k": 2} | params))
    ctx = MetricContext(work_dir=tmp_path / "work")
    ctx.resources[runner_key(metric.params.llm)] = runner
    return metric.compute(corpus, ctx)
