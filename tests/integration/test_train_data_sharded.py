"""Sharded pretraining data on real Ray: markers and resume, determinism across actors and
blocks, exact counts, the loader over shards, and a token store on S3 (moto)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from synthdiv.config import parse_config
from synthdiv.train.config import PretrainData
from synthdiv.train.data import load_tokenizer, prepare_pretrain_store
from synthdiv.train.packing import copies_of
from synthdiv.train.store import load_arrays, read_listing

pytestmark = pytest.mark.slow

WORDS = "the cat sat on a mat while dogs ran over green hills rivers flow into seas".split()
SEED = 11


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-file synthetic mixture (meta.source on each document) and a natural corpus whose
    third line is not JSON."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("corpora")

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))

    synth = root / "synth"
    synth.mkdir()
    for part in range(3):
        rows = [
            {"id": f"s{part}-{i}", "text": text(), "meta": {"source": f"family{i % 2}"}}
            for i in range(60)
        ]
        (synth / f"part-{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = [json.dumps({"id": f"n{i}", "text": text()}) for i in range(80)]
    lines.insert(2, '{"id": "broken", "text": ')
    (root / "natural.jsonl").write_text("\n".join(lines) + "\n")
    return {"synth": synth, "natural": root / "natural.jsonl"}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(None)


def data_config(corpora: dict[str, Path], **overrides) -> PretrainData:
    return parse_config(
        {
            "corpora": [
                {"corpus": {"path": str(corpora["synth"])}, "target_tokens": 5000},
                {"corpus": {"path": str(corpora["natural"])}, "weight": 0.5, "name": "web"},
            ],
            "seq_len": 16,
            "shard_tokens": 1500,
            "tokenize_batch_size": 32,
            **overrides,
        },
        PretrainData,
    )


def prepare(data: PretrainData, tokenizer, uri: Path) -> dict:
    return prepare_pretrain_store(
        data,
        tokenizer,
        SEED,
        str(uri),
        recipe="r",
        quarantine_dir=str(uri.parent / f"{uri.name}-quarantine"),
    )


def shard_digests(uri: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(uri.glob("input_ids-*.npy"))
    }


@contextlib.contextmanager
def block_size(n_bytes: int) -> Iterator[None]:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    old = ctx.target_max_block_size
    ctx.target_max_block_size = n_bytes
    try:
        yield
    finally:
        ctx.target_max_block_size = old


@pytest.fixture(scope="module")
def store(ray_local, corpora, tokenizer, tmp_path_factory) -> tuple[Path, dict]:
    uri = tmp_path_factory.mktemp("stores") / "base"
    return uri, prepare(data_config(corpora, tokenize_actors=2), tokenizer, uri)


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_shards_are_marked_listed_and_the_driver_gets_only_metadata(store, tokenizer):
    uri, summary = store
    assert _plain(summary) and len(json.dumps(summary)) < 10_000  # no token arrays came back
    listing = read_listing(str(uri))
    assert summary["shards"] == len(listing["shards"]) >= 3
    for shard in listing["shards"]:
        name = f"input_ids-{shard['index']:05d}.npy"
        assert (uri / f"{name}.done").is_file()
        assert np.load(uri / name, mmap_mode="r").shape == (shard["rows"], 16)
    rows = load_arrays(str(uri))["input_ids"]
    assert len(rows) == summary["rows"] == listing["rows"]
    assert summary["tokens"] == summary["rows"] * 16
    assert np.asarray(rows).dtype == np.uint16  # vocab 49152 fits
    assert set(summary) >= {"corpora", "rows", "tokens", "tokens_by_source", "digest", "seq_len"}


def test_rejects_are_counted_and_quarantined(store, corpora):
    uri, summary = store
    natural = summary["corpora"][1]
    n_lines = len(corpora["natural"].read_text().splitlines())
    assert natural["documents"] + natural["rejected"] == n_lines
    assert natural["rejected"] == 1 and natural["name"] == "web"
    quarantined = [
        line
        for f in (uri.parent / "base-quarantine").rglob("*.json*")
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    assert len(quarantined) == 1 and "broken" in quarantined[0]


def test_weighting_hits_the_target_and_is_reported_exactly(store, corpora, tokenizer):
    _uri, summary = store
    docs = [
        json.loads(line)
        for f in sorted(corpora["synth"].glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    lengths = [len(tokenizer(d["text"], add_special_tokens=False)["input_ids"]) + 1 for d in docs]
    synth = summary["corpora"][0]
    assert synth["natural_tokens"] == sum(lengths) and synth["target_tokens"] == 5000
    ratio = 5000 / sum(lengths)
    expected = sum(
        copies_of(SEED, 0, d["id"], ratio) * n for d, n in zip(docs, lengths, strict=True)
    )
    assert synth["selected_tokens"] == expected  # exact, summed over the shards
    assert abs(expected - 5000) < 0.05 * 5000  # and its expectation is the target
    web = summary["corpora"][1]
    assert web["target_tokens"] == round(0.5 * web["natural_tokens"])
    assert abs(web["selected_tokens"] - web["target_tokens"]) < 0.25 * web["target_tokens"]
    by_source = summary["tokens_by_source"]
    assert set(by_source) == {"family0", "family1", "web"}
    assert sum(by_source.values()) == synth["selected_tokens"] + web["selected_tokens"]
    assert by_source["web"] == web["selected_tokens"]


def test_same_shards_whatever_the_actors_blocks_or_executor(store, corpora, tokenizer, tmp_path):
    uri, summary = store
    with block_size(2048):  # many small blocks instead of one per file
        other = prepare(
            data_config(corpora, tokenize_actors=1, tokenize_batch_size=5),
            tokenizer,
            tmp_path / "small-blocks",
        )
    in_process = prepare(
        data_config(corpora, tokenize_with_ray=False), tokenizer, tmp_path / "in-process"
    )
    assert shard_digests(tmp_path / "small-blocks") == shard_digests(uri)
    assert shard_digests(tmp_path / "in-process") == shard_digests(uri)
    assert other == in_process == summary


def test_a_rerun_writes_only_the_unfinished_shard(corpora, tokenizer, tmp_path, ray_local):
    uri = tmp_path / "resume"
    first = prepare(data_config(corpora), tokenizer, uri)
    before = {p.name: p.stat().st_mtime_ns for p in uri.iterdir()}
    digests = shard_digests(uri)
    (uri / "input_ids-00001.npy.done").unlink()  # killed after the rename, before the marker
    (uri / "input_ids-00002.npy").unlink()  # killed mid-write: a torn temp file, no shard
    (uri / "input_ids-00002.npy.done").unlink()
    (uri / ".tmp-0123abcd-input_ids-00002.npy").write_bytes(b"half a shard")
    again = prepare(data_config(corpora), tokenizer, uri)
    after = {p.name: p.stat().st_mtime_ns for p in uri.iterdir()}
    changed = {n for n in after if before.get(n) != after[n]} - {"tokenizer"}
    assert changed == {
        "input_ids-00001.npy",
        "input_ids-00001.npy.done",
        "input_ids-00002.npy",
        "input_ids-00002.npy.done",
        "_SUCCESS",
        "meta.json",
    }
    assert not list(uri.glob(".tmp-*")) and shard_digests(uri) == digests and again == first
    # Markers of another plan (here: another seed) are not reused.
    other = prepare_pretrain_store(data_config(corpora), tokenizer, SEED + 1, str(uri), "r")
    assert shard_digests(uri) != digests and other["digest"] == first["digest"]


def test_a_worker_downloads_only_the_shards_it_reads_from_s3_once(
    s3_bucket, ray_local, corpora, tokenizer, tmp_path
):
    import s3fs

    from synthdiv.train.store import BatchSampler

    s3fs.S3FileSystem.clear_instance_cache()  # this module's moto endpoint, not a cached one
    uri = f"{s3_bucket}/stores/mix"
    summary = prepare_pretrain_store(
        data_config(corpora, tokenize_with_ray=False), tokenizer, SEED, uri, "r"
    )
    assert summary["shards"] >= 3
    cache = tmp_path / "cache"
    rows = load_arrays(uri, cache_dir=str(cache))["input_ids"]
    assert len(rows) == summary["rows"] and not list(cache.glob("input_ids-*"))  # nothing yet

    # Rank 1 of 2, first micro batch: only the shards holding those rows come down.
    sampler = BatchSampler(len(rows), 4, 2, 2, 1, SEED)
    wanted = sampler.rows(0, 0)
    batch = rows[wanted]
    needed = {f"input_ids-{s:05d}.npy" for s in np.unique(rows.locate(wanted)[0])}
    assert {p.name for p in cache.glob("input_ids-*")} == needed
    assert len(needed) < summary["shards"]
    assert isinstance(rows.shard(int(rows.locate(wanted)[0][0])), np.memmap)

    stamps = {p.name: p.stat().st_mtime_ns for p in cache.glob("input_ids-*")}
    again = load_arrays(uri, cache_dir=str(cache))["input_ids"]  # a restarted worker
    assert np.array_equal(again[wanted], batch)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("input_ids-*")} == stamps
    local = tmp_path / "local-copy"
    s3fs.S3FileSystem().get(uri.removeprefix("s3://") + "/", str(local) + "/", recursive=True)
    assert np.array_equal(np.asarray(again), np.asarray(load_arrays(str(local))["input_ids"]))
