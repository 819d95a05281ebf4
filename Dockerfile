# syntax=docker/dockerfile:1
# falconet's image: one entrypoint, `falconet`; the subcommand picks the role
# (`sensor syscall`, `worker`, `sink`, …). The Helm chart (helm/falconet) grants the
# syscall sensor its capabilities (BPF, PERFMON); nothing is baked into the image.
#
#   make image                     (buildah; see docs/deploy.md)
#   buildah bud -t falconet:0.1.0 .    (docker build works too)
#
# The base is pinned by digest. This digest was taken from public Dockerfiles and could not
# be checked from the build machines (no registry is reachable there); refresh it with
#   skopeo inspect --format '{{.Digest}}' docker://docker.io/library/python:3.11-slim-bookworm
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- build: the BPF object and the wheel ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG BUILD_BPF=1
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm bpftool libbpf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# CO-RE object compiled against the build machine's BTF (/sys/kernel/btf/vmlinux, or
# VMLINUX_BTF); BUILD_BPF=0 keeps the committed object (checked against its sources)
RUN if [ "$BUILD_BPF" = 1 ]; then scripts/build_bpf.sh; else scripts/build_bpf.sh --check; fi
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/falconet \
 && /opt/falconet/bin/pip install /dist/falconet-*.whl \
 && mkdir -p /opt/falconet/rules && cp rules/library/*.yaml /opt/falconet/rules/
# the bytecode pip compiled stays: the root file system is read-only at run time

# --- runtime: Python, libbpf, the virtualenv; no compiler ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 falconet \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin falconet
COPY --from=build /opt/falconet /opt/falconet
ENV PATH=/opt/falconet/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
LABEL org.opencontainers.image.title="falconet" \
      org.opencontainers.image.description="Real-time cloud runtime detection pipeline with a Falco-compatible rules engine" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
ENTRYPOINT ["falconet"]
CMD ["--help"]
