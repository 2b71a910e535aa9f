"""The corpus contract: documents ``{id, text, meta}``, read with validation and quarantine.

Sources: a JSONL or Parquet file, or a directory of them (plain, or shards written by
:func:`write_corpus` / :class:`synthdiv.shards.ShardedOutput`), on local disk or ``s3://`` (any
fsspec filesystem). Every input row is either a document or a quarantined reject with a reason
code, so ``n_in == n_ok + n_rejected`` always holds. :func:`read_corpus` works in memory without
Ray; :func:`read_corpus_dataset` runs the same validation as a Ray Data pipeline for big inputs.

Modules: :mod:`.format` (row rules, reject reasons, digests), :mod:`.source` (files and raw rows),
:mod:`.read` (:class:`Corpus`, :func:`read_corpus`), :mod:`.dataset` (the Ray Data reader) and
:mod:`.write` (shards, quarantine). Callers import the public names from this package.
"""

from synthdiv.corpus.dataset import read_corpus_dataset
from synthdiv.corpus.format import (
    MANIFEST,
    REASONS,
    CorpusError,
    digest_documents,
)
from synthdiv.corpus.read import Corpus, ValidationReport, example_corpus_path, read_corpus
from synthdiv.corpus.source import CorpusSource, iter_raw_rows, resolve_source
from synthdiv.corpus.write import write_corpus

__all__ = [
    "MANIFEST",
    "REASONS",
    "Corpus",
    "CorpusError",
    "CorpusSource",
    "ValidationReport",
    "digest_documents",
    "example_corpus_path",
    "iter_raw_rows",
    "read_corpus",
    "read_corpus_dataset",
    "resolve_source",
    "write_corpus",
]
