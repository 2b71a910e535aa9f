"""Taxonomy format, the shipped starter taxonomy, seeded sampling and clear errors."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from synthdiv.generate.taxonomy import (
    TaxonomyError,
    load_taxonomy,
    sample_topics,
    starter_taxonomy_path,
    write_taxonomy,
)


def test_starter_taxonomy_is_broad_and_well_formed():
    topics = load_taxonomy()
    assert len(topics) >= 300
    domains = Counter(t.path[0] for t in topics)
    assert len(domains) >= 10 and max(domains.values()) < len(topics) / 3
    assert all(3 <= len(t.keywords) <= 6 for t in topics)
    assert all(2 <= len(t.path) <= 5 for t in topics)
    assert len({t.leaf for t in topics}) == len(topics)


def test_sampling_is_seeded_distinct_and_bounded():
    topics = load_taxonomy()
    a, b = sample_topics(topics, 20, seed=3), sample_topics(topics, 20, seed=3)
    assert a == b and len(set(a)) == 20
    assert sample_topics(topics, 20, seed=4) != a
    with pytest.raises(
        TaxonomyError, match=f"asked for {len(topics) + 1} topics but the taxonomy has only"
    ):
        sample_topics(topics, len(topics) + 1, seed=0)


def test_jsonl_and_yaml_round_trip(tmp_path):
    topics = sample_topics(load_taxonomy(), 5, seed=0)
    assert load_taxonomy(write_taxonomy(topics, tmp_path / "t.jsonl")) == topics
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text("topics:\n  - path: [Cooking, Bread]\n    keywords: [yeast, flour]\n")
    (topic,) = load_taxonomy(yaml_file)
    assert topic.path == ("Cooking", "Bread") and topic.keywords == ("yeast", "flour")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('{"path": ["A"], "keywords": ["k"]}\nnot json\n', "row 2: invalid JSON"),
        ('{"path": ["A"]}\n', "row 1: 'keywords' must be a non-empty list"),
        ('{"path": [], "keywords": ["k"]}\n', "row 1: 'path' must be a non-empty list"),
        ('{"path": ["A", ""], "keywords": ["k"]}\n', "empty or non-string item"),
        ('{"path": ["A"], "keywords": ["k"], "x": 1}\n', "unknown keys"),
        (
            '{"path": ["A"], "keywords": ["k"]}\n{"path": ["A"], "keywords": ["j"]}\n',
            "duplicate path",
        ),
        ('["A", "k"]\n', "expected an object"),
    ],
)
def test_bad_taxonomies_fail_with_the_row(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(path)


def test_missing_file(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "nope.jsonl")


def test_starter_file_matches_its_sources():
    """The shipped JSONL is what build_starter.py makes from the hand-written lists."""
    script = starter_taxonomy_path().parent / "build_starter.py"
    spec = importlib.util.spec_from_file_location("build_starter", script)
    build_starter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_starter)
    rows = []
    for source in sorted((build_starter.HERE / "sources").glob("*.txt")):
        rows.extend(build_starter.parse_source(source.read_text(), source.name))
    shipped = [
        json.loads(line)
        for line in build_starter.HERE.joinpath("starter.jsonl").read_text().splitlines()
    ]
    assert rows == shipped
