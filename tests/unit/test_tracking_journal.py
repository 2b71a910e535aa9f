"""The outage journal's recovery of calls claimed by a process that died while replaying them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from synthdiv.tracking.journal import Journal, read_entries, recover_orphans


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_replayers_claim_goes_back_to_the_journal_and_a_live_one_stays(tmp_path: Path):
    dead = Journal(tmp_path, "run-a")
    dead.append("log_metrics", {"metrics": {"loss": 2.0}, "step": 1}, "down")
    claimed = dead.path.with_suffix(f".claimed-{_dead_pid()}-1")
    os.replace(dead.path, claimed)  # what a replayer killed mid-flush leaves behind
    dead.append("set_tags", {"tags": {"later": "1"}}, "down")  # written after the claim

    live = Journal(tmp_path, "run-b")
    live.append("log_params", {"params": {"k": 1}}, "down")
    live_claim = live.path.with_suffix(f".claimed-{os.getpid()}-1")  # this process: alive
    os.replace(live.path, live_claim)

    assert recover_orphans(tmp_path) == 1
    assert not claimed.exists()
    assert sorted(e["op"] for e in dead.entries()) == ["log_metrics", "set_tags"]
    assert live_claim.exists() and not live.path.exists()
    assert [e["op"] for e in read_entries(live_claim)] == ["log_params"]
    assert recover_orphans(tmp_path) == 0  # nothing left to recover
