"""Exact (hash) and near-duplicate (MinHash LSH, datasketch) detection over a corpus.

Greedy in document order: a document is a duplicate when it matches an earlier *kept* document.
That makes filtering idempotent (running it again on the kept set drops nothing), which matters
because a resumed job may dedup a corpus that was already filtered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

from synthdiv.generate.config import DedupConfig

_WORD = re.compile(r"\w+")


@dataclass
class DedupReport:
    n_docs: int
    exact_duplicates: list[int] = field(default_factory=list)  # indices, beyond the first copy
    near_duplicates: list[int] = field(default_factory=list)  # indices, exact ones excluded

    @property
    def exact_rate(self) -> float:
        return len(self.exact_duplicates) / self.n_docs if self.n_docs else 0.0

    @property
    def near_rate(self) -> float:
        """Share of documents that duplicate an earlier one exactly or nearly."""
        total = len(self.exact_duplicates) + len(self.near_duplicates)
        return total / self.n_docs if self.n_docs else 0.0

    def drop(self, mode: str) -> set[int]:
        if mode == "exact":
            return set(self.exact_duplicates)
        if mode == "near":
            return set(self.exact_duplicates) | set(self.near_duplicates)
        return set()

    def metrics(self, prefix: str = "dedup.") -> dict[str, float]:
        return {
            f"{prefix}exact_rate": self.exact_rate,
            f"{prefix}near_rate": self.near_rate,
            f"{prefix}exact_count": float(len(self.exact_duplicates)),
            f"{prefix}near_count": float(len(self.near_duplicates)),
        }


def normalized(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def minhash(text: str, cfg: DedupConfig) -> MinHash:
    words = _WORD.findall(text.lower())
    n = cfg.shingle_words
    shingles = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    mh = MinHash(num_perm=cfg.num_perm, seed=1)
    mh.update_batch([s.encode() for s in shingles])
    return mh


def find_duplicates(texts: list[str], cfg: DedupConfig) -> DedupReport:
    report = DedupReport(n_docs=len(texts))
    seen: set[str] = set()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    for i, text in enumerate(texts):
        key = hashlib.sha256(normalized(text).encode()).hexdigest()
        if key in seen:
            report.exact_duplicates.append(i)
            continue
        seen.add(key)
        mh = minhash(text, cfg)
        if lsh.query(mh):
            report.near_duplicates.append(i)
            continue
        lsh.insert(str(i), mh)
    return report
