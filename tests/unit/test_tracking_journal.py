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


def test_a_shared_journal_is_listed_at_most_every_interval_but_on_demand_at_once(monkeypatch):
    from synthdiv.tracking import shared_journal
    from synthdiv.tracking.shared_journal import RemoteJournal, pending_remote_journals

    root = f"memory://journal-{os.getpid()}/tracking_gaps"  # fsspec's in-memory object store
    driver, worker = RemoteJournal(root, "run-1"), RemoteJournal(root, "run-1")
    assert driver.claim() is None  # nothing yet: the driver will not look again for a while
    worker.append("log_metrics", {"metrics": {"loss": 2.5}, "step": 7}, "unreachable")
    assert driver.claim() is None  # throttled: no LIST request for this call
    assert pending_remote_journals(root) == ["run-1"]
    claimed = driver.claim(force=True)  # the end of a run, or tracking-sync
    assert claimed is not None and [e["args"]["step"] for e in read_entries(claimed)] == [7]
    driver.retire(claimed, read_entries(claimed))
    assert driver.entries() == [] and pending_remote_journals(root) == []

    driver.append("set_tags", {"tags": {"a": "1"}}, "unreachable")  # its own call: look at once
    claimed = driver.claim()
    assert claimed is not None and read_entries(claimed)[0]["op"] == "set_tags"
    driver.put_back(read_entries(claimed))
    monkeypatch.setattr(shared_journal, "REMOTE_LIST_SECONDS", 0.0)
    assert driver.claim() is not None  # the interval over, the next call looks again


def test_the_replay_command_names_the_shared_storage_it_reads():
    from synthdiv.tracking.shared_journal import shared_journal_root, sync_command

    root = shared_journal_root("s3://bucket/study-1/")
    assert root == "s3://bucket/study-1/.synthdiv/tracking_gaps"
    assert sync_command(root) == "synthdiv tracking-sync --storage-uri s3://bucket/study-1"
    assert shared_journal_root("/data/runs") is None
    assert sync_command("/home/me/.synthdiv/tracking_gaps") == "synthdiv tracking-sync"
