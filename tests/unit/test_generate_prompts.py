"""Every prompt family renders a complete prompt; the plan is seeded; bad knobs fail early."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from synthdiv.config import ConfigError, parse_config
from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.plan import build_plan
from synthdiv.generate.prompts import (
    PromptError,
    available_families,
    load_personas,
    load_styles,
    load_template,
)

FAMILIES = ["topic", "topic_style", "topic_style_persona", "multi_topic"]


def test_the_four_paper_families_ship():
    assert set(FAMILIES) <= set(available_families())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_renders_a_complete_prompt(family):
    plan = build_plan(GenerateConfig(family=family, n_topics=6, generations_per_topic=2, seed=1))
    template = plan.template
    assert template.id == f"generate/{family}@v1"
    for task in plan.tasks:
        system, user = plan.messages(task)
        assert system["role"] == "system" and user["role"] == "user"
        text = system["content"] + user["content"]
        assert "$" not in text, "an unfilled placeholder"
        assert "passages" in system["content"] and "4 distinct answer options" in system["content"]
        assert task.topics[0].leaf in user["content"]
        for keyword in task.topics[0].keywords:
            assert keyword in user["content"]
        if template.uses_style:
            assert task.style in load_styles() and load_styles()[task.style] in user["content"]
        else:
            assert task.style is None and "Style" not in user["content"]
        if template.uses_personas:
            assert len(task.personas) == 5 and all(p in user["content"] for p in task.personas)
            assert '"audience"' in system["content"]
        if template.multi_topic:
            assert len(task.topics) == 3 and all(t.leaf in user["content"] for t in task.topics)
        else:
            assert len(task.topics) == 1
    # the system prompt is the same for every task: the shared prefix engines can cache
    assert len({plan.messages(t)[0]["content"] for t in plan.tasks}) == 1
    assert set(template.extra_fields) <= set(plan.schema["properties"])


def test_plan_is_seeded_and_covers_topics_times_generations():
    cfg = GenerateConfig(family="topic_style_persona", n_topics=5, generations_per_topic=3, seed=7)
    a, b = build_plan(cfg), build_plan(cfg)
    assert [plan.request(t).model_dump() for plan in (a,) for t in plan.tasks] == [
        b.request(t).model_dump() for t in b.tasks
    ]
    assert len(a.tasks) == 15 and len({t.doc_id for t in a.tasks}) == 15
    assert Counter(t.topics[0] for t in a.tasks) == {t: 3 for t in a.topics}
    assert len({t.seed for t in a.tasks}) == 15
    other = build_plan(cfg.model_copy(update={"seed": 8}))
    assert [t.seed for t in other.tasks] != [t.seed for t in a.tasks]


def test_style_weights_and_generator_mix_are_respected():
    cfg = parse_config(
        {
            "n_topics": 50,
            "generations_per_topic": 8,
            "style_weights": {
                "blog_post": 3,
                "how_to_tutorial": 1,
                "textbook_academic": 0,
                "textbook_narrative": 0,
            },
            "generators": [
                {"name": "a", "weight": 1, "llm": {"backend": "embedded"}},
                {"name": "b", "weight": 3, "llm": {"backend": "embedded"}},
            ],
        },
        GenerateConfig,
    )
    plan = build_plan(cfg)
    styles = Counter(t.style for t in plan.tasks)
    assert set(styles) == {"blog_post", "how_to_tutorial"}
    assert 2.4 < styles["blog_post"] / styles["how_to_tutorial"] < 3.8
    gens = Counter(t.generator for t in plan.tasks)
    assert 2.4 < gens[1] / gens[0] < 3.8
    assert plan.task_meta(plan.tasks[0])["generator"] in {"a", "b"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"family": "poetry"}, "unknown prompt family 'poetry'; available: multi_topic"),
        ({"family": "topic", "prompt_version": 9}, "has no version 9"),
        ({"style_weights": {"sonnet": 1}}, "unknown styles"),
        ({"style_weights": {"blog_post": 0}}, "style weights sum to 0"),
        ({"generators": []}, "at least one generator"),
        ({"n_topics": 0}, "n_topics"),
        ({"n_topic": 3}, "n_topic"),
    ],
)
def test_bad_knobs_fail_at_load(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(data, GenerateConfig)


def test_too_many_topics_fails_before_any_work():
    with pytest.raises(ValueError, match="taxonomy has only"):
        build_plan(GenerateConfig(n_topics=100_000))


@pytest.mark.parametrize("source", ["sampled", "taxonomy"])
def test_multi_topic_extras_come_from_the_chosen_pool(source):
    cfg = GenerateConfig(
        family="multi_topic",
        n_topics=4,
        generations_per_topic=50,
        topics_per_prompt=3,
        extra_topics_from=source,
        seed=3,
    )
    plan = build_plan(cfg)
    sampled = set(plan.topics)
    extras = [t for task in plan.tasks for t in task.topics[1:]]
    for task in plan.tasks:
        own, *others = task.topics
        assert len(others) == 2 and own not in others and len(set(others)) == 2
    if source == "sampled":  # the corpus covers exactly the 𝒯 topics
        assert set(extras) == sampled
    else:  # 400 draws from a 418-topic taxonomy reach far beyond the 4 sampled ones
        assert len(set(extras) - sampled) > 100
    assert plan.task_meta(plan.tasks[0])["extra_topics"] == [
        list(t.path) for t in plan.tasks[0].topics[1:]
    ]


def test_multi_topic_with_two_sampled_topics_offers_the_other_one():
    plan = build_plan(
        GenerateConfig(
            family="multi_topic", n_topics=2, generations_per_topic=3, topics_per_prompt=5
        )
    )
    assert all(
        task.topics[1:] == tuple(t for t in plan.topics if t != task.topics[0])
        for task in plan.tasks
    )


def test_user_prompt_dir_adds_a_family_version(tmp_path):
    source = load_template("topic")
    (tmp_path / "topic.v2.yaml").write_text(
        f"family: topic\nversion: 2\nsystem: |\n  {source.system.splitlines()[0]} Be brief.\n"
        "user: |\n  Topic: $subtopic ($keywords)\n"
    )
    cfg = GenerateConfig(
        family="topic", prompt_dir=str(tmp_path), n_topics=2, generations_per_topic=1
    )
    plan = build_plan(cfg)
    assert plan.template.id == "generate/topic@v2"
    assert "Be brief." in plan.messages(plan.tasks[0])[0]["content"]
    assert load_template("topic", 1, str(tmp_path)).version == 1


def test_personas_file_is_user_extensible(tmp_path):
    assert len(load_personas()) >= 30
    own = tmp_path / "p.yaml"
    own.write_text("personas:\n  - a beekeeper\n  - a sailor\n")
    assert load_personas(str(own)) == ["a beekeeper", "a sailor"]
    own.write_text("personas: []\n")
    with pytest.raises(PromptError, match="non-empty list"):
        load_personas(str(own))
