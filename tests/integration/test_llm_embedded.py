"""The embedded backend on the packaged SmolLM2 GGUF, through the public build_* API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from synthdiv.config import LLMConfig
from synthdiv.llm import build_backend, build_runner, chat_request
from synthdiv.models import ModelNotFoundError

SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["topic", "score"],
}


def _topic_requests(cfg: LLMConfig, n: int, **overrides):
    return [
        chat_request(
            cfg,
            f"doc-{i}",
            [{"role": "user", "content": f"Give the topic of 'A cat {i} sat on a mat.' as JSON."}],
            json_schema=SCHEMA,
            **overrides,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def backend(smollm2_gguf):
    backend = build_backend(LLMConfig(backend="embedded", max_tokens=48, context_length=512))
    yield backend
    backend.close()


def test_default_model_is_the_packaged_smollm2_requantized_once(tmp_path, monkeypatch):
    from gguf import GGMLQuantizationType, GGUFReader

    from synthdiv.models import smollm2_chat_gguf, smollm2_gguf_path

    monkeypatch.setenv("SYNTHDIV_CACHE", str(tmp_path))
    q8 = smollm2_chat_gguf()
    assert q8.parent == tmp_path and [p.name for p in tmp_path.iterdir()] == [
        q8.name
    ]  # no temp left
    types = {t.tensor_type for t in GGUFReader(q8).tensors if t.name.endswith("ffn_down.weight")}
    assert types == {GGMLQuantizationType.Q8_0}
    source = {t.name: t.shape.tolist() for t in GGUFReader(smollm2_gguf_path()).tensors}
    assert {t.name: t.shape.tolist() for t in GGUFReader(q8).tensors} == source
    mtime = q8.stat().st_mtime_ns
    assert smollm2_chat_gguf() == q8 and q8.stat().st_mtime_ns == mtime  # cached, not redone
    assert build_backend(LLMConfig(backend="embedded")).model_id == f"gguf:{q8.name}"


def test_missing_model_fails_at_build_time(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelNotFoundError, match="nope.gguf"):
        build_backend(LLMConfig(backend="embedded", model=str(missing)))


def test_json_schema_answers_are_valid_json_of_that_shape(backend):
    cfg = LLMConfig(max_tokens=48, temperature=0.0)
    answers = list(backend.run(_topic_requests(cfg, 3)))
    assert sorted(a.id for a in answers) == ["doc-0", "doc-1", "doc-2"]
    for answer in answers:
        assert answer.ok, answer.error
        assert answer.finish_reason == "stop"
        parsed = json.loads(answer.text)  # strict parser: no raw control characters in strings
        assert set(parsed) == {"topic", "score"}
        assert isinstance(parsed["topic"], str) and isinstance(parsed["score"], int)
        assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    # one schema, one converted grammar, reused by every request, in an engine process of its own
    stats = backend.engine_stats()
    assert [s["grammars"] for s in stats] == [1] and stats[0]["pid"] != os.getpid()


def test_decoding_params_are_honoured(backend):
    cfg = LLMConfig(max_tokens=48)
    messages = [{"role": "user", "content": "Write one sentence about rivers."}]
    same = [chat_request(cfg, f"s{i}", messages, temperature=1.0, seed=7) for i in range(2)]
    other = [chat_request(cfg, f"o{s}", messages, temperature=1.0, seed=s) for s in (8, 9, 10)]
    short = chat_request(cfg, "short", messages, max_tokens=3)
    out = {a.id: a for a in backend.run([*same, *other, short])}
    assert out["s0"].text == out["s1"].text  # a seed fixes the sample
    assert len({out[f"o{s}"].text for s in (8, 9, 10)}) > 1  # other seeds sample differently
    assert out["short"].completion_tokens == 3 and out["short"].finish_reason == "length"


def test_request_errors_are_responses_not_exceptions(backend):
    cfg = LLMConfig(max_tokens=8)
    too_long = [{"role": "user", "content": "word " * 2000}]  # > context_length=512 tokens
    fine = [{"role": "user", "content": "Hi"}]
    out = {
        a.id: a
        for a in backend.run([chat_request(cfg, "long", too_long), chat_request(cfg, "ok", fine)])
    }
    assert out["long"].error and "embedded" in out["long"].error
    assert out["ok"].ok and out["ok"].text


def test_runner_caches_so_a_rerun_makes_no_calls(smollm2_gguf, tmp_path):
    cfg = LLMConfig(max_tokens=48, temperature=0.0, context_length=512)
    first = build_runner(cfg, cache_dir=str(tmp_path / "cache"))
    answers = first.run(_topic_requests(cfg, 3))
    assert all(a.ok and a.parsed is not None for a in answers)
    assert first.usage.calls >= 3 and first.usage.completion_tokens > 0
    first.close()

    again = build_runner(cfg, cache_dir=str(tmp_path / "cache"))
    rerun = again.run(_topic_requests(cfg, 3))
    assert again.usage.calls == 0 and again.usage.cache_hits == 3
    assert [a.parsed for a in rerun] == [a.parsed for a in answers]
    assert all(a.cached for a in rerun)
    again.close()


def test_concurrency_without_ray_is_a_clear_error(smollm2_gguf):
    # A fresh interpreter: this session's Ray (started by other tests) must not hide the error.
    code = (
        "from synthdiv.config import LLMConfig\n"
        "from synthdiv.llm import build_backend\n"
        "from synthdiv.llm.base import ChatRequest\n"
        "req = ChatRequest(id='a', messages=[{'role': 'user', 'content': 'hi'}], max_tokens=4)\n"
        "try:\n"
        "    list(build_backend(LLMConfig(concurrency=2)).run([req]))\n"
        "except RuntimeError as err:\n"
        "    print('ERROR:', err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    assert "ERROR:" in out.stdout and "concurrency" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
def test_concurrency_uses_ray_actors(smollm2_gguf, ray_local):
    cfg = LLMConfig(max_tokens=32, temperature=0.0, concurrency=2, batch_size=2, context_length=512)
    backend = build_backend(cfg)
    try:
        answers = list(backend.run(_topic_requests(cfg, 5)))
        assert len(backend._actors) == 2
    finally:
        backend.close()
    assert sorted(a.id for a in answers) == [f"doc-{i}" for i in range(5)]
    assert all(a.ok and json.loads(a.text) for a in answers)


def _load_as_if_amx(amx: bool) -> dict:
    """In a child process: make this CPU and build look as if they had AMX (or not), then load
    the packaged model and answer once."""
    import llama_cpp.llama_cpp as lib

    from synthdiv import cpu
    from synthdiv.llm.base import ChatRequest
    from synthdiv.llm.embedded import LlamaChat
    from synthdiv.models import smollm2_chat_gguf

    flags = {"avx2", "fma", "amx_tile", "amx_int8"} if amx else {"avx2", "fma"}
    cpu.cpu_flags = lambda cpuinfo=None: frozenset(flags)
    cpu.llama_build_features = lambda: {"AVX2": True, "AMX_INT8": True}
    defaults = lib.llama_model_default_params
    chat = LlamaChat(str(smollm2_chat_gguf()), 512, {}, 1)
    answer = chat.answer(
        ChatRequest(id="a", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    )
    return {
        "extra_bufts": chat.llama.model_params.use_extra_bufts,
        "ok": answer.ok,
        "defaults_restored": lib.llama_model_default_params is defaults,
        "stats": chat.stats()["extra_buffers"],
    }


@pytest.mark.parametrize("amx", [True, False])
def test_amx_guard_reaches_llama_cpp_and_the_model_still_answers(amx, smollm2_gguf):
    from synthdiv.crash import run_isolated

    out = run_isolated("llm-engine", "guard probe", _load_as_if_amx, amx, timeout=300)
    assert out["extra_bufts"] is (not amx) and out["stats"] is (not amx)
    assert out["ok"] and out["defaults_restored"]
