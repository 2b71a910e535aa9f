"""Pretraining and SFT of Llama-style models on Ray Train (see docs/training.md).

config.py (typed configs) → model.py (presets) → data.py / sft_data.py (tokenize, pack, mask) →
store.py (packed arrays + deterministic sampler) → loop.py (the worker loop, shared) with
parallel.py (DDP/FSDP2), optim.py, checkpoint.py, mfu.py → trainer.py (driver: TorchTrainer,
outcome, logged model) → pretrain.py / sft.py (the stages run by ``synthdiv.stage.run_stage``).
"""
