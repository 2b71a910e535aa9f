from pathlib import Path

import pytest
from pydantic import Field

from synthdiv.config import (
    ConfigError,
    CorpusConfig,
    LLMConfig,
    RuntimeConfig,
    StrictModel,
    config_digest,
    flatten,
    load_config,
    resolved_yaml,
)


class _Stage(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    corpus: CorpusConfig
    llm: LLMConfig = Field(default_factory=LLMConfig)
    seed: int = 0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_key_and_file(tmp_path):
    path = _write(tmp_path, "corpus: {path: x.jsonl, txt_field: body}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, _Stage)
    assert "corpus.txt_field" in str(err.value)
    assert str(path) in str(err.value)


def test_wrong_type_is_an_error(tmp_path):
    path = _write(tmp_path, "corpus: {path: x.jsonl}\nseed: not-a-number\n")
    with pytest.raises(ConfigError, match="seed"):
        load_config(path, _Stage)


def test_bounds_are_validated(tmp_path):
    path = _write(tmp_path, "corpus: {path: x}\nllm: {temperature: 5}\n")
    with pytest.raises(ConfigError, match="llm.temperature"):
        load_config(path, _Stage)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", _Stage)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "corpus: [unclosed\n"), _Stage)
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"), _Stage)


def test_overrides_and_resolved_output(tmp_path):
    path = _write(tmp_path, "corpus: {path: a.jsonl}\n")
    cfg = load_config(path, _Stage, {"corpus.limit": 10, "runtime.job_id": "j1"})
    assert cfg.corpus.limit == 10 and cfg.runtime.job_id == "j1"
    text = resolved_yaml(cfg)
    assert "text_field: text" in text  # defaults are written out, so the log shows what ran


def test_digest_ignores_runtime_but_not_content():
    a = _Stage(corpus=CorpusConfig(path="a"))
    b = _Stage(corpus=CorpusConfig(path="a"), runtime=RuntimeConfig(ray_address="auto"))
    c = _Stage(corpus=CorpusConfig(path="a"), seed=1)
    assert config_digest(a) == config_digest(b)
    assert config_digest(a) != config_digest(c)


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}
