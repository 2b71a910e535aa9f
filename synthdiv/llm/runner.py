"""Cache, validation and bounded retries around any :class:`ChatBackend`.

A request's answer is cached by a hash of (model, messages, schema, decoding params), so a rerun
makes no new calls. Each answer is parsed and validated by the caller's rule; an invalid answer is
retried up to ``max_retries`` times with a new seed (and a non-zero temperature, since greedy
decoding would repeat itself), then returned with ``error`` set — counted, never dropped.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from synthdiv.llm.base import ChatBackend, ChatRequest, ChatResponse, parse_json_text

# A validator gets the parsed JSON and returns None when it is acceptable, else the reason.
Validator = Callable[[Any], str | None]
RETRY_TEMPERATURE = 0.7
_SEED_STRIDE = 1_000_003
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


@dataclass
class LLMUsage:
    """What the calls cost. ``requests`` counts logical requests, ``calls`` backend calls."""

    requests: int = 0
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: LLMUsage) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def as_metrics(self, prefix: str = "llm.") -> dict[str, float]:
        out = {f"{prefix}{k}": float(v) for k, v in asdict(self).items()}
        if self.seconds > 0:
            out[f"{prefix}calls_per_s"] = self.calls / self.seconds
            out[f"{prefix}completion_tokens_per_s"] = self.completion_tokens / self.seconds
        return out


class ResponseCache:
    """SQLite map from request hash to response JSON; safe for threads of one process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT)")
        self._db.commit()

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return ChatResponse.model_validate_json(row[0]) if row else None

    def put_many(self, items: Sequence[tuple[str, ChatResponse]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?)",
                [(k, r.model_dump_json()) for k, r in items],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def retry_request(request: ChatRequest, attempt: int) -> ChatRequest:
    """The request for retry number ``attempt`` (>= 1): a new seed, and sampling if it was
    greedy."""
    seed = (request.seed or 0) + attempt * _SEED_STRIDE
    temperature = request.temperature if request.temperature > 0 else RETRY_TEMPERATURE
    return request.model_copy(update={"seed": seed, "temperature": temperature})


def check_response(
    response: ChatResponse, request: ChatRequest, validate: Validator | None
) -> str | None:
    """Parse (if JSON was asked for) and validate; return the reason it is unusable, or None."""
    if response.error:
        return response.error
    wants_json = request.json_schema is not None or validate is not None
    if wants_json and response.parsed is None:
        try:
            response.parsed = parse_json_text(response.text)
        except (ValueError, TypeError) as err:
            return f"invalid JSON: {err}"
        if not isinstance(response.parsed, dict | list):
            bad, response.parsed = response.parsed, None
            return f"JSON answer is not an object or array: {bad!r:.80}"
    if validate is not None:
        try:
            return validate(response.parsed)
        except _SHAPE_ERRORS as err:  # a validator tripping over odd model output = invalid answer
            return f"validator failed on the answer: {type(err).__name__}: {err}"
    return None


class LLMRunner:
    """Runs batches of requests through a backend with caching, validation and retries."""

    def __init__(
        self,
        backend: ChatBackend,
        cache: ResponseCache | None = None,
        max_retries: int = 3,
        chunk_size: int = 256,
    ):
        self.backend = backend
        self.cache = cache
        self.max_retries = max_retries
        self.chunk_size = chunk_size
        self.usage = LLMUsage()

    def close(self) -> None:
        """Release the backend (engines, actors, HTTP pools) and the cache."""
        self.backend.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        requests: Iterable[ChatRequest],
        validate: Validator | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[ChatResponse]:
        """Answer every request, in order. Failures come back with ``error`` set."""
        requests = list(requests)
        out: list[ChatResponse] = []
        for start in range(0, len(requests), self.chunk_size):
            chunk = requests[start : start + self.chunk_size]
            out.extend(self._run_chunk(chunk, validate))
            if on_done:
                on_done(len(chunk))
        return out

    def _run_chunk(
        self, chunk: list[ChatRequest], validate: Validator | None
    ) -> list[ChatResponse]:
        started = time.perf_counter()
        self.usage.requests += len(chunk)
        final: dict[int, ChatResponse] = {}
        reasons: dict[int, str] = {}
        # An invalid answer is retried with a new seed (the same request would repeat it); a
        # transport error (timeout, HTTP 500) is retried unchanged, so the answer, once it comes,
        # is the one the caller asked for.
        current = dict(enumerate(chunk))
        invalid_answers = dict.fromkeys(range(len(chunk)), 0)
        pending = list(range(len(chunk)))
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            if attempt:
                self.usage.retries += len(pending)
            answers = self._answer([current[i] for i in pending])
            still: list[int] = []
            for i, response in zip(pending, answers, strict=True):
                response.id = chunk[i].id
                response.attempts = attempt + 1
                final[i] = response
                reason = check_response(response, current[i], validate)
                if reason is None:
                    continue
                reasons[i] = reason
                still.append(i)
                if response.error is None:
                    invalid_answers[i] += 1
                    current[i] = retry_request(chunk[i], invalid_answers[i])
            pending = still
        for i in pending:
            final[i].error = f"failed after {self.max_retries + 1} attempts: {reasons[i]}"
            final[i].parsed = None
            self.usage.failures += 1
        self.usage.seconds += time.perf_counter() - started
        return [final[i] for i in range(len(chunk))]

    def _answer(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Responses for ``requests`` in order: from the cache, else from the backend."""
        model = self.backend.model_id
        keys = [r.cache_key(model) for r in requests]
        answers: list[ChatResponse | None] = [None] * len(requests)
        misses: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                answers[i] = hit.model_copy(update={"cached": True})
                self.usage.cache_hits += 1
            else:
                misses.append(i)
        if misses:
            by_id = {f"{i}": requests[i].model_copy(update={"id": f"{i}"}) for i in misses}
            fresh: list[tuple[str, ChatResponse]] = []
            for response in self.backend.run(by_id.values()):
                i = int(response.id)
                answers[i] = response
                self.usage.calls += 1
                self.usage.prompt_tokens += response.prompt_tokens
                self.usage.completion_tokens += response.completion_tokens
                if response.error is None:  # transport errors are not answers: never cache them
                    fresh.append((keys[i], response))
            if self.cache is not None and fresh:  # not `if self.cache`: an empty cache is falsy
                self.cache.put_many(fresh)
        missing = [i for i, a in enumerate(answers) if a is None]
        for i in missing:  # a backend that lost a request must not lose it for us
            answers[i] = ChatResponse(id=str(i), error="backend returned no response")
        return [a.model_copy() for a in answers]  # type: ignore[union-attr]
