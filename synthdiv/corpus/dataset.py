"""Ray Data reading of corpora larger than memory, with the same validation as
:func:`synthdiv.corpus.read_corpus` (re-exported there as ``read_corpus_dataset``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.corpus.format import ContentDigest, CorpusError, Reject, parse_row, reject_record
from synthdiv.corpus.read import ValidationReport
from synthdiv.corpus.source import iter_raw_rows, resolve_source
from synthdiv.corpus.write import EXAMPLES_KEPT

if TYPE_CHECKING:
    import ray.data

log = logging.getLogger(__name__)


# -- Ray Data reading, for inputs larger than memory -------------------------------------------
# Rows are read by the same per-file reader as above, inside Ray tasks (one file per task):
# ray.data.read_json fails a whole file on one bad line and knows no line numbers, so it cannot
# give per-row reason codes. The rest (duplicates, counts, quarantine) is Ray Data operators.
_RAY_COLUMNS = ("id", "text", "meta", "status", "source", "detail", "raw", "order")


def _rows_table(rows: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    types = {"order": pa.int64()}
    return pa.table({c: pa.array(rows[c], types.get(c, pa.string())) for c in _RAY_COLUMNS})


def _validate_files(batch: dict[str, np.ndarray], cfg_json: str) -> Iterator[Any]:
    cfg = CorpusConfig.model_validate_json(cfg_json)
    for file_uri, fmt, file_index in zip(batch["file"], batch["fmt"], batch["index"], strict=True):
        rows: dict[str, list[Any]] = {c: [] for c in _RAY_COLUMNS}
        for rowno, row in enumerate(iter_raw_rows(str(file_uri), str(fmt))):
            try:
                doc = parse_row(row, cfg)
                status, rec = "ok", {"source": row.location, "detail": "", "raw": ""}
            except Reject as rej:
                doc, status = {"id": "", "text": "", "meta": {}}, rej.reason
                rec = reject_record(row, rej.reason, str(rej))
                del rec["reason"]  # carried by the status column
            for col, value in (*doc.items(), *rec.items()):
                rows[col].append(json.dumps(value, ensure_ascii=False) if col == "meta" else value)
            rows["status"].append(status)
            rows["order"].append((int(file_index) << 32) | rowno)
            if len(rows["id"]) >= 4096:
                yield _rows_table(rows)
                rows = {c: [] for c in _RAY_COLUMNS}
        if rows["id"]:
            yield _rows_table(rows)


def _mark_duplicates(table: Any, losers: set[int]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    is_loser = pc.is_in(table["order"], value_set=pa.array(sorted(losers), pa.int64()))
    status = pc.if_else(is_loser, "duplicate_id", table["status"])
    return table.set_column(table.schema.get_field_index("status"), "status", status)


def _block_stats(table: Any) -> dict[str, list[Any]]:
    """Per block: how many rows had each status, and the digest sum of the valid ones."""
    digest = ContentDigest()
    status = (
        table["status"].to_pylist() if "status" in table.column_names else ["ok"] * table.num_rows
    )
    for doc_id, text, st in zip(
        table["id"].to_pylist(), table["text"].to_pylist(), status, strict=True
    ):
        if st == "ok":
            digest.add(doc_id, text)
    return {"counts": [json.dumps(Counter(status))], "acc": [f"{digest.acc:032x}"], "n": [digest.n]}


def _stats(ds: Any) -> tuple[Counter[str], str]:
    counts: Counter[str] = Counter()
    digest = ContentDigest()
    for part in ds.map_batches(_block_stats, batch_format="pyarrow", batch_size=None).take_all():
        counts.update(json.loads(part["counts"]))
        digest.merge(int(part["acc"], 16), int(part["n"]))
    return counts, digest.hexdigest()


def read_corpus_dataset(
    cfg: CorpusConfig, quarantine_dir: str | None = None
) -> tuple[ray.data.Dataset, ValidationReport]:
    """Validate ``cfg.path`` with Ray Data; returns the valid documents as a materialized dataset
    of ``{id, text, meta}`` (``meta`` as JSON text) and the report. Rejects are written by Ray
    as JSONL files under the quarantine directory. Ray must be initialised by the caller."""
    import ray
    from ray.data.expressions import col

    source = resolve_source(cfg)
    files = ray.data.from_items(
        [{"file": f, "fmt": source.fmt, "index": i} for i, f in enumerate(source.files)],
        override_num_blocks=len(source.files),
    )
    rows = files.map_batches(
        _validate_files, fn_kwargs={"cfg_json": cfg.model_dump_json()}, batch_size=1
    ).materialize()
    ok = rows.filter(expr="status == 'ok'").select_columns(["id", "order"])
    counted = ok.groupby("id", num_partitions=max(1, rows.num_blocks())).count()
    repeated = {r["id"] for r in counted.filter(expr=col("count()") > 1).take_all()}
    if repeated:  # the first occurrence in (file, line) order wins, as in read_corpus
        first: dict[str, int] = {}
        pairs = ok.filter(expr=col("id").is_in(sorted(repeated))).take_all()
        for pair in pairs:
            first[pair["id"]] = min(first.get(pair["id"], pair["order"]), pair["order"])
        losers = {p["order"] for p in pairs} - set(first.values())
        rows = rows.map_batches(
            _mark_duplicates, fn_kwargs={"losers": losers}, batch_format="pyarrow"
        ).materialize()
    counts, digest = _stats(rows)
    n_valid = counts.pop("ok", 0)
    target = cfg.quarantine_path or (
        f"{quarantine_dir.rstrip('/')}/quarantine" if quarantine_dir else None
    )
    rejects = rows.filter(expr="status != 'ok'").map_batches(
        lambda t: t.select(["status", "source", "detail", "raw"]).rename_columns(
            ["reason", "source", "detail", "raw"]
        ),
        batch_format="pyarrow",
    )
    examples: list[dict[str, Any]] = []
    if target and counts:
        rejects.write_json(target)
    elif counts:
        examples = rejects.take(EXAMPLES_KEPT)
    docs = rows.filter(expr="status == 'ok'").select_columns(["id", "text", "meta"])
    if cfg.limit is not None and cfg.limit < n_valid:
        docs = docs.limit(cfg.limit).materialize()
        digest = _stats(docs)[1]
    else:
        docs = docs.materialize()
    n_ok = min(n_valid, cfg.limit or n_valid)
    report = ValidationReport(
        n_in=n_valid + sum(counts.values()),
        n_ok=n_ok,
        n_rejected=sum(counts.values()),
        reasons=dict(counts),
        quarantine_path=target if counts else None,
        n_over_limit=n_valid - n_ok,
        examples=examples,
        digest=digest,
    )
    if n_ok == 0:
        raise CorpusError(
            f"empty corpus: {cfg.path} has no valid documents (rejected: {dict(counts) or 'none'})"
        )
    return docs, report
