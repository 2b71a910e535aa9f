"""Lexical metrics: hand-checkable math, brute-force cross-checks, reference (golden) agreement,
params validation and the seeded-subsample + half-sample protocol."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from synthdiv.config import ConfigError
from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext, available, create, lexical
from synthdiv.metrics.lexical import (
    CompressionRatio,
    ContextLength,
    DistinctN,
    NgramDiversity,
    SelfRepetition,
    TokenizedCorpus,
    distinct_ratio,
    gzip_ratio,
    self_repetition,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "diversity_lexical.json").read_text())


def corpus_of(texts: list[str]) -> Corpus:
    return Corpus(ids=[f"d{i}" for i in range(len(texts))], texts=texts)


def random_texts(
    n_docs: int, vocab: int, seed: int, length: tuple[int, int] = (3, 30)
) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        " ".join(f"w{t}" for t in rng.integers(0, vocab, rng.integers(*length)))
        for _ in range(n_docs)
    ]


def brute_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = text.split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def brute_self_repetition(texts: list[str], n: int) -> float:
    """docs/method.md §2 read literally: a pairwise loop over documents."""
    sets = [set(brute_ngrams(t, n)) for t in texts]
    scores = []
    for i, mine in enumerate(sets):
        total = sum(sum(g in other for j, other in enumerate(sets) if j != i) for g in mine)
        scores.append(math.log(total + 1))
    return sum(scores) / len(scores)


CHEAP = [
    DistinctN(n=2),
    NgramDiversity(),
    SelfRepetition(),
    CompressionRatio(),
    ContextLength(tokenizer="whitespace"),
]


# --- math on hand-checkable inputs -------------------------------------------------------------


def test_distinct_n_by_hand():
    tokens = TokenizedCorpus.from_texts(["a b c", "a b d"])
    assert distinct_ratio(tokens, 1) == pytest.approx(4 / 6)
    assert distinct_ratio(tokens, 2) == pytest.approx(3 / 4)  # ab, bc, ab, bd
    assert distinct_ratio(tokens, 3) == pytest.approx(2 / 2)
    assert distinct_ratio(tokens, 4) == 0.0  # no 4-grams at all


def test_identical_docs_minimal_and_disjoint_docs_maximal():
    same = ["one two three four five six"] * 4
    disjoint = [" ".join(f"w{d}_{i}" for i in range(6)) for d in range(4)]
    ctx = MetricContext(n_seeds=3)
    for metric, maximum in ((DistinctN(n=2), 1.0), (NgramDiversity(max_n=4), 4.0)):
        assert metric.compute(corpus_of(disjoint), ctx).value == pytest.approx(maximum)
        assert (
            metric.compute(corpus_of(same), ctx).value
            < metric.compute(corpus_of(disjoint), ctx).value
        )
    rep = SelfRepetition()
    assert rep.compute(corpus_of(disjoint), ctx).value == 0.0
    # each document's 3 unique 4-grams each appear in the 3 other documents: ln(1 + 9)
    assert rep.compute(corpus_of(same), ctx).value == pytest.approx(math.log(10))
    comp = CompressionRatio()
    assert (
        comp.compute(corpus_of(same * 10), ctx).value > comp.compute(corpus_of(disjoint), ctx).value
    )


def test_ngrams_stay_inside_documents_unless_crossing_is_asked():
    tokens = TokenizedCorpus.from_texts(["a b", "c d"])
    assert tokens.ngrams(2)[0].size == 2  # ab, cd — never "b c"
    assert tokens.joined().ngrams(2)[0].size == 3
    assert NgramDiversity(max_n=2).score(tokens) == pytest.approx(1 + 1)
    assert NgramDiversity(max_n=2, cross_documents=True).score(tokens) == pytest.approx(1 + 1)


@pytest.mark.parametrize("n", [1, 2, 4, 16])  # n=16 with 40 words exceeds 64 bits: hashed keys
def test_distinct_and_self_repetition_match_brute_force(n):
    texts = random_texts(60, vocab=40, seed=n, length=(0, 40))
    tokens = TokenizedCorpus.from_texts(texts)
    all_ngrams = [g for t in texts for g in brute_ngrams(t, n)]
    assert distinct_ratio(tokens, n) == pytest.approx(len(set(all_ngrams)) / len(all_ngrams))
    assert self_repetition(tokens, n) == pytest.approx(brute_self_repetition(texts, n), abs=1e-12)


@pytest.mark.parametrize("partition", [7, 64])  # ~1k pairs: 256 and 32 hash partitions
def test_self_repetition_partitioned_equals_brute_force(monkeypatch, partition):
    texts = random_texts(60, vocab=12, seed=5, length=(0, 40))  # small vocab: shared n-grams
    monkeypatch.setattr(lexical, "_PARTITION", partition)
    value = self_repetition(TokenizedCorpus.from_texts(texts), 2)
    assert value > 0
    assert value == pytest.approx(brute_self_repetition(texts, 2), abs=1e-12)


def test_subset_equals_tokenizing_the_subset():
    texts = random_texts(50, vocab=15, seed=3)
    tokens = TokenizedCorpus.from_texts(texts)
    idx = np.array([0, 7, 7, 13, 49])
    sub_texts = [texts[i] for i in idx]
    for n in (1, 3):
        assert distinct_ratio(tokens.subset(idx), n) == distinct_ratio(
            TokenizedCorpus.from_texts(sub_texts), n
        )
    assert self_repetition(tokens.subset(idx)) == self_repetition(
        TokenizedCorpus.from_texts(sub_texts)
    )


def test_context_length_whitespace_is_mean_words():
    result = ContextLength(tokenizer="whitespace").compute(
        corpus_of(["a b", "a b c d"]), MetricContext()
    )
    assert result.value == 3.0 and result.tokens == 6


# --- reference package agreement (golden values recorded by scripts/record_golden_metrics.py) ---


@pytest.mark.parametrize("max_n", [1, 2, 4])
def test_ngram_diversity_matches_reference_when_crossing_documents(max_n):
    expected = GOLDEN["ngram_diversity_score"][f"num_n={max_n}"]
    tokens = TokenizedCorpus.from_texts(GOLDEN["texts"])
    ours = NgramDiversity(max_n=max_n, cross_documents=True).score(tokens)
    assert ours == pytest.approx(expected["exact"], abs=1e-6)
    assert round(ours, 3) == expected["rounded"]


def test_self_repetition_matches_reference():
    result = SelfRepetition().compute(corpus_of(GOLDEN["texts"]), MetricContext())
    assert result.value == pytest.approx(GOLDEN["self_repetition_score"]["n=4"], abs=1e-6)


def test_compression_ratio_differs_from_reference_only_by_its_second_gzip():
    texts = GOLDEN["texts"]
    reference = GOLDEN["compression_ratio"]["gzip"]["exact"]
    raw = " ".join(texts).encode()
    outer = io.BytesIO()  # the reference's construction: gzip.compress inside a named GzipFile
    with gzip.GzipFile("compressed.gz", "wb", fileobj=outer, mtime=0) as f:
        f.write(gzip.compress(raw, mtime=0))
    double = len(raw) / len(outer.getvalue())
    assert double == pytest.approx(
        reference, rel=2 / len(outer.getvalue())
    )  # ±1 byte of mtime noise
    ours = CompressionRatio().compute(corpus_of(texts), MetricContext()).value
    assert ours == gzip_ratio(texts, 9) > reference  # one pass: fewer bytes, a higher ratio


# --- params, registry and protocol ---------------------------------------------------------------


def test_registered_with_validated_params():
    assert {
        "context_length",
        "distinct_n",
        "ngram_diversity",
        "self_repetition",
        "compression_ratio",
    } <= set(available())
    assert create("distinct_n", n=3).params.n == 3
    with pytest.raises(ConfigError, match="distinct_n(.|\n)*nn"):
        create("distinct_n", nn=3)
    with pytest.raises(ConfigError, match="greater than or equal to 1"):
        DistinctN(n=0)
    with pytest.raises(ConfigError, match="level"):
        CompressionRatio(level=11)


@pytest.mark.parametrize(
    "metric",
    [
        DistinctN(n=2),
        NgramDiversity(),
        SelfRepetition(),
        CompressionRatio(),
        ContextLength(tokenizer="whitespace"),
    ],
    ids=lambda m: m.name,
)
def test_interval_brackets_value_and_is_deterministic(metric):
    corpus = corpus_of(random_texts(200, vocab=30, seed=1))
    first = metric.compute(corpus, MetricContext(seed=7, n_seeds=5))
    again = metric.compute(corpus, MetricContext(seed=7, n_seeds=5))
    other = metric.compute(corpus, MetricContext(seed=8, n_seeds=5))
    assert first.ci_low < first.value < first.ci_high
    assert (first.value, first.per_seed, first.ci_low) == (
        again.value,
        again.per_seed,
        again.ci_low,
    )
    # no sample_size: every seed reads the whole corpus (exact value); only the replicates move
    assert first.value == other.value and first.ci_low != other.ci_low
    assert first.n == 200 and first.seed == 7 and len(first.per_seed) == 5
    assert first.details["protocol"] == "subsample_mean+half_sample_ci"
    assert first.details["replicate_size"] == 100 and first.details["n_replicates"] == 200


@pytest.mark.parametrize("metric", CHEAP, ids=lambda m: m.name)
def test_sample_size_is_one_seeded_subsample_per_seed(metric):
    """Item 8: the value is the mean over the seeds of the metric on ``Corpus.sample(m, seed)``,
    the subsample every other metric (k-means, perplexity, cluster-agent) reads too."""
    corpus = corpus_of(random_texts(300, vocab=40, seed=2))
    ctx = MetricContext(seed=5, n_seeds=3, sample_size=60)
    result = metric.compute(corpus, ctx)
    alone = [
        metric.compute(corpus.sample(60, s), MetricContext(n_seeds=1)).value for s in ctx.seeds()
    ]
    assert result.per_seed == pytest.approx(alone, rel=1e-12)
    assert result.value == pytest.approx(np.mean(alone), rel=1e-12)
    assert result.n == 60 and result.details["corpus_size"] == 300


def test_corpora_of_different_sizes_compare_on_equal_subsamples():
    """Same source, 4x the documents: whole-corpus distinct-2 falls with size alone; on equal
    subsamples the two corpora agree within their intervals."""
    small = corpus_of(random_texts(100, vocab=60, seed=3))
    large = corpus_of(random_texts(400, vocab=60, seed=4))
    whole = [DistinctN().compute(c, MetricContext(n_seeds=3)).value for c in (small, large)]
    assert whole[0] - whole[1] > 0.1
    equal = [
        DistinctN().compute(c, MetricContext(n_seeds=3, sample_size=100)) for c in (small, large)
    ]
    assert abs(equal[0].value - equal[1].value) < 0.02
    assert equal[1].ci_low <= equal[0].value <= equal[1].ci_high


@pytest.mark.parametrize("metric", CHEAP, ids=lambda m: m.name)
def test_interval_width_does_not_depend_on_a_handful_of_seeds(metric):
    """Item 9: at the quickstart's n_seeds=2 a Student-t over the seeds multiplied the SD by 12.7;
    the half-sample replicates make the interval as tight as with 20 seeds."""
    corpus = corpus_of(random_texts(12, vocab=6, seed=6, length=(20, 60)))  # 4-grams repeat
    widths = []
    for n_seeds in (2, 20):
        r = metric.compute(corpus, MetricContext(n_seeds=n_seeds, sample_size=2000))
        widths.append(r.ci_high - r.ci_low)
    assert widths[1] > 0 and 0.8 < widths[0] / widths[1] < 1.25


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        DistinctN().compute(corpus_of([]), MetricContext())


def test_hashed_keys_count_long_ngrams_exactly():
    words = [f"w{i}" for i in range(40)]
    tokens = TokenizedCorpus.from_texts([" ".join(words * 3)])  # 40 words, n=16: 96 bits, hashed
    assert distinct_ratio(tokens, 16) == pytest.approx(40 / (120 - 15))
