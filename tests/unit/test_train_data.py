"""Packing, mixture weighting, the deterministic sampler, token stores and the LR schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synthdiv.train.data import pack, select_documents
from synthdiv.train.optim import lr_factor
from synthdiv.train.store import BatchSampler, load_arrays, store_complete, write_store

EOS = 0


def test_pack_separates_documents_with_eos_and_drops_the_tail():
    docs = [np.array([5, 6, 7]), np.array([8, 9]), np.array([10])]
    rows = pack(docs, EOS, seq_len=4)
    assert rows.tolist() == [[5, 6, 7, 0], [8, 9, 0, 10]]  # the last EOS does not fill a row


def test_select_documents_repeats_to_reach_a_target():
    lengths = np.array([10, 20, 30])
    picks = select_documents(lengths, target_tokens=150, seed=0)
    assert lengths[picks].sum() >= 150
    assert np.bincount(picks, minlength=3).min() >= 2  # two full passes, then part of a third
    assert select_documents(lengths, 60, 0).size == 3  # exactly one pass
    assert lengths[select_documents(lengths, 15, 0)].sum() < 60  # a partial pass


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
    assert again.rows(5, 1).tolist() == BatchSampler(n, batch, micro, world, 1, 7).rows(5, 1).tolist()
    assert BatchSampler(n, batch, micro, world, 0, seed=8).rows(0, 0).tolist() != \
        BatchSampler(n, batch, micro, world, 0, seed=7).rows(0, 0).tolist()


def test_store_roundtrip_and_incomplete_store_is_refused(tmp_path):
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    ids = np.arange(12, dtype=np.uint16).reshape(3, 4)
    write_store(str(tmp_path / "s"), {"input_ids": ids}, {"rows": 3}, tokenizer)
    assert store_complete(str(tmp_path / "s"))
    assert np.array_equal(load_arrays(str(tmp_path / "s"))["input_ids"], ids)
    (tmp_path / "s" / "_SUCCESS").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_arrays(str(tmp_path / "s"))


def test_linear_warmup_then_linear_decay():
    factors = [lr_factor(s, warmup=2, total=6, final_fraction=0.0) for s in range(6)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == 1.0 and factors[-1] == pytest.approx(0.25)
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))


def test_store_from_another_data_config_is_not_reused(tmp_path):
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir
    from synthdiv.train.store import reuse_or_build

    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    uri = str(tmp_path / "s")
    built = []

    def build():
        built.append(1)
        write_store(uri, {"input_ids": np.zeros((1, 4), np.uint16)}, {"recipe": "a"}, tokenizer)

    assert reuse_or_build(uri, "a", build)["recipe"] == "a"
    assert reuse_or_build(uri, "a", build)["recipe"] == "a" and len(built) == 1  # reused
    with pytest.raises(ValueError, match="different data config"):
        reuse_or_build(uri, "b", build)
