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
    cfg = load_config(Path(__file__).parents[2] / "examples" / "paper_topics_gens.yaml", StudyConfig)
    assert len(cfg.corpora) == 6


def test_identical_generation_knobs_share_one_corpus():
    cfg = load_config(Path(__file__).parents[2] / "examples" / "paper_ratio.yaml", StudyConfig)
    paths = {p.generate.output.path for p in plan_study(cfg)}
    assert len(paths) == 1


def test_each_model_size_gets_its_own_recipe():
    cfg = load_config(Path(__file__).parents[2] / "examples" / "paper_topics_gens.yaml", StudyConfig)
    plan = plan_study(cfg)[0]
    small, large = plan.pretrain["350m"].train, plan.pretrain["1b"].train
    assert (small.schedule.global_batch_size, large.schedule.global_batch_size) == (256, 128)
    assert (small.scale.num_workers, large.scale.num_workers) == (16, 32)
    assert (small.scale.strategy, large.scale.strategy) == ("ddp", "fsdp")
    assert small.schedule.train_tokens == 50_000_000_000 and large.schedule.train_tokens == 150_000_000_000
    assert small.optim.weight_decay == large.optim.weight_decay == 0.1  # the shared part
    assert plan.pretrain["1b"].model.preset == "1b"


def test_a_recipe_for_a_size_not_studied_is_an_error():
    from synthdiv.config import ConfigError

    path = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    with pytest.raises(ConfigError, match=r"pretrain_by_size names sizes not in model_sizes.*'1b'"):
        load_config(path, StudyConfig, {"pretrain_by_size": {"1b": {}}})
