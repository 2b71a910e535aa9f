"""Build a topic taxonomy from your own documents with the LLM (users' equivalent of the paper's
Wikipedia-derived topics): each sampled document is asked for its topic path and keywords, the
answers are validated like any taxonomy row, and distinct paths are written as JSONL."""

from __future__ import annotations

from pathlib import Path

from synthdiv.config import LLMConfig
from synthdiv.corpus import Corpus
from synthdiv.generate.taxonomy import MAX_LEVELS, TaxonomyError, Topic, parse_topic, write_taxonomy
from synthdiv.llm import build_runner
from synthdiv.llm.base import ChatRequest

PROMPT_ID = "generate/taxonomy_from_document@v1"
SYSTEM = (
    "You classify documents into a topic hierarchy. Answer with one JSON object: "
    '"path": the topic from the broadest domain to the most specific subject (2 to 5 levels, '
    'e.g. ["Natural sciences", "Physics", "Optics", "Lenses"]), and "keywords": 3 to 6 key terms '
    "the document covers."
)
SCHEMA = {
    "type": "object",
    "properties": {
        "path": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 60},
            "minItems": 2,
            "maxItems": 5,
        },
        "keywords": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 60},
            "minItems": 3,
            "maxItems": 6,
        },
    },
    "required": ["path", "keywords"],
}


def _check(parsed: object) -> str | None:
    try:
        parse_topic(parsed, "answer")
    except TaxonomyError as err:
        return str(err)
    return None


def taxonomy_from_corpus(
    corpus: Corpus,
    llm: LLMConfig,
    out_path: str | Path,
    *,
    n_docs: int = 200,
    seed: int = 0,
    max_chars: int = 2000,
    cache_dir: str | None = None,
) -> list[Topic]:
    """Ask ``llm`` for the topic of up to ``n_docs`` sampled documents; write distinct topics.
    Topics sharing a path merge their keywords (first seen first, at most 6)."""
    sample = corpus.sample(n_docs, seed)
    requests = [
        ChatRequest(
            id=doc_id,
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Document:\n{text[:max_chars]}"},
            ],
            json_schema=SCHEMA,
            temperature=0.0,
            max_tokens=200,
            seed=seed,
            prompt_id=PROMPT_ID,
        )
        for doc_id, text in zip(sample.ids, sample.texts, strict=True)
    ]
    with build_runner(llm, cache_dir=cache_dir) as runner:
        answers = runner.run(requests, validate=_check)
    merged: dict[tuple[str, ...], list[str]] = {}
    for answer in answers:
        if not answer.ok:
            continue
        topic = parse_topic(answer.parsed, "answer")
        keywords = merged.setdefault(topic.path[:MAX_LEVELS], [])
        keywords.extend(k for k in topic.keywords if k not in keywords)
    if not merged:
        raise TaxonomyError(f"no valid topic from {len(answers)} documents (all answers failed)")
    topics = [Topic(path, tuple(kws[:6])) for path, kws in merged.items()]
    write_taxonomy(topics, out_path)
    return topics
