"""Embeddings through a real Ray Data actor pool and the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthdiv.config import CorpusConfig
from synthdiv.corpus import Corpus, example_corpus_path, read_corpus
from synthdiv.embed import (
    EmbedConfig,
    EmbedError,
    embed_corpus,
    load_embeddings,
    resolve_model_path,
    run_embedding,
)
from synthdiv.models import ModelNotFoundError, minilm_path

pytestmark = pytest.mark.slow  # actor start-up and model loads: ~20-60 s on 2 shared cores


@pytest.fixture(scope="module")
def example() -> Corpus:
    return read_corpus(CorpusConfig(path=example_corpus_path()))[0]


@pytest.fixture(scope="module")
def plain_vectors(example: Corpus, minilm: Path) -> np.ndarray:
    """The reference: single-process SentenceTransformer.encode on the same documents."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm), device="cpu")
    return model.encode(
        example.texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
    )


def test_embeddings_match_plain_encode_and_resume(
    ray_local, example, plain_vectors, tmp_path
) -> None:
    corpus = example.take(list(range(0, 240, 8)))  # 30 docs, 3 shards of 10
    cfg = EmbedConfig(shard_size=10, batch_size=8)
    first = run_embedding(corpus, cfg, str(tmp_path / "emb"))
    assert first.vectors.shape == (30, 384) and first.vectors.dtype == np.float32
    np.testing.assert_allclose(first.vectors, plain_vectors[::8], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert (first.shards_written, first.docs_embedded) == (3, 30)
    names = sorted(p.name for p in (tmp_path / "emb").iterdir())
    assert names == ["_SUCCESS"] + [
        f"part-0000{i}.parquet{s}" for i in range(3) for s in ("", ".done")
    ]

    again = run_embedding(corpus, cfg, str(tmp_path / "emb"))
    assert (again.shards_written, again.shards_skipped, again.docs_embedded) == (0, 3, 0)
    assert np.array_equal(again.vectors, first.vectors)

    # One changed document re-embeds only its own shard.
    texts = list(corpus.texts)
    texts[14] = "A completely different sentence about volcanic ash clouds."
    changed = Corpus(corpus.ids, texts)
    third = run_embedding(changed, cfg, str(tmp_path / "emb"))
    assert (third.shards_written, third.docs_embedded) == (1, 10)
    assert np.array_equal(third.vectors[:10], first.vectors[:10])
    assert not np.allclose(third.vectors[14], first.vectors[14])

    subset = load_embeddings(str(tmp_path / "emb"), [corpus.ids[3], corpus.ids[0]])
    assert np.array_equal(subset, third.vectors[[3, 0]])
    with pytest.raises(EmbedError, match="1 ids have no embedding"):
        load_embeddings(str(tmp_path / "emb"), ["not-an-id"])


def test_example_topics_are_separable(ray_local, example, tmp_path) -> None:
    """The example corpus must hold 12 semantically distinct topics: each document's nearest
    topic centroid (leave-one-out) is its own topic."""
    vectors = embed_corpus(
        example, EmbedConfig(shard_size=100, num_actors=1), str(tmp_path / "emb")
    )
    topics = np.array([m["topic"] for m in example.metas])
    names = sorted(set(topics))
    sums = np.stack([vectors[topics == t].sum(0) for t in names])
    hits = 0
    for i, vec in enumerate(vectors):
        own = names.index(topics[i])
        centroids = sums.copy()
        centroids[own] = (centroids[own] - vec) / 19
        centroids[np.arange(len(names)) != own] /= 20
        hits += int(np.argmax(centroids @ vec) == own)
    assert hits / len(vectors) >= 0.98


def test_bad_model_path_fails_before_any_ray_work(ray_local, example, tmp_path) -> None:
    cfg = EmbedConfig(model=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotFoundError, match="embedding model path does not exist"):
        embed_corpus(example, cfg, str(tmp_path / "emb"))
    assert not (tmp_path / "emb").exists()


def test_incomplete_output_is_not_loaded(tmp_path) -> None:
    (tmp_path / "emb").mkdir()
    with pytest.raises(EmbedError, match=r"incomplete embeddings .* \(no _SUCCESS\)"):
        load_embeddings(str(tmp_path / "emb"), ["a"])


def test_uncached_hub_id_fails_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelNotFoundError, match="neither a local path nor in the Hugging Face cache"
    ):
        resolve_model_path("synthdiv-test/no-such-embedding-model")
    assert resolve_model_path(None).endswith(str(minilm_path().name))
