"""SFT packing: conversations share rows without seeing each other, labels stay on assistant
turns, and padding is not counted as throughput."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthdiv.train.config import ModelSpec
from synthdiv.train.model import build_model, llama_config
from synthdiv.train.packing import (
    batch_arrays,
    best_fit_bins,
    pack_conversations,
    segment_positions,
)
from synthdiv.train.sft_data import ChatTemplate, encode_conversations
from synthdiv.train.store import IGNORE_INDEX

VOCAB = 256


def test_best_fit_fills_bins_and_places_every_item_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 64, size=200)
    bins = best_fit_bins(lengths, 64)
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(200))
    assert all(sum(lengths[b]) <= 64 for b in bins)
    assert len(bins) <= 1.1 * np.ceil(lengths.sum() / 64) + 1  # near the lower bound
    assert best_fit_bins(lengths, 64) == bins  # deterministic


def test_segments_positions_and_first_token_labels():
    ids = [np.arange(5) + 10, np.arange(3) + 20, np.arange(2) + 30]
    out = pack_conversations(ids, [a.copy() for a in ids], seq_len=8, pad_id=0)
    assert out["segments"].tolist() == [[1, 1, 1, 1, 1, 2, 2, 2], [1, 1, 0, 0, 0, 0, 0, 0]]
    assert out["input_ids"][0].tolist() == [10, 11, 12, 13, 14, 20, 21, 22]
    # a conversation's first token is never predicted from the previous one's last
    assert out["labels"][0, 0] == out["labels"][0, 5] == IGNORE_INDEX
    assert (out["labels"][1, 2:] == IGNORE_INDEX).all()
    assert segment_positions(out["segments"]).tolist() == [
        [0, 1, 2, 3, 4, 0, 1, 2],
        [0, 1, 0, 1, 2, 3, 4, 5],
    ]
    padded = pack_conversations(ids, ids, seq_len=8, pad_id=0, pack=False)
    assert len(padded["input_ids"]) == 3 and padded["segments"].max() == 1


def test_batches_count_real_tokens_only():
    ids = [np.arange(5) + 10, np.arange(3) + 20, np.arange(2) + 30]
    packed = pack_conversations(ids, ids, seq_len=8, pad_id=0)
    batch, real = batch_arrays(packed, np.array([0, 1]))
    assert real == 10 and batch["input_ids"].size == 16
    assert batch["position_ids"].tolist()[0] == [0, 1, 2, 3, 4, 0, 1, 2]
    pretrain = {"input_ids": np.ones((4, 8), np.uint16)}
    batch, real = batch_arrays(pretrain, np.array([0, 3]))
    assert real == 16 and "position_ids" not in batch and (batch["labels"] == 1).all()


@pytest.fixture(scope="module")
def tiny_model():
    torch.set_num_threads(1)
    config = llama_config(ModelSpec(preset="tiny", context_length=64), VOCAB, eos_id=0)
    return build_model(config, seed=0).eval()


def _logits(model, packed):
    batch, _ = batch_arrays(packed, np.arange(len(packed["input_ids"])))
    batch.pop("labels")
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits


def test_packed_conversations_do_not_attend_across_the_boundary(tiny_model):
    rng = np.random.default_rng(1)
    a, b = rng.integers(1, VOCAB, 20), rng.integers(1, VOCAB, 12)
    packed = pack_conversations([a, b], [a, b], seq_len=40, pad_id=0)
    assert packed["segments"][0].tolist()[:32] == [1] * 20 + [2] * 12  # one row, a then b
    base = _logits(tiny_model, packed)[0]
    changed_a = a.copy()
    changed_a[:5] = (changed_a[:5] + 7) % VOCAB
    edited = _logits(tiny_model, pack_conversations([changed_a, b], [a, b], 40, 0))[0]
    assert not torch.allclose(edited[:20], base[:20])  # a's own logits move…
    torch.testing.assert_close(edited[20:32], base[20:32])  # …b's do not
    # and b packed behind a is computed exactly as b alone (positions restart at 0)
    alone = _logits(tiny_model, pack_conversations([b], [b], 40, 0))[0]
    torch.testing.assert_close(base[20:32], alone[:12], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir

    return AutoTokenizer.from_pretrained(smollm2_hf_dir())


def _chat(i: int) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}."},
        ]
    }


def test_packed_labels_cover_assistant_turns_only(tokenizer):
    rows = [_chat(i) for i in range(6)]
    packed = encode_conversations(rows, ChatTemplate(tokenizer), seq_len=128, pack=True)
    padded = encode_conversations(rows, ChatTemplate(tokenizer), seq_len=128)
    assert len(packed.input_ids) < len(padded.input_ids) == 6
    trained = packed.labels != IGNORE_INDEX
    text = tokenizer.decode(packed.labels[trained].tolist())
    assert text == "".join(f"Answer {i}.<|im_end|>\n" for i in range(6))
    assert (packed.labels[trained] == packed.input_ids[trained]).all()
    # same real tokens either way, only the padding differs
    assert (packed.segments > 0).sum() == (padded.segments > 0).sum()
    assert (packed.segments == 0).sum() < (padded.segments == 0).sum()
