"""LLMRunner: cache, validation, bounded retries and accounting, around a scripted backend.

The backend here is a real (tiny) ChatBackend implementation whose answers are scripted per
request text, so each test controls exactly what the "model" says and counts every call.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import pytest

from synthdiv.llm.base import ChatBackend, ChatRequest, ChatResponse, parse_json_text
from synthdiv.llm.runner import RETRY_TEMPERATURE, LLMRunner, LLMUsage, ResponseCache


class ScriptedBackend:
    """Answers by the last user message: replies are used in turn, the last one repeats.
    A reply starting with 'ERROR:' is a transport error; None loses the request."""

    name = "scripted"
    model_id = "scripted-model"

    def __init__(self, script: dict[str, list[str | None]], reverse: bool = False):
        self.script = script
        self.reverse = reverse  # yield out of order, as parallel backends do
        self.seen: list[ChatRequest] = []
        self._served: dict[str, int] = defaultdict(int)

    def run(self, requests):
        out = []
        for request in requests:
            self.seen.append(request)
            text = request.messages[-1]["content"]
            replies = self.script.get(text, ['{"ok": true}'])
            reply = replies[min(self._served[text], len(replies) - 1)]
            self._served[text] += 1
            if reply is None:
                continue
            if reply.startswith("ERROR:"):
                out.append(ChatResponse(id=request.id, error=reply))
            else:
                out.append(
                    ChatResponse(id=request.id, text=reply, prompt_tokens=5, completion_tokens=3)
                )
        yield from reversed(out) if self.reverse else out

    def calls_for(self, text: str) -> list[ChatRequest]:
        return [r for r in self.seen if r.messages[-1]["content"] == text]

    def close(self):
        pass


def req(text: str, **kw) -> ChatRequest:
    return ChatRequest(id=f"id-{text}", messages=[{"role": "user", "content": text}], **kw)


def test_scripted_backend_satisfies_the_protocol():
    assert isinstance(ScriptedBackend({}), ChatBackend)


def test_answers_come_back_in_request_order_with_caller_ids():
    backend = ScriptedBackend(
        {"a": ['{"x": 1}'], "b": ['{"x": 2}'], "c": ['{"x": 3}']}, reverse=True
    )
    answers = LLMRunner(backend).run([req("a"), req("b"), req("c")], validate=lambda p: None)
    assert [a.id for a in answers] == ["id-a", "id-b", "id-c"]
    assert [a.parsed for a in answers] == [{"x": 1}, {"x": 2}, {"x": 3}]


def test_rerun_with_cache_makes_no_backend_calls(tmp_path):
    backend = ScriptedBackend({"a": ['{"x": 1}']})
    cache = ResponseCache(tmp_path / "c.sqlite")
    first = LLMRunner(backend, cache=cache).run([req("a"), req("b")], validate=lambda p: None)
    assert len(cache) == 2  # an empty cache is falsy: it must still be written to
    calls_before = len(backend.seen)

    rerunner = LLMRunner(backend, cache=ResponseCache(tmp_path / "c.sqlite"))
    again = rerunner.run([req("a"), req("b")], validate=lambda p: None)
    assert len(backend.seen) == calls_before
    assert rerunner.usage.calls == 0 and rerunner.usage.cache_hits == 2
    assert [a.parsed for a in again] == [a.parsed for a in first]
    assert all(a.cached for a in again) and not any(a.cached for a in first)


def test_cache_key_depends_on_decoding_params_not_on_id():
    a = req("q", temperature=0.0)
    assert a.cache_key("m") == a.model_copy(update={"id": "other"}).cache_key("m")
    assert a.cache_key("m") != req("q", temperature=0.5).cache_key("m")
    assert a.cache_key("m") != req("q", seed=1).cache_key("m")
    assert a.cache_key("m") != a.cache_key("other-model")


def test_invalid_answer_is_retried_with_new_seed_and_sampling():
    backend = ScriptedBackend({"q": ["not json at all", '{"x": 1}']})
    runner = LLMRunner(backend, max_retries=3)
    [answer] = runner.run([req("q", temperature=0.0, seed=5)], validate=lambda p: None)
    assert answer.ok and answer.parsed == {"x": 1} and answer.attempts == 2
    first, second = backend.calls_for("q")
    assert first.seed == 5 and first.temperature == 0.0
    assert second.seed != 5 and second.temperature == RETRY_TEMPERATURE
    assert runner.usage.retries == 1 and runner.usage.failures == 0


def test_validator_rejection_is_retried_then_recorded_as_error():
    backend = ScriptedBackend({"q": ['{"label": "?"}']})
    runner = LLMRunner(backend, max_retries=2)

    def needs_known_label(parsed):
        return None if parsed.get("label") in {"a", "b"} else f"unknown label {parsed.get('label')}"

    [answer] = runner.run([req("q")], validate=needs_known_label)
    assert answer.error == "failed after 3 attempts: unknown label ?"
    assert answer.parsed is None and answer.attempts == 3
    assert len(backend.calls_for("q")) == 3
    assert len({r.seed for r in backend.calls_for("q")}) == 3  # each retry samples anew
    assert runner.usage.failures == 1 and runner.usage.retries == 2


def test_a_validator_tripping_over_odd_json_counts_as_invalid():
    backend = ScriptedBackend({"q": ["[1, 2]", '{"label": "a"}']})
    [answer] = LLMRunner(backend).run([req("q")], validate=lambda p: None if p["label"] else "?")
    assert answer.ok and answer.parsed == {"label": "a"} and answer.attempts == 2


def test_non_object_json_is_invalid():
    backend = ScriptedBackend({"q": ["42", '["fine"]']})
    [answer] = LLMRunner(backend).run([req("q", json_schema={"type": "array"})])
    assert answer.parsed == ["fine"] and answer.attempts == 2


def test_plain_text_requests_are_not_parsed():
    backend = ScriptedBackend({"q": ["Hello there."]})
    [answer] = LLMRunner(backend).run([req("q")])
    assert answer.ok and answer.text == "Hello there." and answer.parsed is None


def test_transport_errors_retry_the_same_request_and_are_never_cached(tmp_path):
    backend = ScriptedBackend({"q": ["ERROR: HTTP 503", '{"x": 1}']})
    cache = ResponseCache(tmp_path / "c.sqlite")
    runner = LLMRunner(backend, cache=cache, max_retries=2)
    [answer] = runner.run([req("q", temperature=0.0, seed=9)], validate=lambda p: None)
    assert answer.ok and answer.attempts == 2
    first, second = backend.calls_for("q")
    assert (second.seed, second.temperature) == (first.seed, first.temperature)
    assert len(cache) == 1  # only the real answer


def test_persistent_transport_error_is_recorded_not_cached(tmp_path):
    backend = ScriptedBackend({"q": ["ERROR: timeout"]})
    cache = ResponseCache(tmp_path / "c.sqlite")
    runner = LLMRunner(backend, cache=cache, max_retries=1)
    [answer] = runner.run([req("q")])
    assert answer.error == "failed after 2 attempts: ERROR: timeout"
    assert len(cache) == 0
    LLMRunner(backend, cache=cache, max_retries=0).run([req("q")])
    assert len(backend.calls_for("q")) == 3  # the rerun asked again


def test_a_lost_response_becomes_an_error():
    backend = ScriptedBackend({"q": [None]})
    [answer] = LLMRunner(backend, max_retries=1).run([req("q")])
    assert answer.error and "backend returned no response" in answer.error
    assert len(backend.calls_for("q")) == 2


def test_usage_accounting():
    backend = ScriptedBackend({"bad": ["nope"], "good": ['{"x": 1}']})
    runner = LLMRunner(backend, max_retries=1, chunk_size=1)
    done: list[int] = []
    runner.run([req("good"), req("bad")], validate=lambda p: None, on_done=done.append)
    u = runner.usage
    assert (u.requests, u.calls, u.retries, u.failures, u.cache_hits) == (2, 3, 1, 1, 0)
    assert (u.prompt_tokens, u.completion_tokens) == (15, 9)
    assert u.seconds > 0 and done == [1, 1]
    metrics = u.as_metrics()
    assert metrics["llm.calls"] == 3.0 and metrics["llm.calls_per_s"] > 0

    total = LLMUsage()
    total.add(u)
    total.add(u)
    assert total.calls == 6 and total.failures == 2


def test_invalid_answers_are_cached_so_reruns_are_deterministic(tmp_path):
    backend = ScriptedBackend({"q": ["bad", '{"x": 1}']})
    path = tmp_path / "c.sqlite"
    first = LLMRunner(backend, cache=ResponseCache(path)).run([req("q")], validate=lambda p: None)
    again = LLMRunner(backend, cache=ResponseCache(path)).run([req("q")], validate=lambda p: None)
    assert len(backend.seen) == 2
    assert again[0].parsed == first[0].parsed == {"x": 1} and again[0].attempts == 2


def test_runner_closes_backend_and_cache(tmp_path):
    closed = []
    backend = ScriptedBackend({})
    backend.close = lambda: closed.append(True)
    cache = ResponseCache(tmp_path / "c.sqlite")
    with LLMRunner(backend, cache=cache):
        pass
    assert closed == [True]
    with pytest.raises(sqlite3.ProgrammingError):
        len(cache)  # the SQLite connection is closed


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Here you go: {"a": [1, 2]} hope it helps', {"a": [1, 2]}),
        ("[1, 2]", [1, 2]),
    ],
)
def test_parse_json_text(text, expected):
    assert parse_json_text(text) == expected


def test_parse_json_text_rejects_prose():
    with pytest.raises(ValueError):
        parse_json_text("no json here")
