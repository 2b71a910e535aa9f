"""LLM backends: embedded (llama.cpp GGUF), vllm (ray.data.llm), openai (HTTP).

Callers build a runner from config and never branch on the backend::

    runner = build_runner(cfg.llm, cache_dir=f"{storage}/llm_cache")
    answers = runner.run([chat_request(cfg.llm, "doc-1", messages, json_schema=schema)])
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from synthdiv.config import LLMConfig
from synthdiv.llm.base import ChatBackend, ChatRequest, ChatResponse
from synthdiv.llm.runner import LLMRunner, LLMUsage, ResponseCache
from synthdiv.shards import is_remote, local_path

__all__ = [
    "ChatBackend",
    "ChatRequest",
    "ChatResponse",
    "LLMRunner",
    "LLMUsage",
    "ResponseCache",
    "build_backend",
    "build_runner",
    "chat_request",
    "resolve_cache_path",
]

log = logging.getLogger(__name__)
CACHE_FILE = "responses.sqlite"


def build_backend(cfg: LLMConfig) -> ChatBackend:
    """The backend ``cfg.backend`` names. Bad settings (missing model, no base_url) fail here."""
    if cfg.backend == "embedded":
        from synthdiv.llm.embedded import EmbeddedBackend

        return EmbeddedBackend(cfg)
    if cfg.backend == "openai":
        from synthdiv.llm.openai_http import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "vllm":
        from synthdiv.llm.vllm_engine import VLLMBackend

        return VLLMBackend(cfg)
    raise ValueError(f"unknown llm backend: {cfg.backend!r}")  # unreachable: config is a Literal


def resolve_cache_path(cfg: LLMConfig, cache_dir: str | None) -> Path | None:
    """Where the response cache lives: ``cfg.cache_dir``, else ``cache_dir``; '' or None = off.

    SQLite needs a local file, so a remote directory (``s3://…``) maps to a per-machine local
    cache named after it.
    """
    chosen = cfg.cache_dir if cfg.cache_dir is not None else cache_dir
    if not chosen:
        return None
    if is_remote(chosen):
        from synthdiv.models import cache_root

        digest = hashlib.sha256(chosen.encode()).hexdigest()[:16]
        local = cache_root() / "llm_cache" / digest
        log.warning("LLM response cache %s is remote; using local %s", chosen, local)
        return local / CACHE_FILE
    return Path(local_path(chosen)).expanduser() / CACHE_FILE


def build_runner(cfg: LLMConfig, cache_dir: str | None = None) -> LLMRunner:
    """A runner (cache + validation + bounded retries) around the configured backend."""
    backend = build_backend(cfg)
    path = resolve_cache_path(cfg, cache_dir)
    cache = ResponseCache(path) if path is not None else None
    # Chunks big enough to keep every engine busy (and amortise a pipeline's start-up), small
    # enough to cache progress often.
    chunk = getattr(backend, "preferred_chunk_size", max(64, cfg.batch_size * cfg.concurrency * 4))
    return LLMRunner(backend, cache=cache, max_retries=cfg.max_retries, chunk_size=chunk)


def chat_request(
    cfg: LLMConfig,
    id: str,
    messages: list[dict[str, str]],
    json_schema: dict[str, Any] | None = None,
    **overrides: Any,
) -> ChatRequest:
    """A request with the config's decoding defaults (temperature, top_p, max_tokens)."""
    fields: dict[str, Any] = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
        **overrides,
    }
    return ChatRequest(id=id, messages=messages, json_schema=json_schema, **fields)
