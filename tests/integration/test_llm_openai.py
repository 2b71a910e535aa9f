"""The openai backend end to end: ray.data.llm's HTTP processor against a real loopback server.

One scripted run per module (a Ray Data pipeline costs seconds); each test asserts one behaviour
on the answers and on the requests the server actually received.
"""

from __future__ import annotations

import pytest

from synthdiv.config import LLMConfig
from synthdiv.llm import build_runner, chat_request
from synthdiv.llm.openai_http import LOST_BATCH_ERROR, chat_payload
from tests.support.openai_server import ScriptedOpenAIServer

pytestmark = pytest.mark.slow

MAX_RETRIES = 1  # each attempt is a Ray Data pipeline: keep the run short
SCHEMA_A = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
SCHEMA_B = {"type": "object", "properties": {"b": {"type": "string"}}}
# Answers (even invalid ones) are cached; transport errors never are.
CACHEABLE = ("fine", "malformed-once", "always-malformed", "other-schema")
SCRIPT = {
    "fine": [{"content": '{"a": 1}'}],
    "malformed-once": [{"content": "Sure! here it is: {a: 1"}, {"content": '{"a": 2}'}],
    "always-malformed": [{"content": "no json here"}],
    "json-500": [{"status": 500, "body": {"error": {"message": "engine overloaded"}}}],
    "text-500": [{"status": 500, "body": "Internal Server Error"}],
    "too-slow": [{"delay": 3.0, "content": '{"a": 3}'}],
    "other-schema": [{"content": '{"b": "x"}'}],
}


def _requests(cfg: LLMConfig):
    out = []
    for name in SCRIPT:
        schema = SCHEMA_B if name == "other-schema" else SCHEMA_A
        seed = 11 if name == "fine" else None  # rows differ in keys: must not be "unified"
        out.append(
            chat_request(
                cfg, name, [{"role": "user", "content": name}], json_schema=schema, seed=seed
            )
        )
    return out


@pytest.fixture(scope="module")
def scripted_run(ray_local, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("SYNTHDIV_TEST_KEY", "sk-test-123")
    cache_dir = str(tmp_path_factory.mktemp("llm_cache"))
    with ScriptedOpenAIServer(SCRIPT) as server:
        cfg = LLMConfig(
            backend="openai",
            base_url=server.base_url,
            model="judge",
            api_key_env="SYNTHDIV_TEST_KEY",
            max_retries=MAX_RETRIES,
            timeout_s=1.0,
            batch_size=1,  # a failed batch loses only its own row
            concurrency=2,
        )
        with build_runner(cfg, cache_dir=cache_dir) as runner:
            answers = {a.id: a for a in runner.run(_requests(cfg))}
            usage = runner.usage
        first_counts = {name: server.count(name) for name in SCRIPT}
        received = list(server.requests)
        with build_runner(cfg, cache_dir=cache_dir) as rerunner:
            answered = [r for r in _requests(cfg) if r.id in CACHEABLE]
            rerun = {a.id: a for a in rerunner.run(answered)}
            rerun_usage = rerunner.usage
        rerun_requests = len(server.requests) - len(received)
        yield {
            "cfg": cfg, "answers": answers, "usage": usage, "counts": first_counts,
            "received": received, "rerun": rerun, "rerun_usage": rerun_usage,
            "rerun_requests": rerun_requests,
        }  # fmt: skip


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_valid_answer_first_time(scripted_run):
    fine = scripted_run["answers"]["fine"]
    assert fine.ok and fine.parsed == {"a": 1} and fine.attempts == 1
    assert fine.finish_reason == "stop" and fine.completion_tokens > 0
    assert scripted_run["counts"]["fine"] == 1


def test_malformed_then_valid_succeeds_on_second_attempt(scripted_run):
    answer = scripted_run["answers"]["malformed-once"]
    assert answer.ok and answer.parsed == {"a": 2} and answer.attempts == 2
    assert scripted_run["counts"]["malformed-once"] == 2


def test_always_malformed_is_an_error_after_bounded_attempts(scripted_run):
    answer = scripted_run["answers"]["always-malformed"]
    assert answer.error and "invalid JSON" in answer.error and answer.parsed is None
    assert answer.attempts == MAX_RETRIES + 1
    assert scripted_run["counts"]["always-malformed"] == MAX_RETRIES + 1


def test_http_errors_become_per_request_errors(scripted_run):
    json_500 = scripted_run["answers"]["json-500"]
    assert json_500.error and "engine overloaded" in json_500.error
    assert scripted_run["counts"]["json-500"] == MAX_RETRIES + 1
    text_500 = scripted_run["answers"]["text-500"]
    assert text_500.error and LOST_BATCH_ERROR in text_500.error
    assert text_500.attempts == MAX_RETRIES + 1


def test_timeouts_become_per_request_errors(scripted_run):
    answer = scripted_run["answers"]["too-slow"]
    assert answer.error and LOST_BATCH_ERROR in answer.error
    assert scripted_run["counts"]["too-slow"] >= MAX_RETRIES + 1


def test_usage_counts_failures_and_retries(scripted_run):
    usage = scripted_run["usage"]
    assert usage.requests == len(SCRIPT)
    assert usage.failures == 4  # always-malformed, json-500, text-500, too-slow
    assert usage.retries == 1 + 4 * MAX_RETRIES
    assert usage.calls == usage.requests + usage.retries


def test_request_bodies_arrive_exactly_as_built(scripted_run):
    cfg = scripted_run["cfg"]
    by_text = {}  # the first attempt of each request (retries change the seed)
    for body in scripted_run["received"]:
        by_text.setdefault(body["messages"][-1]["content"], body)
    for request in _requests(cfg):
        body = dict(by_text[request.id])
        assert body.pop("_authorization") == "Bearer sk-test-123"
        assert body == chat_payload(request, "judge")  # no null keys, int seed, own schema
    assert by_text["fine"]["response_format"]["type"] == "json_schema"


def test_cached_rerun_makes_no_http_calls(scripted_run):
    assert scripted_run["rerun_requests"] == 0  # counted by the server
    usage = scripted_run["rerun_usage"]
    assert usage.calls == 0 and usage.cache_hits >= len(CACHEABLE)
    rerun, first = scripted_run["rerun"], scripted_run["answers"]
    for name in CACHEABLE:
        assert rerun[name].parsed == first[name].parsed
        assert rerun[name].error == first[name].error
        assert rerun[name].cached
