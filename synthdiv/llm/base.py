"""The one chat interface every LLM caller uses (cluster-agent, generation, taxonomy building).

Backends (embedded, vllm, openai) only turn requests into responses. Caching, JSON validation,
bounded retries and accounting wrap any backend from outside (see :mod:`synthdiv.llm.runner`),
so callers never know which backend answered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class ChatRequest(BaseModel):
    """One LLM call. Put fixed text first in ``messages`` so engines can reuse the prefix cache."""

    id: str
    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    prompt_id: str = Field("", description="template id@version, for accounting and lineage")

    def cache_key(self, model: str) -> str:
        """Hash of everything that determines the answer (not the caller's id)."""
        blob = json.dumps(
            {
                "model": model,
                "messages": self.messages,
                "schema": self.json_schema,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "max_tokens": self.max_tokens,
                "seed": self.seed,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


class ChatResponse(BaseModel):
    id: str
    text: str = ""
    parsed: dict[str, Any] | list[Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None
    cached: bool = False
    attempts: int = 1
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class ChatBackend(Protocol):
    """embedded | vllm | openai, chosen by config. Yields one response per request, any order."""

    name: str
    model_id: str

    def run(self, requests: Iterable[ChatRequest]) -> Iterator[ChatResponse]: ...

    def close(self) -> None: ...


def parse_json_text(text: str) -> Any:
    """Parse a model's JSON answer, tolerating a fenced block or prose around one object/array."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text.split("\n", 1)[1] if "\n" in text else text
        text = text.rsplit("```", 1)[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON object in the answer")
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    if end <= start:
        raise ValueError("unterminated JSON in the answer")
    return json.loads(text[start : end + 1])
