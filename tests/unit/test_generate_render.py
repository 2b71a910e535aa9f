"""Validation of generated JSON, and seeded rendering to training text."""

from __future__ import annotations

import copy

import pytest

from synthdiv.generate.render import ANSWER_PREFIXES, ENUMERATIONS, HEADERS, render
from synthdiv.generate.validate import (
    SHORT_CHARS,
    Sample,
    parse_sample,
    response_schema,
    validate_sample,
)
from tests.support.samples import GOOD


def _broken(path: str, value):
    data = copy.deepcopy(GOOD)
    node = data
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(leaf) if leaf.isdigit() else leaf] = value
    return data


def test_a_good_sample_parses():
    sample = parse_sample(GOOD)
    assert isinstance(sample, Sample)
    assert sample.answer_index == 0 and len(sample.passages) == 3
    assert validate_sample(GOOD) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_broken("passages", GOOD["passages"][:2]), "need 3-5 passages"),
        (_broken("passages", GOOD["passages"] * 2), "need 3-5 passages"),
        (_broken("passages.1.text", "  "), "passage 2 has no text"),
        (_broken("question.options", ["a", "b", "c"]), "exactly 4 options"),
        (_broken("question.options", ["a", "b", "c", "A"]), "not distinct"),
        (_broken("question.options", ["a", "b", "", "d"]), "an option is empty"),
        (_broken("question.answer", "Something else"), "not one of the options"),
        (_broken("question.explanation", ""), "missing explanation"),
        (_broken("question", "what?"), "missing question"),
        ([GOOD], "not a JSON object"),
    ],
)
def test_invalid_samples_name_the_reason(data, reason):
    assert reason in validate_sample(data)


def test_answer_may_be_a_letter_or_differ_in_case():
    assert parse_sample(_broken("question.answer", "C")).answer_index == 2
    assert parse_sample(_broken("question.answer", "(b)")).answer_index == 1
    assert parse_sample(_broken("question.answer", "nothing")).answer_index == 3


def test_schema_bounds_passages_and_options():
    schema = response_schema(("audience",), max_text_chars=300)
    assert schema["required"] == ["audience", "passages", "question"]
    assert schema["properties"]["passages"]["minItems"] == 3
    assert schema["properties"]["passages"]["maxItems"] == 5
    options = schema["properties"]["question"]["properties"]["options"]
    assert options["minItems"] == options["maxItems"] == 4
    assert options["items"]["maxLength"] == SHORT_CHARS  # options are short, passages long
    assert schema["properties"]["passages"]["items"]["properties"]["text"]["maxLength"] == 300


def test_rendering_is_seeded_per_document_and_varied():
    sample = parse_sample(GOOD)
    text, choice = render(sample, seed=0, doc_id="t000001-g0000")
    assert render(sample, seed=0, doc_id="t000001-g0000") == (text, choice)
    for passage in sample.passages:
        assert passage.text in text
    assert text.index(sample.passages[-1].text) < text.index(sample.question)
    assert choice.header in HEADERS and choice.answer_prefix in ANSWER_PREFIXES
    label = ENUMERATIONS[choice.enumeration]
    for i, option in enumerate(sample.options):
        assert f"{label(i)} {option}" in text
    assert f"{choice.answer_prefix} {label(0)} {sample.options[0]}" in text
    assert sample.explanation in text
    choices = {render(sample, seed=0, doc_id=f"d{i}")[1] for i in range(60)}
    assert len({c.header for c in choices}) >= 4 and len({c.enumeration for c in choices}) >= 4
    assert len({c.answer_prefix for c in choices}) >= 3
    assert render(sample, seed=1, doc_id="t000001-g0000")[0] != text or len(choices) > 1
