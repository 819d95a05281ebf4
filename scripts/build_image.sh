#!/usr/bin/env bash
# `make image`: build the container image (Dockerfile) with buildah, then smoke-test it.
#
#   scripts/build_image.sh                      base image made here from Debian packages
#   PYTHON_IMAGE=<ref> scripts/build_image.sh   base pulled from a registry (e.g. the
#                                               Dockerfile's pinned python:3.11-slim digest)
#
# The Dockerfile's default base (python:3.11-slim-bookworm, pinned by digest) comes from a
# registry; where none is reachable, the base is built locally instead: a Debian 12
# (bookworm) minbase root file system with python3 (3.11), venv and pip, made by mmdebstrap
# from the Debian mirror and imported with `buildah from scratch` as
# localhost/falconet-base:bookworm (cached in buildah's storage; FALCONET_REBUILD_BASE=1
# makes it again). The build stage then installs clang/llvm/bpftool/libbpf-dev from the
# mirror and the Python dependencies from PyPI.
#
# The host's CA bundle and a pip.conf naming it are mounted into the build's RUN steps (not
# into the image), so a TLS-intercepting proxy the host trusts works during the build.
# Needs root (or rootless buildah), buildah and mmdebstrap (Debian: apt-get install -y
# buildah mmdebstrap). Output: localhost/falconet:<version> (FALCONET_IMAGE overrides).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/falconet/__init__.py")"
TAG="${FALCONET_IMAGE:-localhost/falconet:$VERSION}"
BASE="${PYTHON_IMAGE:-}"
LOCAL_BASE=localhost/falconet-base:bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ISOLATION="${BUILDAH_ISOLATION:-chroot}"   # no nested OCI runtime needed

say() { echo "image: $*" >&2; }
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
[[ -n "$BASE" ]] || command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if (( ${#missing[@]} )); then
  say "missing: ${missing[*]} (Debian/Ubuntu: apt-get install -y ${missing[*]})"
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -z "$BASE" ]]; then
  BASE="$LOCAL_BASE"
  if [[ "${FALCONET_REBUILD_BASE:-}" == "1" ]] || ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    say "making the base $BASE from Debian bookworm packages ($MIRROR)"
    mmdebstrap --quiet --variant=minbase \
      --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
      bookworm "$work/base.tar" "$MIRROR"
    ctr="$(buildah from scratch)"
    buildah add --quiet "$ctr" "$work/base.tar" / >/dev/null
    buildah config --env LANG=C.UTF-8 --cmd '["python3"]' "$ctr"
    buildah commit --quiet "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
    rm -f "$work/base.tar"
  fi
fi

volumes=()
if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$work/pip.conf"
  volumes+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
            -v "$work/pip.conf:/etc/pip.conf:ro")
fi

say "building $TAG from $BASE"
buildah bud --quiet --layers --isolation "$ISOLATION" --build-arg "PYTHON_IMAGE=$BASE" \
  "${volumes[@]}" -t "$TAG" -f "$ROOT/Dockerfile" "$ROOT" >/dev/null

# smoke test: the entrypoint answers as a non-root user, no compiler, libbpf and the rules
ctr="$(buildah from "$TAG")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
run() { buildah run --isolation "$ISOLATION" "$ctr" -- "$@"; }
run falconet --version
uid="$(run id -u)"
[[ "$uid" != "0" ]] || { say "the image runs as root"; exit 1; }
if run sh -c 'command -v clang gcc cc bpftool' >/dev/null 2>&1; then
  say "a compiler is in the runtime image"; exit 1
fi
run sh -c 'ldconfig -p | grep -q "libbpf.so.1 "' || { say "libbpf.so.1 missing"; exit 1; }
run falconet rules validate /opt/falconet/rules >/dev/null
say "built $TAG (uid $uid, $(buildah images --format '{{.Size}}' "$TAG" | head -n1)): push it and set image.repository in the chart"
