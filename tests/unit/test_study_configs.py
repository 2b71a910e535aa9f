"""Every shipped study config validates end to end (all stage configs built, nothing run)."""

from pathlib import Path

import pytest

from synthdiv.config import load_config
from synthdiv.study import StudyConfig, plan_study

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml"))
STUDIES = [p for p in EXAMPLES if p.name.startswith(("paper_", "quickstart"))]


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_study_config_plans(path):
    cfg = load_config(path, StudyConfig)
    plans = plan_study(cfg)
    assert len(plans) == len(cfg.corpora) >= 2
    for plan in plans:
        assert plan.score.corpus.path == plan.generate.output.path


def test_paper_grid_has_six_cells():
    cfg = load_config(
        Path(__file__).parents[2] / "examples" / "paper_topics_gens.yaml", StudyConfig
    )
    assert len(cfg.corpora) == 6


def test_identical_generation_knobs_share_one_corpus():
    cfg = load_config(Path(__file__).parents[2] / "examples" / "paper_ratio.yaml", StudyConfig)
    paths = {p.generate.output.path for p in plan_study(cfg)}
    assert len(paths) == 1


def test_each_model_size_gets_its_own_recipe():
    cfg = load_config(
        Path(__file__).parents[2] / "examples" / "paper_topics_gens.yaml", StudyConfig
    )
    plan = plan_study(cfg)[0]
    small, large = plan.pretrain["350m"].train, plan.pretrain["1b"].train
    assert (small.schedule.global_batch_size, large.schedule.global_batch_size) == (256, 128)
    assert (small.scale.num_workers, large.scale.num_workers) == (16, 32)
    assert (small.scale.strategy, large.scale.strategy) == ("ddp", "fsdp")
    assert (
        small.schedule.train_tokens == 50_000_000_000
        and large.schedule.train_tokens == 150_000_000_000
    )
    assert small.optim.weight_decay == large.optim.weight_decay == 0.1  # the shared part
    assert plan.pretrain["1b"].model.preset == "1b"


def test_a_recipe_for_a_size_not_studied_is_an_error():
    from synthdiv.config import ConfigError

    path = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    with pytest.raises(ConfigError, match=r"pretrain_by_size names sizes not in model_sizes.*'1b'"):
        load_config(path, StudyConfig, {"pretrain_by_size": {"1b": {}}})


def test_ratio_study_scores_its_one_synthetic_corpus_once():
    from synthdiv.tracking import job_id_for

    cfg = load_config(Path(__file__).parents[2] / "examples" / "paper_ratio.yaml", StudyConfig)
    plans = plan_study(cfg)
    assert len(plans) == 6 and len({p.name for p in plans}) == 6
    assert len({job_id_for("score", p.score, None) for p in plans}) == 1
    assert len({job_id_for("generate", p.generate, None) for p in plans}) == 1


def test_models_trained_on_one_corpus_at_different_ratios_are_separate_points():
    from synthdiv.evaluate.correlate import join_runs
    from synthdiv.tracking.query import RunRecord

    def run(run_id, stage, tags, metrics):
        return RunRecord(
            run_id=run_id,
            run_name=run_id,
            status="FINISHED",
            start_time=0,
            tags={"synthdiv.stage": stage, "synthdiv.dataset_digest": "d1", **tags},
            metrics=metrics,
        )

    score = run("s", "score", {}, {"div.vendi.value": 3.0})
    evals = [
        run(
            f"e{r}",
            "eval",
            {
                "synthdiv.corpus_name": f"synthetic_{r}b",
                "synthdiv.model_size": "350m",
                "synthdiv.variant": "base",
            },
            {"eval.avg": 0.5 + r / 100},
        )
        for r in (1, 10, 50)
    ]
    points, _ = join_runs([score], evals, "eval.avg")
    assert sorted(p.corpus_name for p in points) == [
        "synthetic_10b",
        "synthetic_1b",
        "synthetic_50b",
    ]


def test_external_corpora_plan_without_generate(tmp_path):
    from synthdiv.config import ConfigError, parse_config
    from synthdiv.score import example_corpus_path
    from tests.support.study_configs import external_study, public_set

    runtime = {"storage_uri": str(tmp_path)}
    public = public_set(tmp_path / "p.jsonl")
    plans = plan_study(parse_config(external_study(runtime, public), StudyConfig))
    assert [p.generate for p in plans] == [None, None]
    assert [p.score.corpus.path for p in plans] == [example_corpus_path(), public]
    assert plans[1].pretrain["tiny"].data.corpora[0].corpus.path.startswith("pending://")
    bad = external_study(runtime, public)
    bad["corpora"][1]["generate"] = {"n_topics": 2}
    with pytest.raises(ConfigError, match="'path' \\(external\\) and 'generate' exclude"):
        parse_config(bad, StudyConfig)
