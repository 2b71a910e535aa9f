"""Validated samples → training text (docs/method.md §3): the passages as plain paragraphs, then the
question with a randomized header, option enumeration and answer prefix. The randomness is seeded
per document, so a rerun (or a resumed shard) renders byte-identical text."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from synthdiv.generate.validate import Sample

# The paper gives no lists; these are ours (documented in docs/generate.md).
HEADERS = (
    "Question:",
    "Q:",
    "Quiz:",
    "Check your understanding:",
    "Test yourself:",
    "Exercise:",
    "Review question:",
    "Practice problem:",
)
ENUMERATIONS = {
    "upper_dot": lambda i: f"{'ABCD'[i]}.",
    "upper_paren": lambda i: f"{'ABCD'[i]})",
    "lower_paren": lambda i: f"({'abcd'[i]})",
    "number_paren": lambda i: f"{i + 1})",
    "number_dot": lambda i: f"{i + 1}.",
    "roman": lambda i: f"{('i', 'ii', 'iii', 'iv')[i]}.",
}
ANSWER_PREFIXES = (
    "Answer:",
    "Correct answer:",
    "The answer is",
    "Solution:",
    "Right answer:",
    "Key:",
)
EXPLANATION_PREFIXES = ("Explanation:", "Why:", "Reasoning:", "Step by step:", "")


@dataclass(frozen=True)
class RenderChoice:
    header: str
    enumeration: str
    answer_prefix: str
    explanation_prefix: str


def doc_rng(seed: int, doc_id: str) -> random.Random:
    """A generator that depends only on (seed, doc id), not on processing order."""
    digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_style(rng: random.Random) -> RenderChoice:
    return RenderChoice(
        header=rng.choice(HEADERS),
        enumeration=rng.choice(sorted(ENUMERATIONS)),
        answer_prefix=rng.choice(ANSWER_PREFIXES),
        explanation_prefix=rng.choice(EXPLANATION_PREFIXES),
    )


def render_text(sample: Sample, choice: RenderChoice) -> str:
    label = ENUMERATIONS[choice.enumeration]
    passages = "\n\n".join(p.text for p in sample.passages)
    options = "\n".join(f"{label(i)} {option}" for i, option in enumerate(sample.options))
    answer = (
        f"{choice.answer_prefix} {label(sample.answer_index)} {sample.options[sample.answer_index]}"
    )
    explanation = f"{choice.explanation_prefix} {sample.explanation}".strip()
    return f"{passages}\n\n{choice.header} {sample.question}\n{options}\n{answer}\n{explanation}"


def render(sample: Sample, seed: int, doc_id: str) -> tuple[str, RenderChoice]:
    choice = choose_style(doc_rng(seed, doc_id))
    return render_text(sample, choice), choice
