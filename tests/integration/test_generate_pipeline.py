"""The generate stage end to end through the real openai backend (ray.data.llm HTTP processor)
against a real loopback server: sharded output, rejects with raw output, resume without loss or
duplication, MLflow lineage, the grid, and the mixture read back by synthdiv.corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdiv.config import CorpusConfig, parse_config
from synthdiv.corpus import CorpusError, read_corpus
from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.grid import GenerateGridConfig, run_grid
from synthdiv.generate.mix import MixConfig, mix_corpora
from synthdiv.generate.pipeline import GenerateError, generate_corpus
from synthdiv.generate.plan import build_plan
from synthdiv.generate.preflight import GeneratorUnavailable
from synthdiv.shards import SUCCESS
from synthdiv.tracking import TAG_JOB
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.samples import valid_answer

pytestmark = pytest.mark.slow

MALFORMED = 'Sure! Here are the passages: {"passages": [ oops'


def _config(server: ScriptedOpenAIServer, runtime, **overrides) -> GenerateConfig:
    data = {
        "runtime": runtime.model_dump(),
        "family": "topic",
        "n_topics": 4,
        "generations_per_topic": 3,
        "seed": 5,
        "output": {"shard_size": 4},
        "generators": [
            {
                "name": "scripted",
                "llm": {
                    "backend": "openai",
                    "base_url": server.base_url,
                    "model": "gen",
                    "max_retries": 1,
                    "batch_size": 4,
                    "concurrency": 1,
                    "timeout_s": 10,
                },
            }
        ],
        **overrides,
    }
    return parse_config(data, GenerateConfig)


def _script(cfg_topics: list[str], bad_topic: str) -> dict[str, list[dict]]:
    """Valid JSON per topic, except ``bad_topic`` which always answers malformed text."""
    script = {f"Subtopic: {t}": [{"content": valid_answer(t, 0)}] for t in cfg_topics}
    script[f"Subtopic: {bad_topic}"] = [{"content": MALFORMED}]
    return script


@pytest.fixture(scope="module")
def server_topics():
    from synthdiv.config import RuntimeConfig

    plan = build_plan(
        GenerateConfig(
            runtime=RuntimeConfig(), family="topic", n_topics=4, generations_per_topic=3, seed=5
        )
    )
    return [t.leaf for t in plan.topics]


def _ids(corpus_dir: str) -> list[str]:
    corpus, _ = read_corpus(CorpusConfig(path=corpus_dir))
    return sorted(corpus.ids)


def test_generation_resumes_without_loss_or_duplication_and_counts_rejects(
    ray_local, runtime, server_topics, tmp_path
):
    bad = server_topics[1]
    with ScriptedOpenAIServer(_script(server_topics, bad)) as server:
        cfg = _config(server, runtime)
        first = generate_corpus(cfg, max_new_shards=1)
        corpus_dir = first.outputs["corpus"]
        assert first.metrics["generate.complete"] == 0.0
        assert not (Path(corpus_dir) / SUCCESS).exists()
        with pytest.raises(CorpusError, match="incomplete corpus"):
            read_corpus(CorpusConfig(path=corpus_dir))
        calls_after_first = len(server.requests)

        done = generate_corpus(cfg)  # the rerun: same job, same directory
        assert done.outputs["corpus"] == corpus_dir
        assert done.metrics["generate.complete"] == 1.0
        assert done.metrics["run.shards"] == 2.0  # only the two missing shards were generated
        n_bad_calls = server.count(f"Subtopic: {bad}")

    # every planned sample is either a document or a reject, exactly once
    plan = build_plan(cfg)
    bad_ids = {t.doc_id for t in plan.tasks if t.topics[0].leaf == bad}
    good_ids = sorted(t.doc_id for t in plan.tasks if t.doc_id not in bad_ids)
    assert _ids(corpus_dir) == good_ids
    assert done.metrics["generate.n_requested"] == 12
    assert done.metrics["generate.n_ok"] == 9 and done.metrics["generate.n_rejected"] == 3
    assert n_bad_calls == 3 * 2  # one try + one bounded retry per bad sample
    assert calls_after_first >= 4

    rejects = [
        json.loads(line)
        for f in sorted(Path(done.outputs["rejects"]).glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert sorted(r["id"] for r in rejects) == sorted(bad_ids)
    assert all(r["raw"] == MALFORMED and "invalid JSON" in r["error"] for r in rejects)
    assert all(r["attempts"] == 2 and r["meta"]["topic_path"][-1] == bad for r in rejects)

    corpus, _ = read_corpus(CorpusConfig(path=corpus_dir))
    meta = corpus.metas[0]
    assert meta["family"] == "topic" and meta["prompt_id"] == "generate/topic@v1"
    assert meta["generator"] == "scripted" and len(meta["sample"]["passages"]) == 3
    assert meta["sample"]["options"][meta["sample"]["answer_index"]] == "second"
    # the server repeats itself per topic: same passages, but each rendering differs, so the
    # copies are near duplicates, not exact ones
    assert done.metrics["dedup.exact_rate"] == 0.0
    assert done.metrics["dedup.near_rate"] > 0.0
    manifest = json.loads((Path(corpus_dir) / "manifest.json").read_text())
    assert manifest["n_docs"] == 9 and manifest["digest"] == corpus.digest

    from mlflow.tracking import MlflowClient

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(done.outputs["mlflow_run_id"])
    assert run.data.params["prompt.id"] == "generate/topic@v1"
    assert run.data.params["n_topics"] == "4" and run.data.params["family"] == "topic"
    assert run.data.metrics["generate.n_rejected"] == 3
    assert run.data.metrics["run.cache_hits"] >= 0
    outputs = [
        d
        for d in run.inputs.dataset_inputs
        if any(t.key == "mlflow.data.context" and t.value == "output" for t in d.tags)
    ]
    assert outputs and outputs[0].dataset.digest == corpus.digest[:36]
    # one run for the job, reused by the rerun
    same_job = client.search_runs(
        [run.info.experiment_id], f"tags.`{TAG_JOB}` = '{run.data.tags[TAG_JOB]}'"
    )
    assert len(same_job) == 1


def test_dedup_filter_drops_duplicates_from_the_corpus(ray_local, runtime, server_topics):
    with ScriptedOpenAIServer(_script(server_topics, "no-such-topic")) as server:
        cfg = _config(
            server,
            runtime,
            dedup={"filter": "near", "threshold": 0.5},
        )
        result = generate_corpus(cfg)
    ids = _ids(result.outputs["corpus"])
    assert sorted(i.split("-")[0] for i in ids) == ["t000000", "t000001", "t000002", "t000003"]
    assert result.metrics["generate.n_docs"] == 4


def test_degenerate_text_is_retried_then_rejected_by_the_quality_gate(
    ray_local, runtime, server_topics
):
    script = _script(server_topics, "no-such-topic")
    degenerate = json.loads(valid_answer(server_topics[2], 0))
    degenerate["passages"] = [
        {"concepts": ["x"], "text": str(i)} for i in range(1, 4)
    ]  # "1", "2", "3"
    script[f"Subtopic: {server_topics[2]}"] = [{"content": json.dumps(degenerate)}]
    with ScriptedOpenAIServer(script) as server:
        result = generate_corpus(_config(server, runtime))
        retried = server.count(f"Subtopic: {server_topics[2]}")
    assert (
        result.metrics["generate.n_rejected"] == result.metrics["generate.n_rejected_quality"] == 3
    )
    assert retried == 3 * 2  # one try + one bounded retry each
    rejects = [
        json.loads(line)
        for f in sorted(Path(result.outputs["rejects"]).glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert all("quality: passage 1 has 1 words (< 6)" in r["error"] for r in rejects)
    assert all(r["meta"]["topic_path"][-1] == server_topics[2] for r in rejects)


def test_no_valid_sample_fails_the_stage_with_its_counts(
    ray_local, runtime, server_topics, mlflow_server
):
    from mlflow.tracking import MlflowClient

    from synthdiv.tracking import TAG_ERROR

    script = {f"Subtopic: {t}": [{"content": MALFORMED}] for t in server_topics}
    with ScriptedOpenAIServer(script) as server:
        cfg = _config(server, runtime)
        with pytest.raises(GenerateError) as caught:
            generate_corpus(cfg)
    message = str(caught.value)
    assert (
        "12 requested, 12 answered, 12 invalid JSON, 0 rejected by the quality gate, "
        "0 not of the sample schema, 0 engine errors"
    ) in message
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name(runtime.experiment)
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FAILED" and "no valid samples" in run.data.tags[TAG_ERROR]
    assert run.data.metrics["generate.n_invalid_json"] == 12.0
    rejects = message.split("raw answer: ")[1].strip()
    assert sum(1 for p in Path(rejects).glob("*.jsonl") for _ in p.open()) == 12  # none lost


def test_unreachable_generator_fails_before_work(ray_local, runtime):
    cfg = parse_config(
        {
            "runtime": runtime.model_dump(),
            "n_topics": 2,
            "generations_per_topic": 1,
            "generators": [
                {"llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x"}}
            ],
        },
        GenerateConfig,
    )
    with pytest.raises(GeneratorUnavailable, match="unreachable at http://127.0.0.1:9/v1"):
        generate_corpus(cfg)


def test_grid_makes_one_corpus_per_cell_with_lineage_then_mix(
    ray_local, runtime, server_topics, tmp_path
):
    with ScriptedOpenAIServer({"Subtopic:": [{"content": valid_answer("any", 1)}]}) as server:
        gen = _config(server, runtime).generators[0].model_dump()
        grid = parse_config(
            {
                "runtime": runtime.model_dump(),
                "name": "mini",
                "base": {
                    "family": "topic",
                    "generations_per_topic": 1,
                    "output": {"shard_size": 2},
                    "generators": [gen],
                },
                "grid": {"n_topics": [1, 2]},
            },
            GenerateGridConfig,
        )
        results = run_grid(grid)
    assert set(results) == {"n_topics-1", "n_topics-2"}
    assert len(_ids(results["n_topics-1"].outputs["corpus"])) == 1
    assert len(_ids(results["n_topics-2"].outputs["corpus"])) == 2
    from mlflow.tracking import MlflowClient

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(results["n_topics-2"].outputs["mlflow_run_id"])
    assert run.data.tags["synthdiv.lineage.grid"] == "mini"
    assert run.data.tags["synthdiv.lineage.n_topics"] == "2"
    assert "mlflow.parentRunId" in run.data.tags

    real = tmp_path / "real.jsonl"
    real.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": "word " * 10}) + "\n" for i in range(5))
    )
    syn, _ = read_corpus(CorpusConfig(path=results["n_topics-2"].outputs["corpus"]))
    mix = parse_config(
        {
            "runtime": runtime.model_dump(),
            "sources": [
                {"name": "real", "corpus": {"path": str(real)}, "target_tokens": 30},
                {
                    "name": "syn",
                    "corpus": {"path": results["n_topics-2"].outputs["corpus"]},
                    "weight": None,
                    "target_tokens": 3 * sum(len(t.split()) for t in syn.texts),
                },
            ],
            "seed": 1,
        },
        MixConfig,
    )
    mixed = mix_corpora(mix)
    rows = {r["source"]: r for r in mixed.extra["manifest"]["sources"]}
    assert rows["real"]["effective_tokens"] == 30 and rows["real"]["docs_out"] == 3
    assert rows["syn"]["docs_out"] == 6 and rows["syn"]["repeat_factor"] == 3.0
    corpus, _ = read_corpus(CorpusConfig(path=mixed.outputs["corpus"]))
    assert sorted(m["source"] for m in corpus.metas) == ["real"] * 3 + ["syn"] * 6


def test_taxonomy_from_corpus_feeds_generation(ray_local, tmp_path):
    from synthdiv.config import LLMConfig
    from synthdiv.corpus import Corpus
    from synthdiv.generate.taxonomy import load_taxonomy
    from synthdiv.generate.taxonomy_builder import taxonomy_from_corpus

    answer = {"path": ["Cooking", "Baking", "Bread"], "keywords": ["yeast", "flour", "proofing"]}
    script = {
        "about bread": [{"content": json.dumps(answer)}],
        "about sourdough": [
            {"content": json.dumps({**answer, "keywords": ["starter", "yeast", "acidity"]})}
        ],
        "about nothing": [{"content": "I cannot classify this."}],
    }
    corpus = Corpus(ids=["a", "b", "c"], texts=["about bread", "about sourdough", "about nothing"])
    with ScriptedOpenAIServer(script) as server:
        llm = LLMConfig(backend="openai", base_url=server.base_url, model="m", max_retries=0)
        topics = taxonomy_from_corpus(corpus, llm, tmp_path / "tax.jsonl", cache_dir="")
    assert [t.path for t in topics] == [("Cooking", "Baking", "Bread")]
    assert set(topics[0].keywords) == {"yeast", "flour", "proofing", "starter", "acidity"}
    assert load_taxonomy(tmp_path / "tax.jsonl") == topics
