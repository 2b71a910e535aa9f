"""SFT on Ray Train from an HF checkpoint: assistant-only labels, logged model that loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import parse_config
from synthdiv.stage import run_stage
from synthdiv.train.config import ModelSpec, SftConfig
from synthdiv.train.sft import SftStage
from synthdiv.train.store import IGNORE_INDEX, BatchSampler, load_arrays

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny freshly initialised Llama with the SmolLM2 tokenizer, saved as an HF directory."""
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir
    from synthdiv.train.model import build_model, llama_config

    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    out = tmp_path_factory.mktemp("base")
    config = llama_config(ModelSpec(preset="tiny"), len(tokenizer), eos_id=tokenizer.eos_token_id)
    build_model(config, seed=0).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def test_sft_trains_on_assistant_tokens_and_logs_a_loadable_model(
    ray_local, runtime, base_model, mlflow_server
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = parse_config(
        {
            "runtime": runtime.model_dump(),
            "base_model": base_model,
            "data": {"seq_len": 96},
            "train": {
                "schedule": {"global_batch_size": 8, "micro_batch_size": 2, "max_steps": 4},
                "scale": {"num_workers": 2, "cpus_per_worker": 0.5},
                "checkpoint": {"every_steps": 2},
            },
        },
        SftConfig,
    )
    assert cfg.train.optim.lr == 2e-5 and cfg.train.optim.weight_decay == 0.0
    result = run_stage(SftStage(cfg))

    arrays = load_arrays(result.outputs["data"])
    labels, ids = np.asarray(arrays["labels"]), np.asarray(arrays["input_ids"])
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    trained = labels != IGNORE_INDEX
    assert trained.any() and (labels[trained] == ids[trained]).all()
    assert not (ids[trained] == im_start).any()  # role headers never carry loss
    assert result.metrics["conversations"] == 150 and result.metrics["rejected_rows"] == 0
    # packed: fewer rows than conversations, and the rows mostly real tokens
    segments = np.asarray(arrays["segments"])
    assert result.metrics["rows"] == len(ids) < 150
    assert result.metrics["data_fill"] == pytest.approx((segments > 0).mean())

    client = MlflowClient(mlflow_server)
    history = client.get_metric_history(result.outputs["mlflow_run_id"], "train/loss")
    assert len(history) == 4 and all(np.isfinite(m.value) for m in history)
    # tokens seen = the real tokens of the rows the sampler fed, padding excluded
    seen = client.get_metric_history(result.outputs["mlflow_run_id"], "train/tokens_seen")
    expected = 0
    for rank in range(2):
        sampler = BatchSampler(len(ids), 8, 2, 2, rank, 0)
        for step in range(4):
            for micro in range(sampler.accumulation_steps):
                expected += int((segments[sampler.rows(step, micro)] > 0).sum())
    assert max(m.value for m in seen) == expected < 4 * 8 * 96
    assert (
        client.get_logged_model(result.outputs["model_id"]).tags["synthdiv.base_model"]
        == base_model
    )
    model = AutoModelForCausalLM.from_pretrained(result.outputs["model"])
    assert model.config.num_hidden_layers == 2
    assert (Path(result.outputs["model"]) / "tokenizer.json").is_file()


def test_missing_base_model_is_a_clear_error(ray_local, runtime, tmp_path):
    cfg = parse_config(
        {"runtime": runtime.model_dump(), "base_model": str(tmp_path / "none")}, SftConfig
    )
    with pytest.raises(FileNotFoundError, match="not found"):
        run_stage(SftStage(cfg))


def test_ray_data_and_driver_write_the_same_store(ray_local, tmp_path):
    """The Ray Data path (actors tokenize, Ray tasks pack each shard) and the driver path give
    the same bytes, and a bad row is rejected with its line number either way."""
    import json

    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir
    from synthdiv.train.config import SftData
    from synthdiv.train.sft_data import ChatTemplate, packaged_sft_path
    from synthdiv.train.sft_store import build_sft_store

    source = tmp_path / "chats.jsonl"
    lines = (Path(packaged_sft_path()) / "instructions.jsonl").read_text().splitlines()[:40]
    source.write_text(
        "\n".join([*lines[:7], "{not json", json.dumps({"messages": []}), *lines[7:]])
    )
    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    metas, stores = [], []
    for with_ray in (True, False):
        data = SftData(path=str(source), seq_len=256, shard_bytes=8_000, tokenize_with_ray=with_ray)
        uri = str(tmp_path / f"store-{with_ray}")
        metas.append(build_sft_store(data, tokenizer, ChatTemplate(tokenizer), uri))
        stores.append(sorted(Path(uri).glob("*.npy")))
    assert metas[0] == {**metas[1], "path": metas[0]["path"]}
    assert metas[0]["conversations"] == 40 and metas[0]["n_in"] == 42
    assert [(r["row"], r["reason"][:10]) for r in metas[0]["rejected"]] == [
        (7, "row has no"),
        (8, "no non-emp"),
    ]
    assert len(metas[0]["shards"]) > 1  # several shards, each packed by its own task
    assert [p.name for p in stores[0]] == [p.name for p in stores[1]]
    for a, b in zip(*stores, strict=True):
        assert np.array_equal(np.load(a), np.load(b)), a.name
