"""Backend selection and the exact configs the Ray Data backends build (no vLLM, no servers)."""

from __future__ import annotations

import json

import pytest

from synthdiv.config import ConfigError, LLMConfig, parse_config
from synthdiv.llm import build_backend, build_runner, chat_request, resolve_cache_path
from synthdiv.llm.base import ChatBackend, ChatRequest
from synthdiv.llm.embedded import EmbeddedBackend
from synthdiv.llm.openai_http import OpenAIBackend, VerbatimBodySession, chat_payload
from synthdiv.llm.vllm_engine import (
    VLLMBackend,
    sampling_params,
    split_engine_kwargs,
    vllm_processor_config,
)
from synthdiv.models import ModelNotFoundError

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def _req(**kw) -> ChatRequest:
    return ChatRequest(id="r", messages=[{"role": "user", "content": "hi"}], **kw)


# --- backend selection ------------------------------------------------------------------------


def test_backend_comes_from_config(smollm2_gguf):
    embedded = build_backend(LLMConfig())
    openai = build_backend(LLMConfig(backend="openai", base_url="http://h:8000/v1/", model="m"))
    vllm = build_backend(LLMConfig(backend="vllm", model="org/model"))
    assert (
        isinstance(embedded, EmbeddedBackend) and embedded.model_id == f"gguf:{smollm2_gguf.name}"
    )
    assert isinstance(openai, OpenAIBackend) and openai.url == "http://h:8000/v1/chat/completions"
    assert isinstance(vllm, VLLMBackend) and vllm.model_id == "vllm:org/model"
    for backend in (embedded, openai, vllm):
        assert isinstance(backend, ChatBackend)


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="backend"):
        parse_config({"backend": "llamafile"}, LLMConfig)


@pytest.mark.parametrize(
    "cfg, match",
    [
        (LLMConfig(backend="openai", model="m"), "base_url"),
        (LLMConfig(backend="openai", base_url="http://h/v1"), "llm.model"),
    ],
)
def test_openai_backend_needs_url_and_model(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_backend(cfg)


def test_missing_model_paths_fail_at_build_time(tmp_path):
    with pytest.raises(ModelNotFoundError, match="GGUF"):
        build_backend(LLMConfig(model=str(tmp_path / "x.gguf")))
    with pytest.raises(ModelNotFoundError, match="vllm"):
        build_backend(LLMConfig(backend="vllm", model=str(tmp_path / "hf-dir")))


def test_building_the_embedded_backend_does_not_load_the_model(smollm2_gguf):
    backend = build_backend(LLMConfig())
    assert backend._child is None and not backend._actors  # started on the first request


def test_embedded_grammar_excludes_raw_control_characters():
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from synthdiv.llm.embedded import _LOOSE_CHAR_RULE, _STRICT_CHAR_RULE

    # if llama-cpp-python changes its rule, our tightening would silently stop applying
    assert _LOOSE_CHAR_RULE in json_schema_to_gbnf(json.dumps(SCHEMA))
    assert "\\x00-\\x1F" in _STRICT_CHAR_RULE


# --- runner and cache location ----------------------------------------------------------------


def test_cache_location_precedence(tmp_path):
    assert resolve_cache_path(LLMConfig(cache_dir=str(tmp_path / "a")), str(tmp_path / "b")) == (
        tmp_path / "a" / "responses.sqlite"
    )
    assert (
        resolve_cache_path(LLMConfig(), str(tmp_path / "b")) == tmp_path / "b" / "responses.sqlite"
    )
    assert resolve_cache_path(LLMConfig(cache_dir=""), str(tmp_path / "b")) is None
    assert resolve_cache_path(LLMConfig(), None) is None


def test_remote_cache_dir_maps_to_a_stable_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDIV_CACHE", str(tmp_path))
    one = resolve_cache_path(LLMConfig(), "s3://bucket/runs/llm_cache")
    assert one == resolve_cache_path(LLMConfig(), "s3://bucket/runs/llm_cache")
    assert one != resolve_cache_path(LLMConfig(), "s3://bucket/other")
    assert str(one).startswith(str(tmp_path))


def test_build_runner_wires_config(tmp_path, smollm2_gguf):
    cfg = LLMConfig(max_retries=5, cache_dir=str(tmp_path / "cache"))
    with build_runner(cfg) as runner:
        assert runner.max_retries == 5 and runner.cache is not None
        assert runner.cache.path == tmp_path / "cache" / "responses.sqlite"
    with build_runner(LLMConfig(backend="vllm", model="org/m"), cache_dir="") as runner:
        assert runner.cache is None and runner.chunk_size == VLLMBackend.preferred_chunk_size


def test_chat_request_takes_decoding_defaults_from_config():
    cfg = LLMConfig(temperature=0.3, top_p=0.9, max_tokens=77)
    r = chat_request(cfg, "x", [{"role": "user", "content": "hi"}], json_schema=SCHEMA, seed=4)
    assert (r.temperature, r.top_p, r.max_tokens, r.seed) == (0.3, 0.9, 77, 4)
    assert chat_request(cfg, "x", [], temperature=0.0).temperature == 0.0


# --- openai -----------------------------------------------------------------------------------


def test_openai_payload():
    body = chat_payload(_req(json_schema=SCHEMA, seed=3, temperature=0.2), "judge")
    assert body["model"] == "judge" and body["seed"] == 3 and body["temperature"] == 0.2
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    plain = chat_payload(_req(), "judge")
    assert "response_format" not in plain and "seed" not in plain


def test_openai_processor_config(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-abc")
    cfg = LLMConfig(
        backend="openai", base_url="http://h:8000/v1", model="m", api_key_env="JUDGE_KEY",
        batch_size=4, concurrency=3, timeout_s=9.0,
    )  # fmt: skip
    config = OpenAIBackend(cfg).processor_config()
    assert config.url == "http://h:8000/v1/chat/completions"
    assert config.headers == {"Authorization": "Bearer sk-abc"}
    assert (config.batch_size, config.concurrency) == (4, 3)
    session = config.session_factory()
    assert isinstance(session, VerbatimBodySession) and session.timeout_s == 9.0
    monkeypatch.delenv("JUDGE_KEY")
    assert OpenAIBackend(cfg).processor_config().headers is None


# --- vllm -------------------------------------------------------------------------------------


def test_vllm_gpu_config():
    cfg = LLMConfig(
        backend="vllm", model="org/m", concurrency=4, batch_size=32, context_length=8192,
        engine_kwargs={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85,
                       "accelerator_type": "A100"},
    )  # fmt: skip
    config = vllm_processor_config(cfg, "org/m", use_gpu=True)
    assert config.model_source == "org/m"
    assert (config.concurrency, config.batch_size) == (4, 32)
    assert config.accelerator_type == "A100"  # a processor setting, not an engine kwarg
    assert config.engine_kwargs["enable_prefix_caching"] is True
    assert config.engine_kwargs["max_model_len"] == 8192
    assert config.engine_kwargs["tensor_parallel_size"] == 2
    assert config.engine_kwargs["gpu_memory_utilization"] == 0.85
    assert "accelerator_type" not in config.engine_kwargs
    assert config.placement_group_config is None  # ray.data.llm places GPUs by tp*pp
    assert config.log_engine_metrics is True
    assert config.should_continue_on_error is True


def test_vllm_cpu_config():
    cfg = LLMConfig(backend="vllm", concurrency=1, batch_size=8, context_length=2048)
    config = vllm_processor_config(cfg, "/models/smollm2", use_gpu=False)
    assert config.placement_group_config["bundles"] == [{"CPU": 1.0, "GPU": 0.0}]
    assert config.log_engine_metrics is False
    assert config.accelerator_type is None
    assert config.runtime_env["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert config.engine_kwargs["enable_prefix_caching"] is True
    assert config.engine_kwargs["max_model_len"] == 2048
    for stage in (config.chat_template_stage, config.tokenize_stage, config.detokenize_stage):
        assert stage["num_cpus"] < 1  # light stages must not starve the engine of CPUs


def test_engine_kwargs_override_defaults():
    cfg = LLMConfig(backend="vllm", engine_kwargs={"enable_prefix_caching": False})
    config = vllm_processor_config(cfg, "m", use_gpu=True)
    assert config.engine_kwargs["enable_prefix_caching"] is False
    assert split_engine_kwargs({"max_concurrent_batches": 2, "dtype": "half"}) == (
        {"dtype": "half"},
        {"max_concurrent_batches": 2},
    )


def test_vllm_sampling_params_carry_schema_as_text():
    params = sampling_params(_req(json_schema=SCHEMA, temperature=0.0, max_tokens=64, seed=7))
    assert params["structured_outputs"] == {"json": json.dumps(SCHEMA)}
    assert (params["temperature"], params["max_tokens"], params["seed"]) == (0.0, 64, 7)
    unseeded = sampling_params(_req())
    assert "structured_outputs" not in unseeded
    assert isinstance(unseeded["seed"], int) and unseeded["seed"] == sampling_params(_req())["seed"]
