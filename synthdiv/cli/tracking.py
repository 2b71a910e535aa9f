"""`synthdiv tracking-sync`: replay tracking calls journaled while MLflow was unreachable."""

from __future__ import annotations

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, out


@app.command("tracking-sync")
def tracking_sync(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI the journaled runs belong to."
    ),
    storage_uri: str | None = typer.Option(
        None,
        "--storage-uri",
        help="The job's shared storage (e.g. s3://bucket/prefix): replay the journals its "
        "nodes wrote there instead of this machine's.",
    ),
) -> None:
    """Send MLflow the tracking calls that waited on local disk while it was unreachable.

    A stage whose MLflow server goes away keeps working and journals its params, metrics,
    tags, artifacts and models under `.synthdiv/tracking_gaps/` (or `$SYNTHDIV_TRACKING_JOURNAL`);
    they are replayed on their own once the server answers during the job. Run this from the
    same directory when the job ended first; a job whose `runtime.storage_uri` is an object store
    journals there instead (every node sees it): pass that as `--storage-uri`. Each replayed
    run is tagged
    `synthdiv.tracking.gaps` and keeps the record as the artifact `tracking/gaps.jsonl`.
    """
    from synthdiv.config import RuntimeConfig
    from synthdiv.tracking import pending_journals, resolve_tracking_uri, sync_journal
    from synthdiv.tracking.journal import reachable
    from synthdiv.tracking.shared_journal import shared_journal_root

    uri = resolve_tracking_uri(RuntimeConfig(tracking_uri=tracking_uri))
    journal_root = shared_journal_root(storage_uri)
    if storage_uri and journal_root is None:
        fail(f"--storage-uri {storage_uri} is local: its runs journal on this machine; omit it")
    pending = pending_journals(journal_root)
    if not pending:
        out.print("nothing to replay: no journaled tracking calls")
        return
    if not reachable(uri):
        fail(f"MLflow at {uri} is still unreachable; {len(pending)} journal(s) kept for later")
    for journal_id in pending:
        n = sync_journal(uri, journal_id, journal_root=journal_root)
        console.print(f"{journal_id}: replayed {n} call(s)")
