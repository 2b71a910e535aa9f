"""Training configs fail early and clearly; examples validate; SFT keeps its own defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthdiv.config import ConfigError, load_config, parse_config
from synthdiv.train.config import PretrainConfig, SftConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = {"corpora": [{"corpus": {"path": "x.jsonl"}}]}


def test_batch_must_divide_by_workers_times_micro():
    with pytest.raises(ConfigError, match="not divisible by num_workers × micro_batch_size"):
        parse_config(
            {
                "data": DATA,
                "train": {
                    "schedule": {"global_batch_size": 10, "micro_batch_size": 2},
                    "scale": {"num_workers": 2},
                },
            },
            PretrainConfig,
        )


def test_seq_len_above_context_is_rejected():
    with pytest.raises(ConfigError, match="exceeds model.context_length"):
        parse_config({"data": {**DATA, "seq_len": 4096}}, PretrainConfig)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="train.optim.learning_rate"):
        parse_config({"data": DATA, "train": {"optim": {"learning_rate": 1}}}, PretrainConfig)


def test_pretrain_defaults_follow_the_paper():
    cfg = parse_config({"data": DATA}, PretrainConfig)
    assert cfg.train.optim.betas == (0.9, 0.95)
    assert (cfg.train.optim.lr, cfg.train.optim.weight_decay) == (3e-4, 0.1)


def test_sft_defaults_survive_a_partial_train_block():
    cfg = parse_config({"base_model": "m", "train": {"scale": {"num_workers": 2}}}, SftConfig)
    assert (cfg.train.optim.lr, cfg.train.optim.weight_decay, cfg.train.schedule.epochs) == (
        2e-5,
        0.0,
        3,
    )
    assert cfg.train.scale.num_workers == 2


@pytest.mark.parametrize(
    "name, model",
    [
        ("pretrain_tiny.yaml", PretrainConfig),
        ("pretrain_350m.yaml", PretrainConfig),
        ("pretrain_1b.yaml", PretrainConfig),
        ("sft_tiny.yaml", SftConfig),
    ],
)
def test_examples_validate(name, model):
    cfg = load_config(EXAMPLES / name, model)
    if name == "pretrain_350m.yaml":
        assert cfg.train.schedule.global_batch_size == 256 and cfg.model.preset == "350m"
    if name == "pretrain_1b.yaml":
        assert cfg.train.schedule.global_batch_size == 128 and cfg.train.scale.strategy == "fsdp"


def test_identity_ignores_what_does_not_change_the_model():
    from synthdiv.config import config_digest, parse_config
    from synthdiv.train.config import PretrainConfig

    def digest(**train) -> str:
        scores = train.pop("scores", {"cluster_agent": 3.9})
        block = {"schedule": {"global_batch_size": 8, "micro_batch_size": 4}, **train}
        return config_digest(
            parse_config(
                {
                    "data": {"corpora": [{"corpus": {"path": "/data"}}]},
                    "train": block,
                    "diversity_scores": scores,
                },
                PretrainConfig,
            )
        )

    base = digest()
    assert digest(scale={"num_workers": 2}) == base
    assert digest(checkpoint={"every_steps": 7, "num_to_keep": 1}) == base
    assert digest(scores={"cluster_agent": 4.2}) == base
    assert digest(optim={"lr": 1e-3}) != base  # the optimizer decides the model
    assert digest(schedule={"global_batch_size": 8, "micro_batch_size": 4, "seed": 1}) != base
