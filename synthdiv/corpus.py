"""The corpus contract: documents ``{id, text, meta}``, read with validation and quarantine.

(Reading, validation, quarantine, digests and S3 are filled in by the corpus-IO work; the in-memory
``Corpus`` below is the contract every metric and stage codes against.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def digest_documents(ids: list[str], texts: list[str]) -> str:
    """Order-independent content hash of (id, text) pairs: reading shards in another order, or
    on another machine, gives the same digest."""
    acc = 0
    for doc_id, text in zip(ids, texts):
        h = hashlib.sha256(doc_id.encode() + b"\0" + text.encode()).digest()
        acc ^= int.from_bytes(h[:16], "big")
    return f"{acc:032x}"
