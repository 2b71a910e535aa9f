import json

from synthdiv.shards import SUCCESS, ShardedOutput


def _writer(payload: bytes):
    return lambda fh: fh.write(payload)


def test_shards_markers_and_resume(tmp_path):
    out = ShardedOutput(str(tmp_path / "o"), "jsonl")
    out.write(0, _writer(b"a\n"), {"rows": 1})
    out.write(2, _writer(b"c\n"))
    assert out.done_indices() == {0, 2}
    assert out.read_marker(0) == {"rows": 1}
    assert not out.complete
    out.mark_complete({"shards": 2})
    assert out.complete
    assert json.loads((tmp_path / "o" / SUCCESS).read_text()) == {"shards": 2}
    # a reopened output sees the same finished shards: what a rerun skips
    assert ShardedOutput(str(tmp_path / "o"), "jsonl").done_indices() == {0, 2}


def test_torn_write_leaves_no_shard(tmp_path):
    out = ShardedOutput(str(tmp_path / "o"), "jsonl")

    def dies(fh):
        fh.write(b"partial")
        raise RuntimeError("killed")

    try:
        out.write(0, dies)
    except RuntimeError:
        pass
    assert out.done_indices() == set()
    assert not (tmp_path / "o" / "part-00000.jsonl").exists()
    assert out.clean_temporaries() == 1
