"""Lexical baselines (paper Table 1): context length, distinct-n, n-gram diversity,
self-repetition and compression ratio.

Every n-gram metric tokenizes on whitespace (``str.split()``), the tokenization of the
``diversity`` reference package, and works on integer n-gram keys held in numpy arrays: counting
is a sort, never a pairwise loop, so cost grows about linearly with documents. Each metric
reports the mean over the seeds' fixed-size subsamples with a half-sample interval
(:func:`synthdiv.metrics.protocol.subsample_with_half_sample_ci`). Formulas, directions and the
differences from the reference package are in docs/metrics.md.
"""

from __future__ import annotations

import gzip
from array import array
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from synthdiv.config import StrictModel
from synthdiv.corpus import Corpus
from synthdiv.metrics.base import MetricContext, MetricResult, register
from synthdiv.metrics.protocol import ConfiguredMetric, subsample_with_half_sample_ci

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class TokenizedCorpus:
    """Whitespace tokens of every document as integer ids, concatenated; ``offsets[i]`` is where
    document ``i`` starts (``offsets[-1]`` is the total). ``vocab_size`` bounds the ids."""

    ids: np.ndarray
    offsets: np.ndarray
    vocab_size: int

    @classmethod
    def from_texts(cls, texts: list[str]) -> TokenizedCorpus:
        vocab: defaultdict[str, int] = defaultdict()
        vocab.default_factory = vocab.__len__  # unseen token -> next id, at C speed
        flat = array("q")
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            flat.extend(map(vocab.__getitem__, text.split()))
            offsets[i + 1] = len(flat)
        ids = np.frombuffer(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)
        return cls(ids, offsets, max(1, len(vocab)))

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, docs: np.ndarray) -> TokenizedCorpus:
        """The documents ``docs`` (in that order) as a new tokenized corpus."""
        lengths = self.lengths()[docs]
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # position k of the output reads input position starts[doc(k)] + (k - offsets[doc(k)])
        shift = np.repeat(self.offsets[docs] - offsets[:-1], lengths)
        return TokenizedCorpus(self.ids[np.arange(offsets[-1]) + shift], offsets, self.vocab_size)

    def joined(self) -> TokenizedCorpus:
        """All documents as one token stream, so n-grams cross document boundaries."""
        return TokenizedCorpus(
            self.ids, np.array([0, len(self.ids)], dtype=np.int64), self.vocab_size
        )

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, doc)`` for every n-gram inside a document. Keys are exact bit-packed ids when
        ``n`` ids fit in 64 bits, else a 64-bit mix (collision odds ~N²/2⁶⁵, negligible)."""
        inside = self._window_inside_doc(n)
        starts = np.flatnonzero(inside)
        return self._window_keys(n)[inside], np.searchsorted(self.offsets, starts, side="right") - 1

    def ngram_keys(self, n: int) -> np.ndarray:
        """The keys of :meth:`ngrams` alone, in the same order."""
        return self._window_keys(n)[self._window_inside_doc(n)]

    def _window_keys(self, n: int) -> np.ndarray:
        """Keys of every window of the token stream, document ends ignored.

        Built from contiguous slices (no index arrays), in chunks that stay in cache; the caller
        drops the windows that cross a document end. This keeps the cost linear in tokens up to
        corpora far beyond the cache."""
        windows = max(0, len(self.ids) - n + 1)
        bits = max(1, (self.vocab_size - 1).bit_length())
        keys = np.empty(windows, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for lo in range(0, windows, _CHUNK):
                hi = min(lo + _CHUNK, windows)
                stream = self.ids[lo : hi + n - 1].astype(np.uint64)
                out = keys[lo:hi]
                out[:] = stream[: hi - lo]
                for j in range(1, n):
                    token = stream[j : j + hi - lo]
                    if bits * n <= 64:
                        out |= token << np.uint64(bits * j)
                    else:
                        out[:] = _mix64(out * np.uint64(0x100000001B3) + token + np.uint64(1))
        return keys

    def _window_inside_doc(self, n: int) -> np.ndarray:
        """Over every window start of the stream: True where the window ends inside its document.
        The last n-1 starts before each document end cross it (also for documents shorter than
        n-1: those starts are already past the previous document's limit)."""
        windows = max(0, len(self.ids) - n + 1)
        inside = np.ones(windows, dtype=bool)
        ends = self.offsets[1:]
        for back in range(1, n):
            crossing = ends - back
            inside[crossing[(crossing >= 0) & (crossing < windows)]] = False
        return inside


_CHUNK = 1 << 16  # window starts per chunk: a few 512 KiB arrays, in L2


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads structured ids over all 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (x ^ (x >> np.uint64(31))) & _MASK64


def distinct_ratio(tokens: TokenizedCorpus, n: int) -> float:
    """Unique n-grams / total n-grams, pooled over documents; 0.0 when there are no n-grams."""
    if n == 1 and tokens.ids.size:  # unigram keys are the token ids: a linear count, no sort
        return float(np.count_nonzero(np.bincount(tokens.ids)) / tokens.ids.size)
    keys = tokens.ngram_keys(n)
    return float(count_unique(keys) / keys.size) if keys.size else 0.0


def count_unique(keys: np.ndarray) -> int:
    """Distinct values by sorting (numpy's hash-based ``unique`` is several times slower here)."""
    ordered = np.sort(keys)
    return int(ordered.size > 0) + int(np.count_nonzero(ordered[1:] != ordered[:-1]))


def self_repetition(tokens: TokenizedCorpus, n: int = 4) -> float:
    """Mean over documents of ln(1 + Σ_{g ∈ unique n-grams of d} #{other documents containing g}).

    The inverted index n-gram → document frequency is one sort over (n-gram, document) pairs,
    done per hash partition of the n-grams: every pair of one n-gram lands in the same partition,
    and partitions of ~2¹⁷ pairs sort in cache, so the cost stays near-linear in the corpus."""
    keys, docs = tokens.ngrams(n)
    sums = np.zeros(tokens.n_docs)
    bits = min(16, (keys.size // _PARTITION).bit_length())
    if bits == 0:
        _add_other_document_counts(keys, docs, sums)
        return float(np.mean(np.log1p(sums)))
    part = (_mix64(keys) >> np.uint64(64 - bits)).astype(np.uint16)
    order = np.argsort(part, kind="stable")  # a radix sort; keeps docs ascending in each part
    keys, docs = keys[order], docs[order]
    stop = np.cumsum(np.bincount(part, minlength=1 << bits))
    for lo, hi in zip(np.r_[0, stop[:-1]], stop, strict=True):
        _add_other_document_counts(keys[lo:hi], docs[lo:hi], sums)
    return float(np.mean(np.log1p(sums)))


_PARTITION = 1 << 17  # (n-gram, document) pairs per partition: 2 MiB of keys, cache-sized


def _add_other_document_counts(keys: np.ndarray, docs: np.ndarray, sums: np.ndarray) -> None:
    """``sums[d] +=`` Σ over d's unique n-grams (among ``keys``) of the other documents with it.
    ``docs`` must ascend, so a stable sort by key gives (key, doc) order."""
    if not keys.size:
        return
    order = np.argsort(keys, kind="stable")
    keys, docs = keys[order], docs[order]
    first = np.ones(keys.size, dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])
    keys, docs = keys[first], docs[first]  # unique (n-gram, document) pairs, key-sorted
    run_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    doc_freq = np.diff(np.r_[run_start, keys.size])
    others = np.repeat(doc_freq - 1, doc_freq)  # documents other than this one with the n-gram
    sums += np.bincount(docs, weights=others, minlength=sums.size)


def gzip_ratio(texts: list[str], level: int) -> float:
    """UTF-8 bytes of the space-joined texts / bytes after one deterministic gzip pass."""
    raw = " ".join(texts).encode("utf-8")
    return len(raw) / len(gzip.compress(raw, compresslevel=level, mtime=0))


def whitespace_tokens(corpus: Corpus, ctx: MetricContext) -> TokenizedCorpus:
    """Tokenize once per corpus and share the result between the n-gram metrics."""
    key = ("whitespace_tokens", corpus.digest, hash(tuple(corpus.ids)))
    if key not in ctx.resources:
        ctx.resources[key] = TokenizedCorpus.from_texts(corpus.texts)
    return ctx.resources[key]


class ContextLengthParams(StrictModel):
    tokenizer: str = Field(
        "smollm2",
        description="'smollm2' (packaged SmolLM2 tokenizer), 'whitespace' (str.split, cheap) or "
        "a Hugging Face tokenizer id/path.",
    )
    batch_size: int = Field(1000, gt=0, description="Documents per tokenizer call.")


@register
class ContextLength(ConfiguredMetric):
    """Mean tokens per document (tokenizer configurable; default SmolLM2's)."""

    name: ClassVar[str] = "context_length"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = True  # a convention: longer documents carry more
    Params = ContextLengthParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        lengths = self.token_counts(corpus.texts, ctx).astype(float)
        details = {"tokenizer": self.params.tokenizer, "total_tokens": int(lengths.sum())}
        result = subsample_with_half_sample_ci(
            self, len(corpus), lambda idx: lengths[idx].mean(), ctx, details
        )
        result.tokens = int(lengths.sum())
        return result

    def token_counts(self, texts: list[str], ctx: MetricContext) -> np.ndarray:
        if self.params.tokenizer == "whitespace":
            return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
        tokenizer = _hf_tokenizer(self.params.tokenizer, ctx)
        counts = []
        for start in range(0, len(texts), self.params.batch_size):
            batch = tokenizer(
                texts[start : start + self.params.batch_size], add_special_tokens=False
            )
            counts.extend(len(ids) for ids in batch["input_ids"])
        return np.asarray(counts, dtype=np.int64)


def _hf_tokenizer(name: str, ctx: MetricContext) -> Any:
    key = ("hf_tokenizer", name)
    if key not in ctx.resources:
        from transformers import AutoTokenizer

        from synthdiv.models import resolve_causal_lm

        path = resolve_causal_lm(None if name == "smollm2" else name)
        try:
            ctx.resources[key] = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as err:  # missing files / not a tokenizer directory
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(
                f"context_length: cannot load tokenizer {name!r} ({path}): {reason}"
            ) from None
    return ctx.resources[key]


class DistinctNParams(StrictModel):
    n: int = Field(2, ge=1, le=16, description="n-gram length.")


@register
class DistinctN(ConfiguredMetric):
    """Distinct-n: unique n-grams / total n-grams over all documents (n-grams stay inside
    documents)."""

    name: ClassVar[str] = "distinct_n"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = True
    Params = DistinctNParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        tokens = whitespace_tokens(corpus, ctx)
        n = self.params.n
        return subsample_with_half_sample_ci(
            self, len(corpus), lambda idx: distinct_ratio(tokens.subset(idx), n), ctx
        )


class NgramDiversityParams(StrictModel):
    max_n: int = Field(
        4, ge=1, le=16, description="Sum distinct-n for n = 1..max_n (reference: 4)."
    )
    cross_documents: bool = Field(
        False,
        description="True: n-grams may span the boundary of consecutive documents, as in the "
        "`diversity` package (its exact definition). False: n-grams stay inside documents.",
    )


@register
class NgramDiversity(ConfiguredMetric):
    """N-gram diversity: Σ_{n=1..max_n} distinct-n (range 0..max_n), the `diversity` package's
    score."""

    name: ClassVar[str] = "ngram_diversity"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = True
    Params = NgramDiversityParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        tokens = whitespace_tokens(corpus, ctx)
        return subsample_with_half_sample_ci(
            self, len(corpus), lambda idx: self.score(tokens.subset(idx)), ctx
        )

    def score(self, tokens: TokenizedCorpus) -> float:
        if self.params.cross_documents:
            tokens = tokens.joined()
        return sum(distinct_ratio(tokens, n) for n in range(1, self.params.max_n + 1))


class SelfRepetitionParams(StrictModel):
    n: int = Field(4, ge=1, le=16, description="n-gram length (paper and reference: 4).")


@register
class SelfRepetition(ConfiguredMetric):
    """Self-repetition: mean over documents of ln(1 + Σ over its unique 4-grams of other
    documents containing it)."""

    name: ClassVar[str] = "self_repetition"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = False
    Params = SelfRepetitionParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        tokens = whitespace_tokens(corpus, ctx)
        n = self.params.n
        return subsample_with_half_sample_ci(
            self, len(corpus), lambda idx: self_repetition(tokens.subset(idx), n), ctx
        )


class CompressionRatioParams(StrictModel):
    level: int = Field(9, ge=1, le=9, description="gzip compression level (reference: 9).")


@register
class CompressionRatio(ConfiguredMetric):
    """Compression ratio: bytes of the space-joined corpus / bytes after gzip (higher = more
    redundant)."""

    name: ClassVar[str] = "compression_ratio"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = False
    Params = CompressionRatioParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        texts, level = corpus.texts, self.params.level
        return subsample_with_half_sample_ci(
            self, len(corpus), lambda idx: gzip_ratio([texts[i] for i in idx], level), ctx
        )
