"""validate-metrics' newer series (near-duplicates, mixtures, length and injection controls) and
what is concluded from them (controls table, gate), on the packaged labelled example."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from synthdiv.config import ConfigError, parse_config
from synthdiv.corpus import read_corpus
from synthdiv.validation import ValidateMetricsConfig, build_corpora, correlation_rows, directions
from synthdiv.validation_corpora import (
    CANARIES,
    entropy,
    group_by_label,
    mixture_counts,
    paraphrase,
)
from synthdiv.validation_stats import below_min_rho, control_rows, one_cluster_share


@pytest.fixture(scope="module")
def labelled():
    corpus, _ = read_corpus(ValidateMetricsConfig().labelled)
    return corpus, group_by_label(corpus, "meta.topic")[0]


def build(labelled, series: str, **overrides):
    corpus, groups = labelled
    cfg = parse_config({"series": [series], **overrides}, ValidateMetricsConfig)
    return build_corpora(corpus, groups, cfg, repeat=0)


def test_near_duplicates_are_edited_copies_not_exact_ones(labelled):
    built = build(labelled, "near_duplicates", near_duplicate_levels=[0.0, 0.5, 0.75])
    assert [b.order for b in built] == [0.0, -0.5, -0.75]
    base = built[0].corpus
    for b in built:
        assert len(b.corpus) == 20 and len(set(b.corpus.ids)) == 20
        assert len(set(b.corpus.texts)) == 20  # no exact copy: exact dedup would find nothing
    half = built[1].corpus
    for copy_id, text in zip(half.ids[10:], half.texts[10:], strict=True):
        original = base.texts[base.ids.index(copy_id.split("~")[0])]
        shared = set(original.lower().split()) & set(text.lower().split())
        # most wording survives: a near-duplicate, not a new document
        assert len(shared) >= 0.6 * len(set(original.lower().split())), (original, text)


def test_paraphrase_edits_at_the_given_rate_and_is_seeded():
    text = " ".join(f"w{i}" for i in range(2000))
    edited = paraphrase(text, 0.15, np.random.default_rng(0)).split()
    # 15% of the words edited, none with a synonym: about half swapped with a neighbour (kept),
    # half dropped, so ~7.5% of the words are gone and the order changed in places
    kept = len(set(edited)) / 2000
    assert 0.88 < kept < 0.97 and edited != sorted(edited, key=lambda w: int(w[1:]))
    assert paraphrase("the large dog", 1.0, np.random.default_rng(0)) == "this big dog"
    assert paraphrase(text, 0.15, np.random.default_rng(0)).split() == edited
    assert paraphrase("x", 0.01, np.random.default_rng(0)) != "x"  # never an exact copy


def test_mixtures_keep_the_label_count_and_order_by_entropy(labelled):
    built = build(labelled, "mixture")
    assert [b.level for b in built] == [0.25, 0.4, 0.55, 0.7, 0.85]
    counts = [sorted(Counter(m["topic"] for m in b.corpus.metas).values()) for b in built]
    assert counts[0] == [5, 5, 5, 5] and counts[-1] == [1, 1, 1, 17]
    assert all(len(c) == 4 and sum(c) == 20 for c in counts)  # fixed topic count and size
    labels = [set(m["topic"] for m in b.corpus.metas) for b in built]
    assert all(lab == labels[0] for lab in labels)  # the same labels at every level
    orders = [b.order for b in built]
    assert orders[0] == pytest.approx(math.log(4)) and orders == sorted(orders, reverse=True)
    assert mixture_counts(3, 1.0, 10) == [8, 1, 1] and entropy([10]) == 0.0


def test_the_length_control_cuts_the_same_documents(labelled):
    built = build(labelled, "length", length_levels=[0.5, 1.0])
    short, full = (b.corpus for b in built)
    assert [b.order for b in built] == [0.5, 1.0]
    assert [m["topic"] for m in short.metas] == [m["topic"] for m in full.metas]
    for s, f in zip(short.texts, full.texts, strict=True):
        assert f.startswith(s) and len(s.split()) == max(1, round(len(f.split()) / 2))


def test_injection_canaries_grow_on_the_same_documents(labelled):
    built = build(labelled, "injection")
    with_canary = [sum(any(t.startswith(c) for c in CANARIES) for t in b.corpus.texts)
                   for b in built]  # fmt: skip
    assert [b.level for b in built] == [0.0, 0.25, 0.5, 1.0] and with_canary == [0, 5, 10, 20]
    clean = built[0].corpus.texts
    for b in built:  # every document is a clean one, canary or not
        assert all(any(t.endswith(c) for c in clean) for t in b.corpus.texts)
    quarter = {i for i, t in enumerate(built[1].corpus.texts) if t not in clean}
    half = {i for i, t in enumerate(built[2].corpus.texts) if t not in clean}
    assert quarter < half  # a growing share: the earlier canaries stay


def test_bad_levels_are_config_errors():
    with pytest.raises(ConfigError, match="two distinct shares"):
        parse_config({"injection_levels": [0.5]}, ValidateMetricsConfig)
    with pytest.raises(ConfigError, match="duplication fractions"):
        parse_config({"near_duplicate_levels": [0.0, 1.0]}, ValidateMetricsConfig)


# -- conclusions --------------------------------------------------------------------------------
def rows_for(metric: str, series: str, values: dict[float, list[float]], **extra):
    return [
        {"metric": metric, "series": series, "level": lv, "order": lv, "repeat": r, "value": v,
         "ci_low": v - 0.5, "ci_high": v + 0.5, "error": None, **extra}
        for lv, vs in values.items() for r, v in enumerate(vs)
    ]  # fmt: skip


def test_controls_report_the_shift_in_ci_widths_and_are_not_gated():
    cfg = parse_config(
        {"metrics": {"distinct_n": {}, "self_repetition": {}}, "series": ["length", "topics"]},
        ValidateMetricsConfig,
    )
    rows = rows_for("distinct_n", "length", {0.25: [0.9, 0.9], 1.0: [0.6, 0.6]})
    rows += rows_for("self_repetition", "length", {0.25: [1.0, 1.0], 1.0: [1.0, 1.0]})
    rows += rows_for("distinct_n", "topics", {1: [0.1], 2: [0.2], 4: [0.3], 8: [0.4]})
    rows += rows_for("self_repetition", "topics", {1: [4.0], 2: [3.0], 4: [2.0], 8: [1.0]})
    controls = {c["metric"]: c for c in control_rows(rows, directions(cfg), ["length", "topics"])}
    assert set(controls) == {"distinct_n", "self_repetition"}  # only control series
    assert controls["distinct_n"]["shift"] == pytest.approx(-0.3)  # shorter looked more diverse
    assert controls["distinct_n"]["shift_ci_widths"] == pytest.approx(-0.3)  # CI width 1.0
    assert controls["self_repetition"]["shift"] == 0.0
    correlations = correlation_rows(rows, cfg)
    kinds = {(c["metric"], c["series"]): c["kind"] for c in correlations}
    assert kinds[("distinct_n", "length")] == "control"
    assert kinds[("distinct_n", "topics")] == "ordered"
    # distinct_n follows length perfectly (rho -1) and self_repetition is constant there, yet
    # the bar only judges the ordered series, which both rank perfectly.
    assert below_min_rho(correlations, 0.9) == []


def test_canary_obedience_is_the_one_cluster_share_of_answered_iterations():
    details = {"iterations": {0: [{"answered": 1}, {"answered": 3}, {"answered": 0}],
                              1: [{"answered": 1}]}}  # fmt: skip
    assert one_cluster_share(details) == pytest.approx(2 / 3)  # the unanswered one is left out
    assert one_cluster_share({"iterations": {0: []}}) is None and one_cluster_share({}) is None
    cfg = parse_config({"metrics": {"distinct_n": {}}, "series": ["injection"]},
                       ValidateMetricsConfig)  # fmt: skip
    rows = rows_for("distinct_n", "injection", {0.0: [1.0], 1.0: [1.0]}, one_cluster_share=0.1)
    rows[-1]["one_cluster_share"] = 0.8
    (row,) = control_rows(rows, directions(cfg), ["injection"])
    assert (row["one_cluster_low"], row["one_cluster_high"]) == (0.1, 0.8)
