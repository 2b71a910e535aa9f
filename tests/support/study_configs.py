"""Building blocks of the small study configs the integration tests run."""

from __future__ import annotations

from typing import Any


def two_sample_generate(generator: dict[str, Any]) -> dict[str, Any]:
    """A study's ``generate`` block: one topic, two short samples, one prompt family."""
    return {
        "n_topics": 1,
        "generations_per_topic": 2,
        "family": "topic",
        "max_text_chars": 200,
        "generators": [generator],
        "output": {"shard_size": 2},
    }
