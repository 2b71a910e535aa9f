"""Packing, mixture weighting, the deterministic sampler, token stores and the LR schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from synthdiv.train.optim import lr_factor
from synthdiv.train.packing import COPY_SCHEMA, PackPlan, copies_of, pack, pack_shard, shard_of
from synthdiv.train.store import (
    BatchSampler,
    finish_store,
    load_arrays,
    store_complete,
    write_shard,
    write_store,
)

EOS = 0


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir

    return AutoTokenizer.from_pretrained(smollm2_hf_dir())


def test_pack_separates_documents_with_eos_and_drops_the_tail():
    flat, lengths = np.array([5, 6, 7, 8, 9, 10]), np.array([3, 2, 1])
    rows = pack(flat, lengths, EOS, seq_len=4, dtype="uint16")
    assert rows.tolist() == [[5, 6, 7, 0], [8, 9, 0, 10]]  # the last EOS does not fill a row
    assert rows.dtype == np.uint16
    assert pack(np.array([], np.int32), np.array([], np.int64), EOS, 4, "uint32").shape == (0, 4)


@pytest.mark.parametrize("ratio", [0.25, 1.0, 2.6])
def test_copies_average_the_ratio_and_depend_only_on_the_key(ratio):
    ids = [f"doc{i}" for i in range(20_000)]
    copies = np.array([copies_of(7, 1, d, ratio) for d in ids])
    assert set(np.unique(copies)) <= {int(ratio), int(ratio) + 1}
    assert copies.mean() == pytest.approx(ratio, abs=0.02)
    assert [copies_of(7, 1, d, ratio) for d in ids[:50]] == copies[:50].tolist()  # stable
    if ratio % 1:  # another seed or corpus draws other documents
        assert [copies_of(8, 1, d, ratio) for d in ids[:200]] != copies[:200].tolist()
        assert [copies_of(7, 2, d, ratio) for d in ids[:200]] != copies[:200].tolist()


def test_shards_are_filled_evenly():
    counts = np.bincount(
        [shard_of(0, 0, f"d{i}", c, 8) for i in range(4000) for c in range(2)], minlength=8
    )
    assert counts.min() > 0.85 * counts.mean()


def _copies(n: int) -> pa.Table:
    rng = np.random.default_rng(1)
    tokens = [rng.integers(1, 500, rng.integers(1, 9)).tolist() for _ in range(n)]
    return pa.table(
        {
            "shard": [3] * n,
            "corpus": [i % 2 for i in range(n)],
            "id": [f"d{i // 2}" for i in range(n)],
            "copy": [0] * n,
            "source": ["a" if i % 3 else "b" for i in range(n)],
            "tokens": tokens,
        },
        schema=COPY_SCHEMA,
    )


def _plan(**kw) -> PackPlan:
    base = {
        "store_uri": "unused",
        "key": "k",
        "seed": 5,
        "seq_len": 8,
        "eos_id": EOS,
        "dtype": "uint16",
        "n_shards": 4,
        "ratios": (1.0, 1.0),
        "labels": ("a", "b"),
        "pending": frozenset({3}),
    }
    return PackPlan(**{**base, **kw})


def test_pack_shard_ignores_arrival_order_and_reports_exact_counts():
    table = _copies(40)
    rows, marker = pack_shard(table, _plan(), 3)
    shuffled = table.take(pa.array(np.random.default_rng(2).permutation(40)))
    again, marker2 = pack_shard(shuffled, _plan(), 3)
    assert np.array_equal(rows, again) and marker == marker2
    lengths = [len(t) + 1 for t in table["tokens"].to_pylist()]  # EOS after each document
    assert sum(marker["tokens"]) == sum(lengths) == sum(marker["by_source"].values())
    assert marker["copies"] == [20, 20] and marker["rows"] == sum(lengths) // 8
    assert (rows == EOS).sum() <= 40
    other, _ = pack_shard(table, _plan(seed=6), 3)  # the in-shard shuffle is seeded
    assert not np.array_equal(rows, other)


def test_loader_maps_global_rows_across_shards_including_an_empty_one(tmp_path, tokenizer):
    uri = str(tmp_path / "store")
    parts = [
        np.arange(12, dtype=np.uint16).reshape(3, 4),
        np.empty((0, 4), np.uint16),
        np.arange(100, 108, dtype=np.uint16).reshape(2, 4),
    ]
    for index, part in enumerate(parts):
        write_shard(uri, index, {"input_ids": part}, {"rows": len(part)})
    finish_store(
        uri,
        ["input_ids"],
        [{"index": i, "rows": len(p)} for i, p in enumerate(parts)],
        {"rows": 5},
        tokenizer,
    )
    rows = load_arrays(uri)["input_ids"]
    assert len(rows) == 5
    shard, offset = rows.locate(np.array([0, 2, 3, 4]))
    assert shard.tolist() == [0, 0, 2, 2] and offset.tolist() == [0, 2, 0, 1]
    assert np.array_equal(
        rows[np.array([4, 0, 3])], np.stack([parts[2][1], parts[0][0], parts[2][0]])
    )
    assert np.array_equal(np.asarray(rows), np.concatenate(parts))
    assert isinstance(rows.shard(0), np.memmap)  # local shards are mapped, not read
    with pytest.raises(IndexError):
        rows[np.array([5])]


def test_sampler_is_disjoint_across_ranks_and_covers_each_epoch():
    n, batch, micro, world = 24, 8, 2, 2
    seen = []
    for step in range(3):  # 3 steps × 8 = 24 = one epoch
        for rank in range(world):
            sampler = BatchSampler(n, batch, micro, world, rank, seed=7)
            for m in range(sampler.accumulation_steps):
                seen.extend(sampler.rows(step, m).tolist())
    assert sorted(seen) == list(range(n))
    again = BatchSampler(n, batch, micro, world, 1, seed=7)
    assert (
        again.rows(5, 1).tolist() == BatchSampler(n, batch, micro, world, 1, 7).rows(5, 1).tolist()
    )
    assert (
        BatchSampler(n, batch, micro, world, 0, seed=8).rows(0, 0).tolist()
        != BatchSampler(n, batch, micro, world, 0, seed=7).rows(0, 0).tolist()
    )


def test_store_roundtrip_and_incomplete_store_is_refused(tmp_path, tokenizer):
    ids = np.arange(12, dtype=np.uint16).reshape(3, 4)
    labels = np.full((3, 4), -100, dtype=np.int64)
    write_store(str(tmp_path / "s"), {"input_ids": ids, "labels": labels}, {"rows": 3}, tokenizer)
    assert store_complete(str(tmp_path / "s"))
    arrays = load_arrays(str(tmp_path / "s"))
    assert np.array_equal(arrays["input_ids"], ids) and np.array_equal(arrays["labels"], labels)
    (tmp_path / "s" / "_SUCCESS").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_arrays(str(tmp_path / "s"))


def test_linear_warmup_then_linear_decay():
    factors = [lr_factor(s, warmup=2, total=6, final_fraction=0.0) for s in range(6)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == 1.0 and factors[-1] == pytest.approx(0.25)
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))


def test_store_from_another_data_config_is_not_reused(tmp_path, tokenizer):
    from synthdiv.train.store import reuse_or_build

    uri = str(tmp_path / "s")
    built = []

    def build():
        built.append(1)
        write_store(uri, {"input_ids": np.zeros((1, 4), np.uint16)}, {"recipe": "a"}, tokenizer)

    assert reuse_or_build(uri, "a", build)["recipe"] == "a"
    assert reuse_or_build(uri, "a", build)["recipe"] == "a" and len(built) == 1  # reused
    with pytest.raises(ValueError, match="different data config"):
        reuse_or_build(uri, "b", build)
