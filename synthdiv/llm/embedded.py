"""The embedded backend: a GGUF chat model run by llama.cpp (llama-cpp-python).

Default model: the packaged SmolLM2-135M-Instruct GGUF (requantized to Q8_0 once), so a laptop
needs no server, GPU or download. The engine never runs in the caller's process: a native crash
(llama.cpp on an unlucky CPU) must fail the stage with a report, not kill the driver. Inside a
stage (Ray up) it runs on ``concurrency`` Ray actors, each loading the model once; without Ray
(``concurrency == 1`` only) in one spawned child process (:class:`synthdiv.crash.IsolatedWorker`).

JSON requests are grammar-constrained: the schema is compiled to a GBNF grammar that llama.cpp
enforces while sampling, so the text is always valid JSON of that shape (unless cut off by
``max_tokens``; the runner then retries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synthdiv import cpu, crash
from synthdiv.config import LLMConfig
from synthdiv.llm.base import ChatRequest, ChatResponse
from synthdiv.models import ModelNotFoundError, smollm2_chat_gguf

# llama.cpp's own defaults (top_k=40, min_p=0.05) would make the same request sample differently
# here than on vLLM or an OpenAI endpoint; disabling them leaves temperature/top_p in charge.
_NEUTRAL_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
# Actors compute in llama.cpp's own threads (sized by default_threads); a fractional reservation
# keeps a small machine's logical CPUs free for other tasks (docs/DEVELOPING.md: pools of 1-CPU
# actors hang).
ACTOR_NUM_CPUS = 0.5
# llama-cpp-python's schema converter lets raw control characters (newlines) into JSON strings,
# which strict JSON parsers reject; llama.cpp's own converter excludes them, as we do here.
_LOOSE_CHAR_RULE = 'char ::= [^"\\\\] |'
_STRICT_CHAR_RULE = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
ENGINE = "llm-engine"  # the crash reports' file prefix (synthdiv.crash)
_LOAD_LOCK = threading.Lock()


def resolve_gguf(model: str | None) -> Path:
    """The GGUF file to load: ``model`` as a path, or the packaged SmolLM2 (as Q8_0)."""
    if model in (None, ""):
        return smollm2_chat_gguf()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"embedded backend: GGUF model file not found: {model}")
    return path


def default_threads(concurrency: int) -> int:
    """Threads per engine: its share of the cores (a fixed count, so outputs do not depend on
    the machine's load).

    llama.cpp's threads meet at a barrier for every token, so one descheduled thread stalls the
    rest: on a 2-core machine shared with other heavy work (load 35), 2 threads gave < 1 tok/s
    where 1 thread gave 18. Set ``llm.engine_kwargs.n_threads`` on such a machine.
    """
    return max(1, (os.cpu_count() or 1) // concurrency)


def _use_extra_buffers(requested: bool | None) -> bool:
    """``engine_kwargs.use_extra_bufts`` if set, else whatever is safe on this CPU and build."""
    if requested is not None:
        return bool(requested)
    return cpu.extra_buffers_safe(cpu.cpu_flags(), cpu.llama_build_features())


@contextlib.contextmanager
def _without_extra_buffers() -> Iterator[None]:
    """Load with ``llama_model_params.use_extra_bufts = False``, a field ``Llama()`` does not
    expose: its defaults come from ``llama_model_default_params``, wrapped here for one load."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        lib.llama_model_default_params = defaults
        try:
            yield
        finally:
            lib.llama_model_default_params = original


class LlamaChat:
    """One loaded llama.cpp model answering :class:`ChatRequest` objects one at a time."""

    def __init__(self, gguf_path: str, n_ctx: int, engine_kwargs: dict[str, Any], concurrency: int):
        from llama_cpp import Llama

        engine_kwargs = dict(engine_kwargs)
        self.extra_buffers = _use_extra_buffers(engine_kwargs.pop("use_extra_bufts", None))
        threads = engine_kwargs.get("n_threads") or default_threads(concurrency)
        # n_threads_batch (prompt evaluation) would otherwise default to every core
        kwargs = {
            "n_threads": threads,
            "n_threads_batch": threads,
            "verbose": False,
            **engine_kwargs,
        }
        loading = contextlib.nullcontext() if self.extra_buffers else _without_extra_buffers()
        with loading:
            self.llama = Llama(model_path=gguf_path, n_ctx=n_ctx, **kwargs)
        self._grammars: dict[str, Any] = {}
        self._lock = threading.Lock()  # a llama.cpp context is not re-entrant

    def stats(self) -> dict[str, Any]:
        return {
            "grammars": len(self._grammars),
            "extra_buffers": self.extra_buffers,
            "pid": os.getpid(),
        }

    def grammar_for(self, schema: dict[str, Any]) -> Any:
        """GBNF grammar for ``schema``, converted once per distinct schema (keyed by its hash)."""
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        blob = json.dumps(schema)  # not sort_keys: property order is the generation order
        key = hashlib.sha256(blob.encode()).hexdigest()
        if key not in self._grammars:
            gbnf = json_schema_to_gbnf(blob).replace(_LOOSE_CHAR_RULE, _STRICT_CHAR_RULE)
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def answer(self, request: ChatRequest) -> ChatResponse:
        crash.maybe_inject(ENGINE)
        started = time.perf_counter()
        try:
            grammar = self.grammar_for(request.json_schema) if request.json_schema else None
            with self._lock:
                out = self.llama.create_chat_completion(
                    messages=request.messages,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    grammar=grammar,
                    **_NEUTRAL_SAMPLING,
                )
        except Exception as err:  # noqa: BLE001 -- one bad request must not sink the batch
            return ChatResponse(
                id=request.id,
                error=f"embedded: {type(err).__name__}: {err}",
                latency_s=time.perf_counter() - started,
            )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            id=request.id,
            text=choice["message"].get("content") or "",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            finish_reason=choice.get("finish_reason") or "",
            latency_s=time.perf_counter() - started,
        )

    def answer_many(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        return [self.answer(r) for r in requests]


class LlamaChatWorker(LlamaChat):
    """A :class:`LlamaChat` in a worker process of its own (a Ray actor), crash report armed."""

    def __init__(self, *args: Any):
        crash.arm(ENGINE)
        super().__init__(*args)


class EmbeddedBackend:
    """llama.cpp chat backend: Ray actors inside a stage, one child process without Ray."""

    name = "embedded"

    def __init__(self, cfg: LLMConfig):
        self.gguf_path = resolve_gguf(cfg.model)  # fail at build time, not at the first request
        self.model_id = f"gguf:{self.gguf_path.name}"
        self.label = f"embedded LLM engine (llama.cpp, {self.model_id})"
        self.cfg = cfg
        self._child: crash.IsolatedWorker | None = None
        self._actors: list[Any] = []
        self._actors_started = 0.0
        self._lock = threading.Lock()

    def _engine_args(self) -> tuple[str, int, dict[str, Any], int]:
        cfg = self.cfg
        return str(self.gguf_path), cfg.context_length, dict(cfg.engine_kwargs), cfg.concurrency

    def _child_engine(self) -> crash.IsolatedWorker:
        with self._lock:  # start lazily: building a backend must stay instant
            if self._child is None:
                self._child = crash.IsolatedWorker(
                    ENGINE, self.label, LlamaChat, *self._engine_args()
                )
            return self._child

    def _actor_pool(self) -> list[Any]:
        import ray

        with self._lock:
            if not self._actors:
                actor_cls = ray.remote(num_cpus=ACTOR_NUM_CPUS)(LlamaChatWorker)
                self._actors_started = time.time()
                self._actors = [
                    actor_cls.remote(*self._engine_args()) for _ in range(self.cfg.concurrency)
                ]
            return self._actors

    def engine_stats(self) -> list[dict[str, Any]]:
        """Each engine's :meth:`LlamaChat.stats` (starts the engines if needed)."""
        import ray

        if ray.is_initialized():
            return ray.get([actor.stats.remote() for actor in self._actor_pool()])
        return [self._child_engine().call("stats")]

    def run(self, requests: Iterable[ChatRequest]) -> Iterator[ChatResponse]:
        import ray

        if ray.is_initialized():
            yield from self._run_on_actors(list(requests))
            return
        if self.cfg.concurrency > 1:
            raise RuntimeError(
                "embedded backend with concurrency > 1 runs on Ray actors: run it inside a stage "
                "(synthdiv.runtime.ray_session) or set llm.concurrency: 1"
            )
        engine = self._child_engine()
        pending = list(requests)
        for i in range(0, len(pending), self.cfg.batch_size):
            yield from engine.call("answer_many", pending[i : i + self.cfg.batch_size])

    def _run_on_actors(self, requests: list[ChatRequest]) -> Iterator[ChatResponse]:
        import ray
        from ray.exceptions import RayActorError

        actors = self._actor_pool()
        size = self.cfg.batch_size
        batches = [requests[i : i + size] for i in range(0, len(requests), size)]
        # Equal-sized batches dealt round-robin: each actor works through its queue in order.
        pending = {
            actors[n % len(actors)].answer_many.remote(batch): batch
            for n, batch in enumerate(batches)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            batch = pending.pop(done[0])
            try:
                yield from ray.get(done[0])
            except RayActorError as err:  # the engine died: a crash, not a bad answer
                raise crash.crash_error(
                    ENGINE, self.label, since=self._actors_started, cause=str(err).splitlines()[0]
                ) from None
            except Exception as err:  # noqa: BLE001 -- a failed batch fails its requests only
                reason = f"embedded actor failed: {type(err).__name__}: {err}"
                yield from (ChatResponse(id=r.id, error=reason[:2000]) for r in batch)

    def close(self) -> None:
        import sys

        if self._actors and "ray" in sys.modules:
            import ray

            for actor in self._actors:
                ray.kill(actor)
        self._actors = []
        if self._child is not None:
            self._child.close()
            self._child = None
