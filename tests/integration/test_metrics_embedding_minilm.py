"""Embedding metrics on real sentence embeddings: the packaged MiniLM puts five topics further apart
than one, so every embedding metric scores the five-topic corpus as more diverse."""

from __future__ import annotations

import numpy as np
import pytest

from synthdiv.metrics.embedding import KMeansScore, PairwiseCosineDistance, RemoteClique, VendiScore
from tests.support.vectors import vector_corpus

pytestmark = pytest.mark.slow  # loading MiniLM takes ~10-20 s on 2 busy cores

TOPICS = {
    "cooking": [
        "Boil the pasta in salted water for ten minutes.",
        "Stir the tomato sauce and add fresh basil.",
        "Knead the bread dough until it is smooth.",
        "Roast the vegetables with olive oil and garlic.",
    ],
    "football": [
        "The striker scored a late goal in the final.",
        "The goalkeeper saved a penalty in the first half.",
        "The coach changed tactics after the red card.",
        "Fans cheered as the team won the league.",
    ],
    "finance": [
        "The central bank raised interest rates again.",
        "Stock prices fell after weak earnings reports.",
        "Investors moved money into government bonds.",
        "Inflation slowed for the third month in a row.",
    ],
    "volcanoes": [
        "Lava flowed down the side of the volcano.",
        "Ash from the eruption closed the airport.",
        "Magma chambers sit deep below the crust.",
        "Scientists measured gas escaping from the crater.",
    ],
    "programming": [
        "The function returns a sorted list of integers.",
        "Unit tests caught a bug in the parser.",
        "The compiler reported a type error on line ten.",
        "Refactor the class into two smaller modules.",
    ],
}


ONE_TOPIC = TOPICS["cooking"] * 5  # 20 documents, 4 distinct
FIVE_TOPICS = [s for topic in TOPICS.values() for s in topic]  # 20 documents, all distinct


@pytest.fixture(scope="module")
def minilm_vectors(minilm) -> dict[str, np.ndarray]:
    """Both corpora encoded once with the packaged MiniLM (loading it dominates the cost)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm), device="cpu")

    def encode(texts):
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    return {
        "one": encode(ONE_TOPIC).astype(np.float32),
        "five": encode(FIVE_TOPICS).astype(np.float32),
    }


@pytest.mark.parametrize(
    "metric",
    [VendiScore(), PairwiseCosineDistance(), RemoteClique(), KMeansScore(k=3)],
    ids=lambda m: m.name,
)
def test_more_topics_score_more_diverse_on_minilm(metric, minilm_vectors):
    scores = []
    for key, texts in (("one", ONE_TOPIC), ("five", FIVE_TOPICS)):
        corpus, ctx = vector_corpus(minilm_vectors[key], texts, n_seeds=3)
        scores.append(metric.compute(corpus, ctx).value)
    assert scores[0] < scores[1]
