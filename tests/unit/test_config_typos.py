"""A typo anywhere in any config kind fails at load with a message that names the file and the
whole key path, so a user can fix it without reading a traceback."""

from __future__ import annotations

import importlib

import pytest
import yaml

from synthdiv.config import ConfigError, load_config
from synthdiv.jobs import CONFIG_MODELS, GENERATE_GRID_MODEL

STUDY = {"corpora": [{"name": "a"}, {"name": "b", "generate": {"n_topics": 2}}]}
TYPOS = {  # command → (config with one misspelt nested key, the key path the message must name)
    "generate": ({"quality": {"min_stop_wordz": 1}}, "quality.min_stop_wordz"),
    "score": ({"embed": {"batch_sizez": 8}}, "embed.batch_sizez"),
    "mix": ({"output": {"pathz": "x"}}, "output.pathz"),
    "pretrain": ({"train": {"schedule": {"max_stepz": 3}}}, "train.schedule.max_stepz"),
    "sft": ({"train": {"optim": {"lrr": 0.1}}}, "train.optim.lrr"),
    "eval": ({"model": {"pathz": "x"}}, "model.pathz"),
    "correlate": ({"n_bootz": 3}, "n_bootz"),
    "validate-metrics": ({"metricz": {}}, "metricz"),
    "run": (STUDY | {"sft": {"train": {"optim": {"lrr": 0.1}}}}, "sft.train.optim.lrr"),
}


def _model(ref: str) -> type:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def test_every_config_kind_has_a_typo_case():
    assert set(TYPOS) == set(CONFIG_MODELS)


@pytest.mark.parametrize("command", sorted(TYPOS))
def test_a_typo_names_the_file_and_the_key(command, tmp_path):
    data, key = TYPOS[command]
    path = tmp_path / f"{command}.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path, _model(CONFIG_MODELS[command]))
    assert str(path) in str(err.value) and key in str(err.value), str(err.value)


def test_a_typo_in_a_generate_grid_base_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"base": {"dedup": {"num_permz": 64}}, "grid": {"seed": [0]}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, _model(GENERATE_GRID_MODEL))
    assert str(path) in str(err.value) and "dedup.num_permz" in str(err.value)


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"score": {"metrics": {"vendii": {}}}}, "score.metrics"),
        ({"pretrain_by_size": {"tiny": {"data": {"seq_lenn": 64}}}}, "pretrain.data.seq_lenn"),
        ({"eval": {"limitt": 3}}, "eval.limitt"),
        ({"correlate": {"n_bootz": 3}}, "correlate.n_bootz"),
    ],
)
def test_a_typo_in_a_study_block_is_caught_at_load_with_its_block(block, key, tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(STUDY | block))
    with pytest.raises(ConfigError) as err:
        load_config(path, _model(CONFIG_MODELS["run"]))
    assert str(path) in str(err.value) and key in str(err.value), str(err.value)
