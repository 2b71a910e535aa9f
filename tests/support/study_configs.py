"""Building blocks of the small study configs the integration tests run."""

from __future__ import annotations

import json
from typing import Any

from synthdiv.corpus import example_corpus_path


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


def public_set(path) -> str:
    """A small 'public synthetic set': 24 short JSONL documents on four repeated themes."""
    themes = ["tides follow the moon", "bees dance to share", "rust needs water", "ice floats"]
    rows = [
        {"id": f"pub-{i}", "text": f"Fact {i}: {themes[i % 4]}, as every textbook says."}
        for i in range(24)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def external_study(runtime: dict, public: str) -> dict:
    return {
        "runtime": runtime,
        "name": "external",
        "corpora": [
            {"name": "real_only", "path": example_corpus_path()},
            {"name": "public", "path": public},
        ],
        "score": {"n_seeds": 1, "metrics": {"distinct_n": {}}},
        "pretrain": {
            "data": {"seq_len": 32, "tokenize_with_ray": False},
            "train": {
                "schedule": {"global_batch_size": 2, "micro_batch_size": 2, "max_steps": 2},
                "scale": {"num_workers": 1},
                "checkpoint": {"every_steps": 2},
            },
        },
        "sft": None,
        "eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 4},
        "correlate": {"n_boot": 100},
    }
