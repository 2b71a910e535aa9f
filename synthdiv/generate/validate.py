"""The JSON a generator must return, as a schema (for grammar-constrained decoding) and as a
validator (for backends that cannot constrain, and for what a grammar cannot say: non-empty text,
distinct options, the answer among the options)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from synthdiv.generate.quality import QualityConfig, quality_issue

MIN_PASSAGES, MAX_PASSAGES = 3, 5
N_OPTIONS = 4
LETTERS = "ABCD"
SHORT_CHARS = 120  # concepts, audience, topic names


def response_schema(
    extra_fields: tuple[str, ...] = (), max_text_chars: int | None = None
) -> dict[str, Any]:
    """JSON schema of one sample. ``max_text_chars`` bounds every text field so a small model
    cannot run a passage on until it hits ``max_tokens`` and truncates the JSON."""

    def text(limit: int | None = max_text_chars) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if limit:
            schema["maxLength"] = limit
        return schema

    short = text(min(SHORT_CHARS, max_text_chars) if max_text_chars else None)
    properties: dict[str, Any] = {}
    if "audience" in extra_fields:
        properties["audience"] = short
    if "topics_used" in extra_fields:
        properties["topics_used"] = {"type": "array", "items": short, "minItems": 1, "maxItems": 6}
    properties["passages"] = {
        "type": "array",
        "minItems": MIN_PASSAGES,
        "maxItems": MAX_PASSAGES,
        "items": {
            "type": "object",
            "properties": {
                "concepts": {"type": "array", "items": short, "minItems": 1, "maxItems": 5},
                "text": text(),
            },
            "required": ["concepts", "text"],
        },
    }
    properties["question"] = {
        "type": "object",
        "properties": {
            "question": text(),
            # options are short: long ones only push the JSON past max_tokens (truncated, retried)
            "options": {
                "type": "array",
                "items": short,
                "minItems": N_OPTIONS,
                "maxItems": N_OPTIONS,
            },
            # a letter, not the option's text: a grammar can then guarantee it names an option
            "answer": {"type": "string", "enum": list(LETTERS)},
            "explanation": text(),
        },
        "required": ["question", "options", "answer", "explanation"],
    }
    return {"type": "object", "properties": properties, "required": list(properties)}


@dataclass(frozen=True)
class Passage:
    concepts: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Sample:
    """A validated generation: passages, then a question whose answer is
    ``options[answer_index]``."""

    passages: tuple[Passage, ...]
    question: str
    options: tuple[str, ...]
    answer_index: int
    explanation: str
    audience: str | None = None
    topics_used: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passages"] = [{"concepts": list(p.concepts), "text": p.text} for p in self.passages]
        return data


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _answer_index(answer: str, options: list[str]) -> int | None:
    """The option the answer names: its exact text (case-insensitive) or a bare letter A–D."""
    folded = [o.casefold() for o in options]
    if answer.casefold() in folded:
        return folded.index(answer.casefold())
    letter = answer.strip("().: ").upper()
    if len(letter) == 1 and letter in LETTERS:
        return LETTERS.index(letter)
    return None


def parse_sample(parsed: Any) -> Sample | str:
    """A :class:`Sample`, or the reason the JSON is not one."""
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    passages = parsed.get("passages")
    if not isinstance(passages, list) or not MIN_PASSAGES <= len(passages) <= MAX_PASSAGES:
        return f"need {MIN_PASSAGES}-{MAX_PASSAGES} passages"
    out_passages = []
    for i, passage in enumerate(passages, 1):
        if not isinstance(passage, dict) or not _text(passage.get("text")):
            return f"passage {i} has no text"
        concepts = passage.get("concepts") or []
        if not isinstance(concepts, list):
            return f"passage {i}: concepts is not a list"
        out_passages.append(
            Passage(tuple(_text(c) for c in concepts if _text(c)), _text(passage["text"]))
        )
    question = parsed.get("question")
    if not isinstance(question, dict) or not _text(question.get("question")):
        return "missing question text"
    options = question.get("options")
    if not isinstance(options, list) or len(options) != N_OPTIONS:
        return f"question needs exactly {N_OPTIONS} options"
    options = [_text(o) for o in options]
    if not all(options):
        return "an option is empty"
    if len({o.casefold() for o in options}) != N_OPTIONS:
        return "options are not distinct"
    index = _answer_index(_text(question.get("answer")), options)
    if index is None:
        return "answer is not one of the options"
    explanation = _text(question.get("explanation"))
    if not explanation:
        return "missing explanation"
    topics_used = parsed.get("topics_used") or []
    return Sample(
        passages=tuple(out_passages),
        question=_text(question["question"]),
        options=tuple(options),
        answer_index=index,
        explanation=explanation,
        audience=_text(parsed.get("audience")) or None,
        topics_used=tuple(_text(t) for t in topics_used if _text(t))
        if isinstance(topics_used, list)
        else (),
    )


def validate_sample(parsed: Any) -> str | None:
    """The JSON contract alone: None when the answer parses into a :class:`Sample`, else why."""
    result = parse_sample(parsed)
    return result if isinstance(result, str) else None


def sample_validator(quality: QualityConfig) -> Callable[[Any], str | None]:
    """The runner's validator: the JSON contract, then the quality gate. A reason triggers a
    retry with a new seed, and names the rule in the rejects file if the retries fail too."""

    def validate(parsed: Any) -> str | None:
        result = parse_sample(parsed)
        if isinstance(result, str):
            return result
        return quality_issue([p.text for p in result.passages], quality)

    return validate
