"""Corpus IO against a real S3 API (moto's server on loopback) and through Ray Data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdiv.config import CorpusConfig
from synthdiv.corpus import CorpusError, read_corpus, read_corpus_dataset, write_corpus

DOCS = [{"id": f"s{i}", "text": f"stored remotely, number {i}", "meta": {"i": i}} for i in range(7)]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_write_then_read_s3_round_trip(s3_bucket: str, fmt: str) -> None:
    uri = f"{s3_bucket}/corpora/{fmt}"
    manifest = write_corpus(DOCS, uri, shard_size=3, fmt=fmt)
    corpus, report = read_corpus(CorpusConfig(path=uri), quarantine_dir=f"{s3_bucket}/q/{fmt}")
    assert corpus.ids == [d["id"] for d in DOCS] and corpus.metas == [d["meta"] for d in DOCS]
    assert corpus.digest == manifest["digest"] and report.n_ok == 7 and report.n_rejected == 0
    single, _ = read_corpus(CorpusConfig(path=f"{uri}/part-00002.{fmt}"))
    assert single.ids == ["s6"]


def test_s3_quarantine_and_incomplete_directory(s3_bucket: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.pipe(f"{s3_bucket}/raw/a.jsonl", b'{"text": "ok"}\nnot json\n')
    _, report = read_corpus(
        CorpusConfig(path=f"{s3_bucket}/raw"), quarantine_dir=f"{s3_bucket}/q/raw"
    )
    assert report.reasons == {"bad_json": 1}
    rejected = [json.loads(x) for x in fs.cat(report.quarantine_path).decode().splitlines()]
    assert rejected[0]["source"] == "a.jsonl:2"

    write_corpus(DOCS, f"{s3_bucket}/torn", shard_size=3)
    fs.rm(f"{s3_bucket}/torn/_SUCCESS")
    fs.invalidate_cache()
    with pytest.raises(CorpusError, match=r"incomplete corpus .*torn \(no _SUCCESS\)"):
        read_corpus(CorpusConfig(path=f"{s3_bucket}/torn"))


@pytest.mark.parametrize(
    "uri", ["s3://no-such-bucket-here/docs.jsonl", "s3://synthdiv-test/nothing/here"]
)
def test_unreadable_s3_uri_gives_one_line_error(s3_bucket: str, uri: str) -> None:
    with pytest.raises(CorpusError, match=r"(corpus not found|cannot read): s3://") as err:
        read_corpus(CorpusConfig(path=uri))
    assert "\n" not in str(err.value)


@pytest.mark.slow  # Ray worker start-up dominates: ~20-40 s on 2 shared cores
def test_ray_dataset_path_matches_in_memory_path(ray_local, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_corpus(DOCS, str(src), shard_size=3)
    # A plain user directory next to it, with rejects and a duplicate spread over two files.
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_bytes(b'{"id": "x", "text": "one"}\n{"text": ""}\nnot json\n')
    (raw / "b.jsonl").write_bytes(
        b'{"id": "x", "text": "dup"}\n{"text": "two"}\n{"text": "\xff"}\n'
    )
    for path in (src, raw):
        cfg = CorpusConfig(path=str(path))
        corpus, report = read_corpus(cfg, quarantine_dir=str(tmp_path / "q_mem"))
        ds, ray_report = read_corpus_dataset(
            cfg, quarantine_dir=str(tmp_path / f"q_ray_{path.name}")
        )
        rows = sorted(ds.take_all(), key=lambda r: r["id"])
        assert [r["id"] for r in rows] == sorted(corpus.ids)
        assert ray_report.digest == corpus.digest
        assert (ray_report.n_in, ray_report.n_ok, ray_report.reasons) == (
            report.n_in,
            report.n_ok,
            report.reasons,
        )
    assert ray_report.reasons == {"empty_text": 1, "bad_json": 1, "duplicate_id": 1, "not_utf8": 1}
    written = [
        json.loads(x)
        for f in sorted(Path(ray_report.quarantine_path).glob("*.json*"))
        for x in f.read_text().splitlines()
    ]
    assert sorted(r["source"] for r in written) == [
        "a.jsonl:2",
        "a.jsonl:3",
        "b.jsonl:1",
        "b.jsonl:3",
    ]
    assert json.loads(next(r for r in rows if r["id"] == "x")["meta"]) == {}
    limited, limited_report = read_corpus_dataset(CorpusConfig(path=str(src), limit=2))
    assert limited.count() == 2
    assert (limited_report.n_ok, limited_report.n_over_limit, limited_report.n_in) == (2, 5, 7)
