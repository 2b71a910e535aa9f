"""The tiny model's loss curve at a fixed seed matches a stored golden curve (as torchtitan does):
a change to the model, its initialisation, the optimizer or the schedule shows up here, not as a
vague "the loss still fell". Regenerate after an intended change with
``SYNTHDIV_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_train_loss_curve.py``
and say why in the commit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from synthdiv.train.config import ModelSpec, OptimSpec
from synthdiv.train.model import build_model, llama_config
from synthdiv.train.optim import build_optimizer, build_scheduler

GOLDEN = Path(__file__).parent / "golden" / "tiny_loss_curve.json"
STEPS, BATCH, SEQ, VOCAB = 20, 4, 32, 512
# float32 on CPU. Kernels differ a little between instruction sets: forcing torch's AVX2 and its
# plain kernels (ATEN_CPU_CAPABILITY=avx2 / default) moved this curve by 1.7e-7 relative.
RTOL = 1e-4


def loss_curve() -> list[float]:
    torch.set_num_threads(1)
    config = llama_config(ModelSpec(preset="tiny"), VOCAB, eos_id=0)
    model = build_model(config, seed=0)
    optim_spec = OptimSpec(lr=3e-3, warmup_steps=2)
    optimizer = build_optimizer(model.named_parameters(), optim_spec)
    scheduler = build_scheduler(optimizer, optim_spec, STEPS)
    data = torch.Generator().manual_seed(0)
    # a learnable stream: each sequence counts up from a random start
    starts = torch.randint(0, VOCAB, (STEPS, BATCH, 1), generator=data)
    batches = (starts + torch.arange(SEQ)) % VOCAB
    losses = []
    for step in range(STEPS):
        loss = model(input_ids=batches[step], labels=batches[step]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim_spec.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_tiny_model_loss_curve_matches_the_golden_curve():
    curve = loss_curve()
    if os.environ.get("SYNTHDIV_UPDATE_GOLDEN"):
        GOLDEN.write_text(
            json.dumps(
                {"steps": STEPS, "batch": BATCH, "seq_len": SEQ, "vocab": VOCAB, "loss": curve},
                indent=1,
            )
            + "\n"
        )
    golden = json.loads(GOLDEN.read_text())["loss"]
    np.testing.assert_allclose(curve, golden, rtol=RTOL)
    assert curve[-1] < curve[0] - 0.5  # and it learns the stream
