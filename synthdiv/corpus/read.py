"""The in-memory corpus (:class:`Corpus`) and :func:`read_corpus`: every row validated, each reject
quarantined with its reason, so ``n_in == n_ok + n_rejected``."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.corpus.format import (
    REASONS,
    CorpusError,
    Reject,
    digest_documents,
    parse_row,
    reject_record,
)
from synthdiv.corpus.source import iter_raw_rows, one_line_error, resolve_source
from synthdiv.corpus.write import Quarantine, quarantine_uri

log = logging.getLogger(__name__)


def example_corpus_path() -> str:
    """The packaged example: 240 short documents, 20 on each of 12 distinct topics (meta.topic)."""
    return str(resources.files("synthdiv") / "data" / "example_corpus.jsonl")


@dataclass
class Corpus:
    """Validated documents held in memory, in a stable order. ``digest`` is a content hash."""

    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.texts):
            raise ValueError("ids and texts differ in length")
        if not self.metas:
            self.metas = [{} for _ in self.ids]
        if not self.digest:
            self.digest = digest_documents(self.ids, self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, n: int, seed: int) -> Corpus:
        """``n`` documents drawn without replacement (all of them when ``n >= len``), seeded."""
        if n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self.take(idx.tolist())

    def take(self, indices: list[int]) -> Corpus:
        return Corpus(
            ids=[self.ids[i] for i in indices],
            texts=[self.texts[i] for i in indices],
            metas=[self.metas[i] for i in indices],
            source=self.source,
        )

    def documents(self) -> Iterator[dict[str, Any]]:
        """The documents as ``{id, text, meta}`` dicts, e.g. for :func:`write_corpus`."""
        for doc_id, text, meta in zip(self.ids, self.texts, self.metas, strict=True):
            yield {"id": doc_id, "text": text, "meta": meta}


@dataclass
class ValidationReport:
    """What happened to every input row. ``n_over_limit``: valid rows past ``limit`` (Ray path)."""

    n_in: int
    n_ok: int
    n_rejected: int
    reasons: dict[str, int]
    quarantine_path: str | None
    n_over_limit: int = 0
    digest: str = ""  # of the valid documents; set by read_corpus_dataset (Corpus has its own)
    examples: list[dict[str, Any]] = field(default_factory=list)  # when nothing is written

    def __post_init__(self) -> None:
        assert self.n_in == self.n_ok + self.n_rejected + self.n_over_limit, self
        assert sum(self.reasons.values()) == self.n_rejected, self

    def metrics(self) -> dict[str, float]:
        out = {
            "corpus.n_in": self.n_in,
            "corpus.n_ok": self.n_ok,
            "corpus.n_rejected": self.n_rejected,
        }
        out.update({f"corpus.rejected.{r}": self.reasons.get(r, 0) for r in REASONS})
        return {k: float(v) for k, v in out.items()}


def read_corpus(
    cfg: CorpusConfig, quarantine_dir: str | None = None
) -> tuple[Corpus, ValidationReport]:
    """Read and validate ``cfg.path`` into memory. Rejects go to ``cfg.quarantine_path`` or
    ``<quarantine_dir>/quarantine.jsonl``; with neither, the first few are kept in the report."""
    source = resolve_source(cfg)
    quarantine = Quarantine(quarantine_uri(cfg, quarantine_dir))
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    seen: set[str] = set()
    reasons: Counter[str] = Counter()
    n_in = 0
    rows = (row for file_uri in source.files for row in iter_raw_rows(file_uri, source.fmt))
    try:
        for row in rows:
            n_in += 1
            try:
                doc = parse_row(row, cfg)
                if doc["id"] in seen:
                    raise Reject("duplicate_id", f"id {doc['id']!r} seen before")
            except Reject as rej:
                reasons[rej.reason] += 1
                quarantine.add(reject_record(row, rej.reason, str(rej)))
                continue
            seen.add(doc["id"])
            ids.append(doc["id"])
            texts.append(doc["text"])
            metas.append(doc["meta"])
            if cfg.limit is not None and len(ids) >= cfg.limit:
                break
    except (OSError, ValueError) as err:
        quarantine.discard()
        raise CorpusError(f"cannot read {source.uri}: {one_line_error(err)}") from None
    except BaseException:
        quarantine.discard()
        raise
    quarantine.close()
    report = ValidationReport(
        n_in,
        len(ids),
        sum(reasons.values()),
        dict(reasons),
        quarantine.uri,
        examples=quarantine.examples,
    )
    if reasons:
        log.warning(
            "corpus %s: %d of %d rows rejected %s", cfg.path, report.n_rejected, n_in, dict(reasons)
        )
    if not ids:
        raise CorpusError(
            f"empty corpus: {cfg.path} has no valid documents "
            f"({n_in} rows read, rejected: {dict(reasons) or 'none'})"
        )
    return Corpus(ids, texts, metas, source=cfg.path), report
