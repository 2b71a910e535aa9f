"""The openai backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint, driven by
``ray.data.llm``'s HTTP request processor (so requests fan out over Ray actors).

Two adaptations to that processor, both measured on ray 2.60:

- **Rows carry the request body as JSON text.** Ray Data batches rows into Arrow blocks, which
  unify nested dicts across rows: a request without ``seed`` gains ``"seed": null``, an int seed
  becomes ``3.0``, and two different JSON schemas merge into one with ``null`` properties. So each
  row's ``payload`` is ``{"body": "<json>"}`` and the session we hand the processor through its
  ``session_factory`` hook posts that text verbatim (and enforces ``timeout_s``).
- **Per-row failures.** An endpoint's JSON error (HTTP 4xx/5xx with an OpenAI ``{"error": …}``
  body) becomes that row's ``ChatResponse.error``. But the processor *raises* for a timeout that
  outlives its resends, or a non-JSON error body, failing the whole batch of rows. We let Ray Data
  tolerate failed batches (``max_errored_blocks = -1`` during our run) and report each row of a
  lost batch as an error; the runner then retries it like any other transport error. The exact
  cause of a lost batch is in the Ray Data logs, not in the row.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, Self

from synthdiv.config import LLMConfig
from synthdiv.llm.base import ChatRequest, ChatResponse
from synthdiv.llm.raydata import require_ray, responses_from_rows, run_processor

# The processor's own resends cover 429/502/503/504 and timeouts, with exponential backoff;
# one resend smooths a blip, the runner's bounded retries handle the rest.
HTTP_RESENDS = 1
RESEND_BASE_WAIT_S = 0.5
# HTTP workers wait on the network: a small CPU reservation each keeps small machines schedulable.
HTTP_WORKER_NUM_CPUS = 0.25
LOST_BATCH_ERROR = (
    "openai: no response (timeout or non-JSON HTTP error failed its batch; see Ray Data logs)"
)


def chat_payload(request: ChatRequest, model: str) -> dict[str, Any]:
    """The OpenAI chat-completions body for ``request``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
        }
    return body


class VerbatimBodySession:
    """An aiohttp session for the HTTP stage that posts each row's pre-serialised body as is."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._session: Any = None

    async def __aenter__(self) -> Self:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    def post(self, url: str, *, data: str, headers: dict[str, str]) -> Any:
        # The stage serialised our row payload {"body": "<json>"}; send the inner text.
        return self._session.post(url, data=json.loads(data)["body"], headers=headers)


def response_row(row: dict[str, Any]) -> dict[str, Any]:
    """Postprocess: an HTTP response (or an endpoint's JSON error) → flat response fields."""
    reply = row.get("http_response") or {}
    out = {"rid": row["rid"], "text": "", "prompt_tokens": 0, "completion_tokens": 0,
           "finish_reason": "", "error": ""}  # fmt: skip
    choices = reply.get("choices") or []
    if reply.get("error") or not choices:
        detail = reply.get("error") or reply
        message = detail.get("message", detail) if isinstance(detail, dict) else detail
        out["error"] = f"openai: endpoint error: {str(message)[:500]}"
        return out
    usage = reply.get("usage") or {}
    out["text"] = (choices[0].get("message") or {}).get("content") or ""
    out["finish_reason"] = choices[0].get("finish_reason") or ""
    out["prompt_tokens"] = int(usage.get("prompt_tokens") or 0)
    out["completion_tokens"] = int(usage.get("completion_tokens") or 0)
    return out


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, batched through ray.data.llm."""

    name = "openai"
    # Each run() is one Ray Data pipeline (seconds to start): give it many requests at once.
    preferred_chunk_size = 1024

    def __init__(self, cfg: LLMConfig):
        if not cfg.base_url:
            raise ValueError(
                "llm.base_url is required for backend 'openai' (e.g. http://host:8000/v1)"
            )
        if not cfg.model:
            raise ValueError("llm.model (the served model name) is required for backend 'openai'")
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.model_id = f"openai:{cfg.model}@{cfg.base_url.rstrip('/')}"

    def processor_config(self) -> Any:
        from ray.data.llm import HttpRequestProcessorConfig

        key = os.environ.get(self.cfg.api_key_env, "")
        return HttpRequestProcessorConfig(
            url=self.url,
            headers={"Authorization": f"Bearer {key}"} if key else None,
            batch_size=self.cfg.batch_size,
            concurrency=self.cfg.concurrency,
            max_retries=HTTP_RESENDS,
            base_retry_wait_time_in_s=RESEND_BASE_WAIT_S,
            session_factory=functools.partial(VerbatimBodySession, self.cfg.timeout_s),
            http_request_stage={"num_cpus": HTTP_WORKER_NUM_CPUS},
        )

    def run(self, requests: Iterable[ChatRequest]) -> Iterator[ChatResponse]:
        from ray.data.llm import build_processor

        requests = list(requests)
        if not requests:
            return
        require_ray(self.name)  # before build_processor, which would start a private Ray
        rows = [
            {"rid": r.id, "payload": {"body": json.dumps(chat_payload(r, self.cfg.model or ""))}}
            for r in requests
        ]
        processor = build_processor(
            self.processor_config(),
            postprocess=response_row,
            postprocess_map_kwargs={"num_cpus": HTTP_WORKER_NUM_CPUS},
        )
        answered = run_processor(processor, rows)
        yield from responses_from_rows(answered, requests, _to_response, LOST_BATCH_ERROR)

    def close(self) -> None:
        """Nothing to release: each run's HTTP workers end with its dataset."""


def _to_response(row: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        id=row["rid"],
        text=row["text"] or "",
        prompt_tokens=int(row["prompt_tokens"] or 0),
        completion_tokens=int(row["completion_tokens"] or 0),
        finish_reason=row["finish_reason"] or "",
        error=row["error"] or None,
    )
