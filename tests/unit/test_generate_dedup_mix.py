"""Duplicate detection, mixture arithmetic and grid expansion (no LLM)."""

from __future__ import annotations

import numpy as np
import pytest

from synthdiv.config import ConfigError, parse_config
from synthdiv.generate.config import DedupConfig, GenerateConfig
from synthdiv.generate.dedup import find_duplicates
from synthdiv.generate.grid import GenerateGridConfig, grid_cells
from synthdiv.generate.mix import MixConfig, select

BASE = (
    "the quick brown fox jumps over the lazy dog near "
    "the river bank on a sunny day while birds sing"
)


def test_exact_and_near_duplicates_are_counted_and_filtering_is_idempotent():
    texts = [
        BASE,
        BASE.upper() + "!",  # exact after normalization
        BASE.replace("sunny", "bright"),  # near
        "an entirely different sentence about quantum mechanics and wave functions in physics",
        BASE,
    ]
    report = find_duplicates(texts, DedupConfig(threshold=0.5, shingle_words=3))
    assert report.exact_duplicates == [1, 4]
    assert report.near_duplicates == [2]
    assert report.exact_rate == pytest.approx(2 / 5) and report.near_rate == pytest.approx(3 / 5)
    kept = [t for i, t in enumerate(texts) if i not in report.drop("near")]
    again = find_duplicates(kept, DedupConfig(threshold=0.5, shingle_words=3))
    assert again.drop("near") == set()
    assert find_duplicates(texts, DedupConfig()).drop("none") == set()


def test_select_repeats_then_subsamples_to_the_target():
    tokens = np.array([10, 20, 30, 40])  # 100 tokens
    up = select(tokens, 250, seed=0)  # 2 full passes + ≥ 50 more
    assert up.copies.min() >= 2 and 250 <= up.tokens < 250 + 40
    down = select(tokens, 35, seed=0)
    assert set(down.copies.tolist()) <= {0, 1} and 35 <= down.tokens < 35 + 40
    exact = select(tokens, 300, seed=5)
    assert exact.copies.tolist() == [3, 3, 3, 3] and exact.tokens == 300
    assert select(tokens, 35, seed=1).copies.tolist() == select(tokens, 35, seed=1).copies.tolist()
    with pytest.raises(ValueError, match="no tokens"):
        select(np.array([0, 0]), 10, seed=0)


def _source(name, **kw):
    return {"name": name, "corpus": {"path": f"/data/{name}.jsonl"}, **kw}


def test_mix_targets_from_weights_or_tokens():
    cfg = parse_config(
        {"sources": [_source("real", weight=3), _source("syn", weight=1)], "total_tokens": 1000},
        MixConfig,
    )
    assert cfg.targets() == {"real": 750, "syn": 250}
    cfg = parse_config(
        {"sources": [_source("real", target_tokens=10), _source("syn", target_tokens=30)]},
        MixConfig,
    )
    assert cfg.targets() == {"real": 10, "syn": 30}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sources": [_source("a", weight=-1)], "total_tokens": 10}, "greater than 0"),
        ({"sources": [_source("a", weight=1)]}, "set total_tokens"),
        (
            {"sources": [_source("a", weight=1), _source("b", target_tokens=5)], "total_tokens": 9},
            "not a mix of both",
        ),
        (
            {"sources": [_source("a", target_tokens=1), _source("a", target_tokens=2)]},
            "names must be unique",
        ),
        ({"sources": []}, "at least 1"),
    ],
)
def test_invalid_mixtures_fail_before_reading(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data, MixConfig)


def test_grid_expands_every_cell_with_lineage():
    cfg = parse_config(
        {
            "name": "tg",
            "base": {"family": "topic", "quality": {"repetition": False}},
            "grid": {
                "n_topics": [2, 4],
                "generations_per_topic": [1, 3],
                "family": ["topic", "multi_topic"],
                "generators": {"small": [{"llm": {"backend": "embedded"}}]},
                "quality.min_stop_words": [0, 2],
            },
        },
        GenerateGridConfig,
    )
    cells = grid_cells(cfg)
    assert len(cells) == 16 and len({c.name for c in cells}) == 16
    label = (
        "n_topics-4_generations_per_topic-3_family-multi_topic_generators-small_min_stop_words-0"
    )
    cell = next(c for c in cells if c.name == label)
    assert cell.config.n_topics == 4 and cell.config.generations_per_topic == 3
    assert cell.config.family == "multi_topic" and cell.config.name == f"tg/{label}"
    # a dotted axis deep-merges into the base block: the base's other quality knobs survive
    assert cell.config.quality.min_stop_words == 0 and cell.config.quality.repetition is False
    assert [g.llm.backend for g in cell.config.generators] == ["embedded"]
    assert cell.lineage == {
        "grid": "tg",
        "n_topics": "4",
        "generations_per_topic": "3",
        "family": "multi_topic",
        "generators": "small",
        "quality.min_stop_words": "0",
        "cell": label,
    }


def test_study_and_generate_grids_share_one_syntax_and_labels():
    from synthdiv.study import StudyConfig

    grid = {"n_topics": [1, 2], "generators": {"small": [{"llm": {"backend": "embedded"}}]}}
    study = parse_config({"grid": grid}, StudyConfig)
    generate = parse_config({"grid": grid}, GenerateGridConfig)
    assert [c.name for c in study.corpora] == [c.name for c in grid_cells(generate)]
    assert study.corpora[0].generate["generators"] == [{"llm": {"backend": "embedded"}}]


@pytest.mark.parametrize("axis", [[], "topic", 3, {}])
def test_a_grid_axis_must_be_a_list_or_a_labelled_mapping(axis):
    with pytest.raises(ConfigError, match="grid axis 'family' must be a non-empty list"):
        parse_config({"grid": {"family": axis}}, GenerateGridConfig)


def test_removed_generate_score_keys_point_to_the_study():
    with pytest.raises(ConfigError, match="synthdiv score --corpus"):
        parse_config({"score_after": True}, GenerateConfig)


def test_a_bad_grid_cell_fails_the_whole_grid_at_load():
    with pytest.raises(ConfigError, match="unknown prompt family 'haiku'"):
        parse_config({"grid": {"family": ["topic", "haiku"]}}, GenerateGridConfig)
