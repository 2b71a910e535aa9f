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
