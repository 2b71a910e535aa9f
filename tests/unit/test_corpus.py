"""Corpus IO on local disk: formats, directories, validation reason codes, quarantine, digests."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthdiv.config import CorpusConfig
from synthdiv.corpus import (
    REASONS,
    Corpus,
    CorpusError,
    digest_documents,
    example_corpus_path,
    read_corpus,
    write_corpus,
)

DOCS = [
    {"id": f"d{i}", "text": f"document number {i} is here", "meta": {"k": i % 3}} for i in range(10)
]

# One JSONL line per reason code, plus two good rows (one without an id).
BAD_LINES = {
    "bad_json": b'{"id": "x1", "text": "unterminated',
    "not_utf8": b'{"id": "x2", "text": "caf\xe9"}',
    "not_object": b'["a", "list"]',
    "missing_text": b'{"id": "x3", "body": "no text field"}',
    "wrong_type": b'{"id": "x4", "text": 42}',
    "empty_text": b'{"id": "x5", "text": "  \\n\\t "}',
    "too_long": b'{"id": "x6", "text": "' + b"y" * 300 + b'"}',
    "duplicate_id": b'{"id": "good", "text": "same id again"}',
}


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def messy_jsonl(tmp_path: Path) -> Path:
    good = [b'{"id": "good", "text": "a fine document", "lang": "en"}', b'{"text": "no id here"}']
    return write_lines(tmp_path / "messy.jsonl", good + list(BAD_LINES.values()))


def test_every_reason_code_is_counted_and_quarantined(messy_jsonl: Path, tmp_path: Path) -> None:
    corpus, report = read_corpus(
        CorpusConfig(path=str(messy_jsonl), max_chars=200), str(tmp_path / "q")
    )
    assert corpus.ids == ["good", "messy.jsonl:2"]
    assert report.reasons == {reason: 1 for reason in REASONS}
    assert (report.n_in, report.n_ok, report.n_rejected) == (10, 2, 8)
    assert report.n_in == report.n_ok + report.n_rejected
    records = [json.loads(line) for line in Path(report.quarantine_path).read_text().splitlines()]
    assert [r["reason"] for r in records] == list(BAD_LINES)
    assert [r["source"] for r in records] == [f"messy.jsonl:{i}" for i in range(3, 11)]
    assert records[0]["raw"] == BAD_LINES["bad_json"].decode()
    assert "\\xe9" in records[1]["raw"]  # undecodable bytes are shown, not lost


def test_quarantine_raw_is_truncated_and_metrics_cover_every_reason(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "a.jsonl", [b'{"text": "ok"}', b'{"text": "' + b"z" * 5000 + b'"}']
    )
    cfg = CorpusConfig(path=str(path), max_chars=100, quarantine_path=str(tmp_path / "rej.jsonl"))
    _, report = read_corpus(cfg)
    (record,) = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert record["reason"] == "too_long" and len(record["raw"]) == 1000
    metrics = report.metrics()
    assert metrics["corpus.rejected.too_long"] == 1.0 and metrics["corpus.rejected.bad_json"] == 0.0


def test_without_quarantine_location_rejects_are_kept_in_the_report(messy_jsonl: Path) -> None:
    _, report = read_corpus(CorpusConfig(path=str(messy_jsonl), max_chars=200))
    assert report.quarantine_path is None
    assert Counter(e["reason"] for e in report.examples) == Counter(REASONS)


def test_generated_ids_fields_and_meta(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "f.jsonl",
        [
            b'{"body": "first", "source": "web", "meta": {"topic": "t"}}',
            b"",  # blank lines are not rows
            b'{"body": "third", "uid": 7}',
        ],
    )
    cfg = CorpusConfig(path=str(path), text_field="body", id_field="uid")
    corpus, report = read_corpus(cfg)
    assert corpus.ids == ["f.jsonl:1", "7"]
    assert corpus.metas == [{"topic": "t", "source": "web"}, {}]
    assert report.n_in == 2
    again, _ = read_corpus(cfg)
    assert again.ids == corpus.ids and again.digest == corpus.digest


def test_limit_stops_after_enough_valid_documents(tmp_path: Path) -> None:
    write_corpus(DOCS, str(tmp_path / "c"), shard_size=3)
    corpus, report = read_corpus(CorpusConfig(path=str(tmp_path / "c"), limit=4))
    assert corpus.ids == ["d0", "d1", "d2", "d3"] and report.n_in == 4


def test_jsonl_and_parquet_round_trip_identically(tmp_path: Path) -> None:
    manifests = {
        fmt: write_corpus(DOCS, str(tmp_path / fmt), shard_size=4, fmt=fmt)
        for fmt in ("jsonl", "parquet")
    }
    read = {fmt: read_corpus(CorpusConfig(path=str(tmp_path / fmt)))[0] for fmt in manifests}
    assert read["jsonl"].ids == read["parquet"].ids == [d["id"] for d in DOCS]
    assert read["jsonl"].texts == read["parquet"].texts
    assert read["jsonl"].metas == read["parquet"].metas == [d["meta"] for d in DOCS]
    assert read["jsonl"].digest == read["parquet"].digest == manifests["parquet"]["digest"]
    assert [s["n_docs"] for s in manifests["jsonl"]["shards"]] == [4, 4, 2]
    assert sorted(os.listdir(tmp_path / "parquet")) == [
        "_SUCCESS",
        "manifest.json",
        "part-00000.parquet",
        "part-00000.parquet.done",
        "part-00001.parquet",
        "part-00001.parquet.done",
        "part-00002.parquet",
        "part-00002.parquet.done",
    ]


def test_user_parquet_reasons_and_extra_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "content": ["fine", None, "", "dup", "dup again", "x" * 50],
            "doc": ["a", "b", "c", "d", "d", "e"],
            "score": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    pq.write_table(table, tmp_path / "user.parquet")
    cfg = CorpusConfig(
        path=str(tmp_path / "user.parquet"), text_field="content", id_field="doc", max_chars=20
    )
    corpus, report = read_corpus(cfg)
    assert corpus.ids == ["a", "d"] and corpus.metas == [{"score": 1.0}, {"score": 4.0}]
    assert report.reasons == {"missing_text": 1, "empty_text": 1, "duplicate_id": 1, "too_long": 1}


def test_plain_directory_without_markers_is_read_in_name_order(tmp_path: Path) -> None:
    write_lines(tmp_path / "b.jsonl", [b'{"text": "from b"}'])
    write_lines(tmp_path / "a.jsonl", [b'{"text": "from a"}'])
    (tmp_path / "README.txt").write_text("not data")
    corpus, _ = read_corpus(CorpusConfig(path=str(tmp_path)))
    assert corpus.ids == ["a.jsonl:1", "b.jsonl:1"]


def test_directory_with_shards_but_no_success_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "c"
    write_corpus(DOCS, str(out), shard_size=4)
    (out / "_SUCCESS").unlink()
    with pytest.raises(CorpusError, match=r"incomplete corpus .* \(no _SUCCESS\)"):
        read_corpus(CorpusConfig(path=str(out)))


def test_rewrite_skips_unchanged_shards_and_redoes_changed_ones(tmp_path: Path) -> None:
    out = tmp_path / "c"
    write_corpus(DOCS, str(out), shard_size=4)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.jsonl")}
    changed = [dict(d, text="rewritten") if d["id"] == "d5" else d for d in DOCS]
    manifest = write_corpus(changed, str(out), shard_size=4)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.jsonl")}
    assert [n for n in before if before[n] != after[n]] == ["part-00001.jsonl"]
    corpus, _ = read_corpus(CorpusConfig(path=str(out)))
    assert corpus.texts[5] == "rewritten" and corpus.digest == manifest["digest"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.jsonl", "corpus not found"),
        (lambda d: write_lines(d / "x.txt", [b'{"text": "a"}']), "unknown format"),
        (lambda d: write_lines(d / "e.jsonl", [b'{"text": ""}']), "empty corpus"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "empty corpus: no .jsonl or .parquet"),
    ],
)
def test_unusable_inputs_fail_with_one_line_errors(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(CorpusError, match=message) as err:
        read_corpus(CorpusConfig(path=str(setup(tmp_path))))
    assert "\n" not in str(err.value)


def test_mixed_formats_and_bad_writes_are_refused(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [b'{"text": "a"}'])
    pq.write_table(pa.table({"text": ["b"]}), tmp_path / "b.parquet")
    with pytest.raises(CorpusError, match="mixed formats"):
        read_corpus(CorpusConfig(path=str(tmp_path)))
    with pytest.raises(CorpusError, match="unknown corpus format"):
        write_corpus(DOCS, str(tmp_path / "o"), fmt="csv")
    with pytest.raises(CorpusError, match="repeats id"):
        write_corpus(DOCS + DOCS[:1], str(tmp_path / "o2"))


def test_digest_is_order_independent_and_counts_repeats() -> None:
    ids, texts = ["a", "b", "c"], ["x", "y", "z"]
    assert digest_documents(ids, texts) == digest_documents(ids[::-1], texts[::-1])
    assert digest_documents(ids, texts) != digest_documents(ids, ["x", "y", "q"])
    # XOR would cancel the repeated pair; a sum plus the count does not.
    assert digest_documents(["a"], ["x"]) != digest_documents(["a", "b", "b"], ["x", "y", "y"])
    assert Corpus(ids, texts).digest == digest_documents(ids, texts)


def test_example_corpus_has_twelve_topics_of_twenty(tmp_path: Path) -> None:
    corpus, report = read_corpus(CorpusConfig(path=example_corpus_path()))
    assert report.n_rejected == 0 and len(corpus) == 240
    topics = Counter(m["topic"] for m in corpus.metas)
    assert len(topics) == 12 and set(topics.values()) == {20}
    assert len(set(corpus.texts)) == 240


def test_corrupt_parquet_is_a_clear_error_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CorpusError, match=r"cannot read .*data: "):
        read_corpus(CorpusConfig(path=str(tmp_path / "data")), quarantine_dir=str(tmp_path / "q"))
    assert list((tmp_path / "q").iterdir()) == []
