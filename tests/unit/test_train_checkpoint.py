"""Checkpoints: the marker is written last, torn or corrupt ones are never loaded."""

from __future__ import annotations

import pytest
import torch

from synthdiv.train import checkpoint
from synthdiv.train.checkpoint import CorruptCheckpointError


def _write(root, step):
    checkpoint.write_local(
        root / checkpoint.dir_name(step), {"step": step, "w": torch.full((2,), float(step))}, step
    )


def test_latest_complete_checkpoint_wins_and_torn_ones_are_skipped(tmp_path):
    _write(tmp_path, 2)
    _write(tmp_path, 4)
    torn = tmp_path / checkpoint.dir_name(6)
    torn.mkdir()
    (torn / checkpoint.STATE_FILE).write_bytes(b"partial")  # no marker: killed mid-write
    ref, state, skipped = checkpoint.latest_loadable(str(tmp_path))
    assert ref.step == 4 and state["step"] == 4
    assert len(skipped) == 1 and "step_00000006" in skipped[0]


def test_state_that_does_not_match_its_marker_is_refused(tmp_path):
    _write(tmp_path, 2)
    _write(tmp_path, 4)
    state_file = tmp_path / checkpoint.dir_name(4) / checkpoint.STATE_FILE
    state_file.write_bytes(state_file.read_bytes()[:100])  # truncated upload
    with pytest.raises(CorruptCheckpointError, match="does not match its marker"):
        checkpoint.load_state(str(tmp_path / checkpoint.dir_name(4)))
    ref, _, skipped = checkpoint.latest_loadable(str(tmp_path))
    assert ref.step == 2 and skipped


def test_missing_marker_is_refused(tmp_path):
    _write(tmp_path, 2)
    (tmp_path / checkpoint.dir_name(2) / checkpoint.MARKER).unlink()
    with pytest.raises(CorruptCheckpointError, match="no _COMPLETE marker"):
        checkpoint.load_state(str(tmp_path / checkpoint.dir_name(2)))
    assert checkpoint.latest_loadable(str(tmp_path))[0] is None


def test_rng_state_roundtrip():
    state = checkpoint.rng_state()
    first = torch.rand(3)
    checkpoint.restore_rng(state)
    assert torch.equal(torch.rand(3), first)
