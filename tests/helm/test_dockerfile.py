"""The Dockerfile, read as text: the image is not built in CI (no registry serves the base
image to our machines, docs/deploy.md), so its promises are checked here instead."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

COMPILERS = ("clang", "llvm", "gcc", "g++", "cc", "build-essential", "make", "bpftool", "libbpf-dev",
             "libc6-dev", "python3-dev")  # fmt: skip


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.M)]


def stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    args: dict[str, str] = {}
    out: list[list[tuple[str, str]]] = []
    for ins, rest in instructions():
        if ins == "FROM":
            out.append([])
        if not out and ins == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
        if out:
            out[-1].append((ins, rest))
    return args, out


def test_two_stages_from_a_base_pinned_by_digest() -> None:
    args, st = stages()
    assert len(st) == 2
    for stage in st:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image
    assert st[0][0][1].endswith("AS build") and st[1][0][1].endswith("AS runtime")


def test_build_stage_compiles_the_bpf_object_and_the_wheel() -> None:
    _, (build, _) = stages()
    runs = " ".join(rest for ins, rest in build if ins == "RUN")
    assert "clang" in runs and "bpftool" in runs and "libbpf-dev" in runs
    assert "scripts/build_bpf.sh" in runs
    assert "pip wheel" in runs and "/opt/falconet/rules" in runs


def test_runtime_stage_is_slim_non_root_with_one_entrypoint() -> None:
    _, (_, runtime) = stages()
    runs = [rest for ins, rest in runtime if ins == "RUN"]
    installed = {w for r in runs for cmd in r.split("&&") if "apt-get install" in cmd
                 for w in shlex.split(cmd) if not w.startswith("-")} - {"apt-get", "install"}  # fmt: skip
    assert installed == {"libbpf1"}
    assert not installed & set(COMPILERS)
    copies = [rest for ins, rest in runtime if ins == "COPY"]
    assert copies == ["--from=build /opt/falconet /opt/falconet"]  # the virtualenv only
    users = [rest for ins, rest in runtime if ins == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0
    assert users[-1] == "10001:10001"  # the chart's podSecurityContext.runAsUser/runAsGroup
    entrypoints = [rest for ins, rest in runtime if ins == "ENTRYPOINT"]
    assert entrypoints == ['["falconet"]']
    assert not any(ins == "ENTRYPOINT" for ins, _ in stages()[1][0])


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}  # fmt: skip
    assert {".git", ".venv", "build", "dist", "tests", "helm"} <= ignored
