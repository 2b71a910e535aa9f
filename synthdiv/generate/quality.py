"""Quality gate for generated samples: the text rules a JSON schema cannot state.

A small generator often returns well-formed JSON around degenerate text: passages that are a
bare number, the same heading five times, a phrase looping until the length bound, or a drift
into another language. Such samples are not diverse content, they are noise in every diversity
metric. The gate applies the repetition and stop-word rules of the Gopher quality filter
(Rae et al. 2021, "Scaling Language Models", Table A1), measured on the passages, plus a
minimum passage length. A sample that fails is retried with a new seed by the LLM runner and,
if it still fails, lands in the rejects file with the rule that failed as its reason.
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import Field

from synthdiv.config import StrictModel

# Gopher's thresholds: the most frequent n-gram may cover at most this share of the characters…
TOP_NGRAM_CHAR_FRACTION = {2: 0.20, 3: 0.18, 4: 0.16}
# …and words inside repeated n-grams at most this share.
DUPLICATE_NGRAM_CHAR_FRACTION = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
DUPLICATE_PASSAGE_FRACTION = 0.30
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
QUALITY_PREFIX = "quality: "  # every gate reason starts with it: rejects are counted by it
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


class QualityConfig(StrictModel):
    """Rules a sample's passages must pass; each can be switched off."""

    min_passage_words: int = Field(
        6, ge=0, description="Every passage has at least this many words."
    )
    min_stop_words: int = Field(
        2,
        ge=0,
        description="Distinct English stop words (Gopher's 8) in the passages; 0 for "
        "corpora in other languages.",
    )
    repetition: bool = Field(True, description="Gopher's duplicate passage and n-gram rules.")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters (of its words) in all occurrences of the most frequent n-gram, over all
    characters."""
    total = sum(map(len, words))
    if len(words) < n or not total:
        return 0.0
    gram, count = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1)).most_common(
        1
    )[0]
    return sum(map(len, gram)) * count / total if count > 1 else 0.0


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of words covered by an n-gram seen earlier in the text, over all characters.

    A repeat is counted once and skipped over, so overlapping copies of one loop are not counted
    n times (Gopher's definition)."""
    total = sum(map(len, words))
    seen: set[tuple[str, ...]] = set()
    repeated, i = 0, 0
    while i <= len(words) - n:
        gram = tuple(words[i : i + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated / total if total else 0.0


def quality_issue(passages: list[str], config: QualityConfig) -> str | None:
    """The first rule the passages break, as a reason naming the rule and the figures, or None."""
    per_passage = [_words(text) for text in passages]
    for i, passage_words in enumerate(per_passage, 1):
        if len(passage_words) < config.min_passage_words:
            return (
                f"{QUALITY_PREFIX}passage {i} has {len(passage_words)} "
                f"words (< {config.min_passage_words})"
            )
    words = [w for passage_words in per_passage for w in passage_words]
    stop_words = len(STOP_WORDS.intersection(words))
    if stop_words < config.min_stop_words:
        return f"{QUALITY_PREFIX}{stop_words} English stop words (< {config.min_stop_words})"
    if not config.repetition:
        return None
    folded = [" ".join(passage_words) for passage_words in per_passage]
    duplicates = len(folded) - len(set(folded))
    if duplicates / len(folded) > DUPLICATE_PASSAGE_FRACTION:
        return f"{QUALITY_PREFIX}{duplicates} of {len(folded)} passages repeat another"
    for n, limit in TOP_NGRAM_CHAR_FRACTION.items():
        if (share := top_ngram_char_fraction(words, n)) > limit:
            return (
                f"{QUALITY_PREFIX}the top {n}-gram covers {share:.0%} of the text (> {limit:.0%})"
            )
    for n, limit in DUPLICATE_NGRAM_CHAR_FRACTION.items():
        if (share := duplicate_ngram_char_fraction(words, n)) > limit:
            return (
                f"{QUALITY_PREFIX}repeated {n}-grams cover {share:.0%} of the text (> {limit:.0%})"
            )
    return None
