"""The cluster-agent metric's logic, driven by a scripted judge (tests/support/scripted_judge.py).
The real SmolLM2 runs in tests/integration/test_cluster_agent_llm.py.
"""

from __future__ import annotations

import json
import math

import pytest

from synthdiv.config import ConfigError
from synthdiv.metrics import create
from synthdiv.metrics.cluster_agent.clustering import (
    EMPTY_AFTER_DROP,
    Iteration,
    apply_invalid_rule,
    clustering_schema,
    clustering_validator,
    iteration_score,
    repair_partition,
    score_iteration,
    validate_partition,
    verification_validator,
)
from synthdiv.metrics.cluster_agent.config import ClusterAgentParams
from synthdiv.metrics.cluster_agent.criteria import (
    Criteria,
    Criterion,
    candidates_text,
    merge_by_name,
    ranked_names,
    refine,
    slugify,
    validate_criteria_answer,
)
from synthdiv.metrics.cluster_agent.prompts import load_template, numbered, template_refs
from tests.support.scripted_judge import (
    compute,
    criteria_answer,
    make_runner,
    oracle,
    template_name,
    topic_corpus,
    verdicts,
)


# -- partition validation and the score ---------------------------------------------------------
@pytest.mark.parametrize(
    ("clusters", "problem"),
    [
        ([[1, 2], [3], [4]], None),
        ([[1, 2], [4]], "indices not placed: [3]"),
        ([[1, 2], [2, 3, 4]], "index 2 is placed twice"),
        ([[1, 2], [3, 5], [4]], "index 5 is outside 1..4"),
        ([[0, 1, 2, 3, 4]], "index 0 is outside 1..4"),
        ([[1, 2.0], [3, 4]], "member 2.0 is not an integer"),
        ([[1, "2"], [3, 4]], "member '2' is not an integer"),
        ([[True, 2], [3, 4]], "member True is not an integer"),
        ([[1, 2, 3, 4], []], "cluster 2 has no members"),
        ([], "no clusters"),
        ("1,2,3,4", "no clusters"),
    ],
)
def test_partition_validation(clusters, problem):
    reason = validate_partition(clusters, K=4)
    assert (reason is None) if problem is None else (problem in reason), reason


def test_clustering_validator_checks_the_partition_not_the_scores():
    validate = clustering_validator(3, ["depth"])
    good = {"clusters": [{"members": [1, 2, 3], "scores": {"depth": {"score": 5}}}]}
    assert validate(good) is None
    # a missing or out-of-range 1-5 score is counted by the metric, not a failed iteration
    assert (
        validate({"clusters": [{"members": [1, 2, 3], "scores": {"depth": {"score": 6}}}]}) is None
    )
    assert validate({"clusters": [{"members": [1, 2, 3]}]}) is None
    assert "not placed" in validate({"clusters": [{"members": [1, 2]}]})
    assert validate({"cluster": []}) == "answer has no 'clusters' list"


@pytest.mark.parametrize("K", [2, 5, 10])
def test_score_bounds_over_every_cluster_count(K):
    # C clusters of K samples: C²/K runs from 1/K (one cluster) to K (all singletons).
    scores = [iteration_score(C, K) for C in range(1, K + 1)]
    assert scores[0] == pytest.approx(1 / K) and scores[-1] == pytest.approx(K)
    assert scores == sorted(scores)
    # 'drop' shrinks n: still within [1/K, K] for any surviving clusters
    for C in range(1, K + 1):
        for n in range(C, K + 1):
            assert 1 / K <= iteration_score(C, n) <= K


def test_invalid_cluster_rules():
    sizes, valid = [3, 1, 2], [False, True, True]
    assert apply_invalid_rule(sizes, valid, "split") == (3 + 1 + 1, 6)  # 3 singletons + 2 kept
    assert apply_invalid_rule(sizes, valid, "drop") == (2, 3)
    assert apply_invalid_rule(sizes, [True] * 3, "drop") == (3, 6)
    with pytest.raises(ValueError, match="unknown invalid_cluster_rule"):
        apply_invalid_rule(sizes, valid, "merge")
    it = Iteration(0, ["a", "b", "c"], clusters=[[1, 2, 3]], valid=[False])
    score_iteration(it, "drop")
    assert it.status == EMPTY_AFTER_DROP and not it.ok
    it = Iteration(0, ["a", "b", "c"], clusters=[[1, 2, 3]], valid=[False])
    score_iteration(it, "split")
    assert (it.C, it.n, it.S, it.D) == (3, 3, 1.0, 3.0)


def test_verification_validator():
    validate = verification_validator(2)
    ok = {"verdicts": [{"cluster": 2, "valid": 0}, {"cluster": 1, "valid": 1}]}
    assert validate(ok) is None
    assert "1 verdicts for 2" in validate({"verdicts": [{"cluster": 1, "valid": 1}]})
    assert "not 1..2" in validate(
        {"verdicts": [{"cluster": 1, "valid": 1}, {"cluster": 1, "valid": 0}]}
    )
    assert "not 0 or 1" in validate(
        {"verdicts": [{"cluster": 1, "valid": 2}, {"cluster": 2, "valid": 1}]}
    )


# -- criteria -----------------------------------------------------------------------------------
def test_criteria_answer_parsing():
    good = criteria_answer(None)
    assert validate_criteria_answer(good) is None
    assert "2 items" in validate_criteria_answer(good | {"metrics": good["metrics"][:2]})
    no_def = good | {"metadata": [{"name": "a", "definition": " "}] * 3}
    assert "no definition" in validate_criteria_answer(no_def)
    assert "no usable name" in validate_criteria_answer(
        good | {"metadata": [{"name": "!!", "definition": "x"}] * 3}
    )
    assert validate_criteria_answer(["metadata"]) == "answer is not a JSON object"


def test_merge_by_name_pools_synonymous_spellings_and_ranks_by_frequency():
    answers = [
        {"metadata": [{"name": "Subject Domain", "definition": "field"},
                      {"name": "tone", "definition": "t"}],
         "metrics": [{"name": "depth", "definition": "d1"}]},
        {"metadata": [{"name": "subject-domain", "definition": "area"},
                      {"name": "length", "definition": "l"}],
         "metrics": [{"name": "Depth", "definition": "d2"}]},
    ]  # fmt: skip
    pools = merge_by_name(answers)
    assert pools["metadata"] == {
        "subject_domain": ["field", "area"],
        "tone": ["t"],
        "length": ["l"],
    }
    assert pools["metric"] == {"depth": ["d1", "d2"]}
    assert ranked_names(pools["metadata"]) == ["subject_domain", "tone", "length"]
    assert (
        candidates_text(pools["metadata"]).splitlines()[0] == "- subject_domain (x2): field | area"
    )
    assert slugify("  Reading Level (1-5) ") == "reading_level_1_5"


def test_refine_skips_the_call_when_few_names_and_falls_back_when_the_merge_fails():
    params = ClusterAgentParams(k=2)
    pool = {"a": ["def a"], "b": ["def b1", "def b2"], "c": ["def c"]}
    backend, runner = make_runner(lambda r: '{"items": []}', retries=1)
    notes: dict = {"merge_fallbacks": []}
    assert [c.name for c in refine({"a": ["x"]}, "metadata", params, runner, 0, notes)] == ["a"]
    assert backend.calls == 0
    kept = refine(pool, "metric", params, runner, 0, notes)
    assert backend.calls == 2  # one call + one retry, both invalid
    assert [c.name for c in kept] == ["b", "a"]  # the most proposed, then first proposed
    assert notes["merge_fallbacks"][0]["kind"] == "metric"


def test_criteria_are_interleaved_for_the_clusterer():
    crit = Criteria(
        [
            Criterion("metadata", "topic", "t", "same topic"),
            Criterion("metadata", "genre", "g", "same genre"),
        ],
        [Criterion("metric", "depth", "d", "similar depth")],
    )
    assert [c.name for c in crit.interleaved()] == ["topic", "depth", "genre"]
    assert crit.as_prompt_text().splitlines()[1] == "2. depth (metric, scored 1-5): similar depth"


# -- prompts and schemas ------------------------------------------------------------------------
def test_templates_load_and_fill():
    refs = template_refs("v1")
    assert refs["cluster"] == "cluster_agent/cluster@v1" and len(refs) == 5
    msgs = load_template("cluster").messages(K=4, criteria="1. topic", samples="[1] x")
    assert msgs[0]["role"] == "system" and "1. topic" in msgs[0]["content"]
    assert msgs[1]["content"].endswith("[1] x")  # samples last: the fixed text is a shared prefix
    with pytest.raises(KeyError, match=r"needs a value for \$samples"):
        load_template("cluster").messages(K=4, criteria="")
    with pytest.raises(FileNotFoundError, match="available: "):
        load_template("cluster", "v99")


def test_long_samples_are_truncated_to_the_budget():
    text = numbered(["word " * 500, "short"], max_chars=100)
    first, second = text.split("\n\n")
    assert len(first) <= len("[1] ") + 100 and first.endswith("...")
    assert second == "[2] short"


def test_params_reject_a_context_too_small_for_K_samples():
    with pytest.raises(ConfigError, match="do not fit"):
        create("cluster_agent", K=10, max_sample_chars=2000)
    with pytest.raises(ConfigError, match="invalid_cluster_rule"):
        create("cluster_agent", invalid_cluster_rule="merge")
    assert create("cluster_agent", K=10).params.sample_char_budget() > 50


def test_schemas_compile_to_llama_cpp_grammars():
    from llama_cpp import LlamaGrammar

    from synthdiv.metrics.cluster_agent.clustering import verification_schema
    from synthdiv.metrics.cluster_agent.criteria import (
        criteria_schema,
        guidance_schema,
        merge_schema,
    )

    crit = Criteria([Criterion("metadata", "topic", "t")], [Criterion("metric", "depth", "d")])
    for schema in (
        clustering_schema(crit, 5, 80), clustering_schema(Criteria(), 5, 80),
        verification_schema(2, 80), criteria_schema(80), merge_schema(3, 80), guidance_schema(80),
    ):  # fmt: skip
        assert LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False) is not None


# -- the metric end to end, on the scripted judge -----------------------------------------------
def test_oracle_scores_grow_with_topic_count(tmp_path):
    values = []
    for n_topics in (1, 2, 4):
        _, runner = make_runner(oracle)
        result = compute(topic_corpus(n_topics), runner, tmp_path / str(n_topics))
        values.append(result.value)
        assert 1 / 4 <= result.value <= 4
    assert values[0] == pytest.approx(1 / 4)  # one topic: every iteration is one cluster of 4
    assert values[0] < values[1] < values[2]
    assert result.details["failed_iterations"] == 0
    assert result.details["prompts"]["verify"] == "cluster_agent/verify@v2"
    rows = [
        json.loads(line)
        for line in (result.artifacts["cluster_agent"] / "seed_0" / "iterations.jsonl").open()
    ]
    assert len(rows) == 6 and all(r["C"] ** 2 / r["n"] == pytest.approx(r["D"]) for r in rows)
    assert (result.artifacts["cluster_agent"] / "seed_0" / "criteria.md").read_text().count(
        "## "
    ) >= 4


def test_clustering_prompts_share_their_fixed_prefix(tmp_path):
    backend, runner = make_runner(oracle)
    compute(topic_corpus(4), runner, tmp_path)
    clustering = [r for r in backend.requests if template_name(r) == "cluster"]
    assert len({r.messages[0]["content"] for r in clustering}) == 1  # instructions + criteria
    assert len({r.messages[1]["content"] for r in clustering}) > 1  # the samples differ
    assert "depth" in clustering[0].messages[0]["content"]


def test_invalid_clusters_are_split_or_dropped(tmp_path):
    def reject_all(request):
        return oracle(request, verify=lambda r: verdicts(r, valid=0))

    corpus = topic_corpus(2)
    _, runner = make_runner(reject_all)
    split = compute(corpus, runner, tmp_path / "split", invalid_cluster_rule="split")
    assert split.value == pytest.approx(4.0)  # every rejected cluster became singletons
    assert split.details["per_seed_details"][0]["invalid_clusters"] > 0
    _, runner = make_runner(reject_all)
    drop = compute(corpus, runner, tmp_path / "drop", invalid_cluster_rule="drop", N=10)
    # Only singletons survive a drop of every multi-member cluster: C_i = n_i, D_i = 1; an
    # iteration with no singleton has nothing left and is counted, not scored.
    assert drop.value == pytest.approx(1.0)
    counts = drop.details["per_seed_details"][0]["status_counts"]
    assert counts["ok"] > 0 and counts["empty_after_drop"] > 0 and sum(counts.values()) == 10
    assert drop.details["failed_iterations"] == counts["empty_after_drop"]


def test_bad_partitions_are_retried_then_counted_as_failures(tmp_path):
    # The first clustering prompt always gets a duplicate index back. The runner renames
    # request ids for the backend, so the scripted judge recognises that prompt by its samples.
    zero_prompt: dict[str, str] = {}

    def seen_zero(request):
        return zero_prompt.get("user") == request.messages[1]["content"]

    def answer(request):
        if template_name(request) == "cluster" and not zero_prompt:
            zero_prompt["user"] = request.messages[1]["content"]
        if template_name(request) == "cluster" and seen_zero(request):
            return json.dumps({"clusters": [{"members": [1, 1, 2], "scores": {}}]})
        return oracle(request)

    backend, runner = make_runner(answer, retries=2)
    result = compute(topic_corpus(3), runner, tmp_path)
    assert result.details["failed_iterations"] == 1
    zero = [r for r in backend.requests if template_name(r) == "cluster" and seen_zero(r)]
    assert len(zero) == 3  # first try + 2 retries
    assert len({r.seed for r in zero}) == 3  # each retry asks with a new seed
    row = result.details["iterations"][0][0]
    assert row["status"] == "failed_clustering"
    assert result.details["llm_usage"]["failures"] == 1
    assert 1 / 4 <= result.value <= 4  # the score comes from the 5 other iterations


def test_rerun_is_deterministic_and_served_from_the_cache(tmp_path):
    cache = tmp_path / "cache.sqlite"
    _, first_runner = make_runner(oracle, cache)
    first = compute(topic_corpus(4), first_runner, tmp_path / "a", n_seeds=2)
    backend, second_runner = make_runner(oracle, cache)
    second = compute(topic_corpus(4), second_runner, tmp_path / "b", n_seeds=2)
    assert backend.calls == 0
    assert second.details["llm_usage"]["cache_hits"] > 0
    assert second.value == first.value and second.per_seed == first.per_seed
    assert second.details["iterations"] == first.details["iterations"]
    assert len(first.per_seed) == 2 and first.ci_low <= first.value <= first.ci_high


def test_seeds_change_the_draws(tmp_path):
    backend, runner = make_runner(oracle)
    compute(topic_corpus(4), runner, tmp_path, seed=0)
    compute(topic_corpus(4), runner, tmp_path, seed=1)
    prompts = [r.messages[1]["content"] for r in backend.requests if template_name(r) == "cluster"]
    assert prompts[:6] != prompts[6:]


def test_a_corpus_smaller_than_K_is_a_clear_error(tmp_path):
    _, runner = make_runner(oracle)
    with pytest.raises(ValueError, match="3 documents to draw from, but K=4"):
        compute(topic_corpus(1, per_topic=3), runner, tmp_path)


def test_repair_keeps_first_occurrences_and_adds_missing_singletons():
    assert repair_partition([[1, 1, 2], [2, 7, "x", True]], K=4) == [[1, 2], [3], [4]]
    assert repair_partition([[]], K=2) == [[1], [2]]
    assert repair_partition("no", K=2) is None
    for broken in ([[1, 1]], [[5, 2], [2]], [[2.0, 1]]):
        assert validate_partition(repair_partition(broken, K=3), K=3) is None


def duplicate_partition(request):
    if template_name(request) == "cluster":
        return json.dumps({"clusters": [{"members": [1, 1, 2], "scores": {}}]})
    return oracle(request)


def test_all_iterations_failing_scores_nan_with_the_reason(tmp_path):
    _, runner = make_runner(duplicate_partition, retries=1)
    result = compute(topic_corpus(2), runner, tmp_path)
    assert math.isnan(result.value) and result.details["failed_iterations"] == 6
    assert "placed twice" in result.details["per_seed_details"][0]["first_error"]


def test_repair_partitions_turns_failures_into_counted_repairs(tmp_path):
    _, runner = make_runner(duplicate_partition, retries=1)
    result = compute(topic_corpus(2), runner, tmp_path, repair_partitions=True)
    assert result.details["failed_iterations"] == 0
    assert result.details["per_seed_details"][0]["repaired_iterations"] == 6
    # repaired to [[1, 2], [3], [4]]: the verifier accepts [1, 2], so C = 3, n = 4
    assert result.value == pytest.approx(9 / 4)
    assert all(r["repaired"] for r in result.details["iterations"][0])
