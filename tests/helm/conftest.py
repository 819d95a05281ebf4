"""The chart's tests run the real helm and kubeconform, offline.

scripts/helm_tools.sh (``make helm-tools``, a prerequisite of ``make test``) builds them once
with ``go install`` and generates the Kubernetes JSON schemas; it writes ``tools.env`` into
``$FALCONET_TOOLS_DIR`` (default ``~/.cache/falconet/tools``). Missing tools FAIL these tests
with the install hint, unless ``FALCONET_SKIP_HELM=1``, which skips them with that reason.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

CHART = ROOT / "helm" / "falconet"
VALUES = Path(__file__).parent / "values"
SCENARIOS = ("defaults", "everything", "kafka-tls-sasl", "sinks-existing-secret", "sensor-only")
HINT = ("the Helm chart tests need helm, kubeconform and the Kubernetes schemas: run "
        "`make helm-tools` (scripts/helm_tools.sh; needs Go once), or set FALCONET_SKIP_HELM=1 "
        "to skip them")  # fmt: skip


@dataclass(frozen=True)
class Tools:
    helm: str
    kubeconform: str
    schemas: Path
    k8s_versions: tuple[str, ...]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)

    def template(self, values: list[str] | None = None, sets: tuple[str, ...] = (),
                 kube_version: str | None = None, api_versions: tuple[str, ...] = (),
                 namespace: str = "falconet") -> subprocess.CompletedProcess[str]:  # fmt: skip
        args = [self.helm, "template", "fc", str(CHART), "--namespace", namespace,
                "--kube-version", kube_version or self.k8s_versions[-1]]  # fmt: skip
        for v in values or ():
            args += ["-f", v]
        for s in sets:
            args += ["--set", s]
        for a in api_versions:
            args += ["--api-versions", a]
        return self.run(*args)

    def validate(self, manifests: str, kube_version: str) -> subprocess.CompletedProcess[str]:
        location = str(self.schemas) + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
        return subprocess.run(
            [self.kubeconform, "-strict", "-summary", "-output", "text", "-kubernetes-version", kube_version,
             "-schema-location", location, "-"],
            input=manifests, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def _tools_dir() -> Path:
    return Path(os.environ.get("FALCONET_TOOLS_DIR") or Path.home() / ".cache" / "falconet" / "tools")


@pytest.fixture(scope="session")
def tools() -> Tools:
    if os.environ.get("FALCONET_SKIP_HELM") == "1":
        pytest.skip("FALCONET_SKIP_HELM=1: helm and kubeconform are not installed")
    env_file = _tools_dir() / "tools.env"
    if not env_file.is_file():
        pytest.fail(f"{env_file} is missing: {HINT}", pytrace=False)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    found = Tools(env["HELM"], env["KUBECONFORM"], Path(env["SCHEMAS"]), tuple(env["K8S_VERSIONS"].split()))
    missing = [p for p in (found.helm, found.kubeconform) if not os.access(p, os.X_OK)]
    missing += [str(found.schemas / f"v{v}-standalone-strict") for v in found.k8s_versions
                if not (found.schemas / f"v{v}-standalone-strict" / "deployment-apps-v1.json").is_file()]  # fmt: skip
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {HINT}", pytrace=False)
    return found


class Rendering:
    """The objects of one `helm template`, with helpers to find them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.objects: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name_suffix: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"{kind} *{name_suffix}: {[o['metadata']['name'] for o in self.of_kind(kind)]}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in ("Deployment", "DaemonSet", "Job", "StatefulSet")]

    def containers(self) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """(workload, pod spec, container) for every container and init container."""
        out = []
        for w in self.workloads():
            pod = w["spec"]["template"]["spec"]
            for c in pod.get("initContainers", []) + pod["containers"]:
                out.append((w, pod, c))
        return out


_cache: dict[tuple[Any, ...], Rendering] = {}


def render(tools: Tools, scenario: str, *sets: str, kube_version: str | None = None,
           api_versions: tuple[str, ...] = ()) -> Rendering:  # fmt: skip
    key = (scenario, sets, kube_version, api_versions)
    if key not in _cache:
        proc = tools.template([str(VALUES / f"{scenario}.yaml")], sets, kube_version, api_versions)
        assert proc.returncode == 0, proc.stderr
        _cache[key] = Rendering(proc.stdout)
    return _cache[key]
