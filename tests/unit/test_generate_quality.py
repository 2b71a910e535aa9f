"""The quality gate: Gopher's repetition and stop-word rules on passages, and a passage length
floor.

The degenerate examples are shapes SmolLM2-135M produced inside valid JSON."""

from __future__ import annotations

import pytest

from synthdiv.generate.quality import (
    QualityConfig,
    duplicate_ngram_char_fraction,
    quality_issue,
    top_ngram_char_fraction,
)
from synthdiv.generate.validate import sample_validator
from tests.support.samples import GOOD

FINE = [
    "A lever is a rigid bar that turns about a fixed point called the fulcrum.",
    "Moving the fulcrum closer to the load trades the distance you push for the force you need.",
    "Equilibrium holds when the torques on both sides match, which is why a seesaw balances.",
]


def test_ordinary_passages_pass():
    assert quality_issue(FINE, QualityConfig()) is None


@pytest.mark.parametrize(
    ("passages", "reason"),
    [
        (["1", "2", "3"], "passage 1 has 1 words"),
        ([FINE[0], "Special relativity", FINE[2]], "passage 2 has 2 words (< 6)"),
        (
            ["How to Raise a Parent That Loves Your Child, step by step"] * 3 + FINE[:2],
            "2 of 5 passages repeat another",
        ),
        (
            ["Economie de la Rêve pour tous les enfants de France aujourd'hui"] * 1
            + ["Le marché mondial est une grande idée pour les économistes du pays"] * 1
            + ["Les prix montent quand la demande dépasse toujours une offre fixe"],
            "0 English stop words",
        ),
        (
            [
                FINE[0],
                (
                    "To make your life easier, to make your "
                    "home lighter, to make your world lighter, "
                    "to make your day lighter."
                ),
                "Moving the fulcrum trades the distance you push for force.",
            ],
            "the top 3-gram covers",
        ),
        (
            [*FINE, "Trades the distance you push for the force you need, as any seesaw shows."],
            "repeated 5-grams cover",
        ),
    ],
)
def test_degenerate_passages_are_named(passages, reason):
    issue = quality_issue(passages, QualityConfig())
    assert issue is not None and reason in issue, issue


def test_each_rule_can_be_switched_off():
    loose = QualityConfig(min_passage_words=0, min_stop_words=0, repetition=False)
    assert quality_issue(["1", "1", "1"], loose) is None
    assert (
        quality_issue(["1", "2", "3"], QualityConfig(min_passage_words=1, min_stop_words=0)) is None
    )


def test_top_ngram_share_counts_every_occurrence_of_the_most_frequent():
    words = ["the", "cat", "the", "cat", "the", "cat", "sat"]  # 'the cat' ×3 = 18 of 21 characters
    assert top_ngram_char_fraction(words, 2) == pytest.approx(18 / 21)
    assert top_ngram_char_fraction(["a", "b", "c", "d"], 2) == 0.0  # nothing repeats


def test_duplicate_ngram_share_skips_over_each_repeat():
    words = ["a", "b", "c", "d", "e", "a", "b", "c", "d", "e", "x"]  # the 2nd "a…e" (5 of 11 chars)
    assert duplicate_ngram_char_fraction(words, 5) == pytest.approx(5 / 11)
    assert duplicate_ngram_char_fraction(words, 6) == 0.0


def test_the_pipeline_validator_applies_the_gate_after_the_json_contract():
    validate = sample_validator(QualityConfig())
    assert validate(GOOD) is None
    degenerate = {**GOOD, "passages": [{"concepts": ["x"], "text": str(i)} for i in range(3)]}
    assert validate(degenerate).startswith("quality: passage 1")
    assert validate({"passages": []}).startswith("need")  # the contract is checked first
