"""The generation plan: every sample to make, decided up front from the config and its seed.

Each task fixes its topic(s), style, persona set, generator and decoding seed, so the plan (and
therefore every shard) is identical on every run: a resumed job regenerates exactly the shards it
lacks, and the response cache answers any request it already paid for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.prompts import PromptTemplate, load_personas, load_styles, load_template
from synthdiv.generate.taxonomy import Topic, load_taxonomy, sample_topics
from synthdiv.generate.validate import response_schema
from synthdiv.llm.base import ChatRequest


@dataclass(frozen=True)
class GenerationTask:
    index: int
    doc_id: str
    topics: tuple[Topic, ...]  # the first is the task's own topic; the rest are multi-topic extras
    style: str | None
    personas: tuple[str, ...]
    generator: int  # index into config.generators
    seed: int


@dataclass
class GenerationPlan:
    config: GenerateConfig
    template: PromptTemplate
    styles: dict[str, str]
    topics: list[Topic]
    tasks: list[GenerationTask]
    schema: dict[str, Any] = field(default_factory=dict)

    def shards(self) -> list[list[GenerationTask]]:
        size = self.config.output.shard_size
        return [self.tasks[i : i + size] for i in range(0, len(self.tasks), size)]

    def request(self, task: GenerationTask) -> ChatRequest:
        llm = self.config.generators[task.generator].llm
        return ChatRequest(
            id=task.doc_id,
            messages=self.messages(task),
            json_schema=self.schema,
            temperature=llm.temperature,
            top_p=llm.top_p,
            max_tokens=llm.max_tokens,
            seed=task.seed,
            prompt_id=self.template.id,
        )

    def messages(self, task: GenerationTask) -> list[dict[str, str]]:
        topic = task.topics[0]
        style = task.style or ""
        return self.template.render(
            topic_path=" > ".join(topic.path[:-1]) or topic.leaf,
            subtopic=topic.leaf,
            keywords=", ".join(topic.keywords),
            topic_list="\n".join(
                f"- {t.leaf} ({' > '.join(t.path[:-1])}); keywords: {', '.join(t.keywords)}"
                for t in task.topics
            ),
            style_name=style.replace("_", " "),
            style_description=self.styles.get(style, ""),
            persona_list="\n".join(f"- {p}" for p in task.personas),
        )

    def task_meta(self, task: GenerationTask) -> dict[str, Any]:
        return {
            "topic_path": list(task.topics[0].path),
            "keywords": list(task.topics[0].keywords),
            "extra_topics": [list(t.path) for t in task.topics[1:]],
            "family": self.template.family,
            "prompt_id": self.template.id,
            "style": task.style,
            "personas": list(task.personas),
            "generator": self.config.generators[task.generator].label,
            "seed": task.seed,
        }


def _weighted(names: list[str], weights: dict[str, float], default: float) -> np.ndarray:
    p = np.array([weights.get(n, default) for n in names], dtype=float)
    if p.sum() <= 0:
        raise ValueError("all weights are zero")
    return p / p.sum()


def _draw_others(rng: np.random.Generator, pool: list[Topic], own: Topic, n: int) -> list[Topic]:
    """``n`` distinct topics of ``pool`` other than ``own``, uniformly. Rejection draws cost O(n)
    per task; a list of the candidates would cost O(pool) per task, hours at the paper's 𝒯."""
    chosen: list[Topic] = []
    while len(chosen) < n:
        candidate = pool[int(rng.integers(len(pool)))]
        if candidate != own and candidate not in chosen:
            chosen.append(candidate)
    return chosen


def build_plan(config: GenerateConfig) -> GenerationPlan:
    """Load and check every input, then lay out the tasks. Raises before any LLM call."""
    template = load_template(config.family, config.prompt_version, config.prompt_dir)
    taxonomy = load_taxonomy(config.taxonomy)
    topics = sample_topics(taxonomy, config.n_topics, config.seed)
    styles = load_styles()
    personas = load_personas(config.personas) if template.uses_personas else []
    unknown = set(config.persona_weights) - set(personas)
    if personas and unknown:
        raise ValueError(f"persona_weights name personas not in the list: {sorted(unknown)[:3]}")
    rng = np.random.default_rng([config.seed, 1])
    style_names = [s for s in styles if config.style_weights.get(s, 0) > 0]
    style_p = _weighted(style_names, config.style_weights, 0.0) if template.uses_style else None
    persona_p = _weighted(personas, config.persona_weights, 1.0) if personas else None
    gen_p = np.array([g.weight for g in config.generators]) / sum(
        g.weight for g in config.generators
    )
    n_personas = min(config.personas_per_prompt, len(personas))
    extra_pool = topics if config.extra_topics_from == "sampled" else taxonomy
    n_extra = min(config.topics_per_prompt, len(extra_pool)) - 1 if template.multi_topic else 0
    tasks: list[GenerationTask] = []
    for t_rank, topic in enumerate(topics):
        for g in range(config.generations_per_topic):
            extra = _draw_others(rng, extra_pool, topic, n_extra)
            style = str(rng.choice(style_names, p=style_p)) if style_p is not None else None
            chosen = (
                tuple(
                    str(p)
                    for p in rng.choice(personas, size=n_personas, replace=False, p=persona_p)
                )
                if persona_p is not None
                else ()
            )
            index = len(tasks)
            tasks.append(
                GenerationTask(
                    index=index,
                    doc_id=f"t{t_rank:06d}-g{g:04d}",
                    topics=(topic, *extra),
                    style=style,
                    personas=chosen,
                    generator=int(rng.choice(len(config.generators), p=gen_p)),
                    seed=int(rng.integers(0, 2**31 - 1)),
                )
            )
    schema = response_schema(template.extra_fields, config.max_text_chars)
    return GenerationPlan(config, template, styles, topics, tasks, schema)
