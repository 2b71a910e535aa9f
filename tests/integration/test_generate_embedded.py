"""One small real generation on the packaged SmolLM2-135M (llama.cpp, grammar-constrained JSON),
through the CLI: config file in, a finished corpus that synthdiv.corpus reads, out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthdiv.cli import app
from synthdiv.config import CorpusConfig
from synthdiv.corpus import read_corpus

pytestmark = pytest.mark.slow


def test_cli_generates_a_small_corpus_on_the_packaged_model(runtime, smollm2_gguf, tmp_path):
    config = {
        "runtime": runtime.model_dump(),
        "family": "topic_style_persona",
        "n_topics": 1,
        "generations_per_topic": 2,
        "max_text_chars": 160,  # small answers: the test is about plumbing, not prose
        "personas_per_prompt": 2,
        # one llama.cpp thread: spin-waiting thread pools crawl on a shared, oversubscribed CI box
        "generators": [
            {
                "llm": {
                    "backend": "embedded",
                    "temperature": 0.7,
                    "max_tokens": 700,
                    "max_retries": 1,
                    "engine_kwargs": {"n_threads": 1},
                }
            }
        ],
        "output": {"shard_size": 1, "format": "parquet"},
        "quality": {
            "repetition": False
        },  # as the quickstart: most 135M samples fail Gopher's rules
    }
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["generate", "--config", str(path)])
    corpus_dir = next(Path(runtime.storage_uri, "generate").glob("*/corpus"))
    if result.exit_code != 0:  # the 135M model may reject both samples (its CPU's numerics decide)
        message = str(result.exception)
        assert "generate produced no valid samples: 2 requested" in message, result.output
        rejects = [
            json.loads(line)
            for f in corpus_dir.parent.glob("rejects/*.jsonl")
            for line in f.read_text().splitlines()
        ]
        assert len(rejects) == 2 and all(r["error"] for r in rejects)
        return
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["n_requested"] == 2 == counts["n_ok"] + counts["n_rejected"]
    assert counts["completion_tokens"] > 0
    rejects = [
        json.loads(line)
        for f in corpus_dir.parent.glob("rejects/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert len(rejects) == counts["n_rejected"] and all("raw" in r for r in rejects)
    assert counts["n_ok"] > 0  # zero valid samples fails the stage (the branch above)
    if counts["n_ok"]:
        corpus, _ = read_corpus(CorpusConfig(path=str(corpus_dir)))
        meta = corpus.metas[0]
        assert meta["generator_model"].startswith("gguf:SmolLM2")
        assert meta["family"] == "topic_style_persona" and len(meta["personas"]) == 2
        for passage in meta["sample"]["passages"]:
            assert passage["text"] in corpus.texts[0]
