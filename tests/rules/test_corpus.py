"""The public Falco rule files load unmodified, the way Falco loads them, and Falco's own
loader test cases give the outcome Falco gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falconet.rules.engine import Engine, EngineConfig

RULES = "falco/falcosecurity-rules/rules/"
ARCHIVE = "falco/falcosecurity-rules/archive/"
PLUGINS = "falco/falcosecurity-plugins/plugins/"

STABLE = RULES + "falco_rules.yaml"
INCUBATING = RULES + "falco-incubating_rules.yaml"
SANDBOX = RULES + "falco-sandbox_rules.yaml"
CLOUDTRAIL = PLUGINS + "cloudtrail/rules/aws_cloudtrail_rules.yaml"
K8S = PLUGINS + "k8saudit/rules/k8s_audit_rules.yaml"
GKE = PLUGINS + "k8saudit-gke/rules/k8s_audit_rules_gke.yaml"
OKTA = PLUGINS + "okta/rules/okta_rules.yaml"
GITHUB = PLUGINS + "github/rules/github.yaml"
GCP = PLUGINS + "gcpaudit/rules/gcp_auditlog_rules.yaml"

# (rules, macros, lists) items per file, as `falconet rules validate` prints them
# (falco-language.md §4.1). The sandbox file holds 183 macro items: one of them,
# `recon_binaries_procs`, is written with `condition:` before `macro:`, which a
# line-oriented count of "- macro:" misses (§4.1 says 182; its combined stable+sandbox
# figure, 258 unique macros, agrees with 183).
COUNTS = {
    STABLE: (25, 87, 49),
    INCUBATING: (31, 82, 54),
    SANDBOX: (37, 183, 60),
    ARCHIVE + "falco-deprecated_rules.yaml": (4, 6, 9),
    ARCHIVE + "application_rules.yaml": (0, 21, 0),
    CLOUDTRAIL: (22, 0, 1),
    K8S: (48, 45, 18),
    GKE: (1, 0, 4),
    OKTA: (21, 1, 1),
    GITHUB: (15, 0, 0),
    GCP: (39, 11, 0),
}

LOADS = {
    "stable": [STABLE],
    "cloudtrail": [CLOUDTRAIL],
    "k8saudit": [K8S],
    "okta": [OKTA],
    "github": [GITHUB],
    "gcpaudit": [GCP],
    "stable+incubating": [STABLE, INCUBATING],
    "stable+sandbox": [STABLE, SANDBOX],
    "stable+deprecated": [STABLE, ARCHIVE + "falco-deprecated_rules.yaml"],
    "stable+application": [STABLE, ARCHIVE + "application_rules.yaml"],
    "k8saudit+gke": [K8S, GKE],
    "stable+incubating+sandbox": [STABLE, INCUBATING, SANDBOX],
}


def _load(corpus: Path, files: list[str], **cfg: object) -> tuple[Engine, object]:
    e = Engine(EngineConfig(**cfg))  # type: ignore[arg-type]
    return e, e.load([corpus / f for f in files])


@pytest.mark.parametrize("name", list(LOADS))
def test_corpus_loads_without_error(corpus: Path, name: str) -> None:
    files = LOADS[name]
    e, res = _load(corpus, files)
    assert res.ok, "\n".join(m.format() for m in res.errors)  # type: ignore[attr-defined]
    for f, stats in zip(files, res.files, strict=True):  # type: ignore[attr-defined]
        assert (stats.rules, stats.macros, stats.lists) == COUNTS[f], f
    assert e.rules


def test_public_base_files_give_no_warnings(corpus: Path) -> None:
    # falco-language.md §4.1: every macro and list of the stable, k8s and CloudTrail files
    # is referenced, so Falco warns about nothing.
    for files in ([STABLE], [CLOUDTRAIL], [K8S], [K8S, GKE]):
        _, res = _load(corpus, files)
        assert res.warnings == [], [m.format() for m in res.warnings]  # type: ignore[attr-defined]


def test_combined_unique_counts(corpus: Path) -> None:
    # falco-language.md §4.1: stable + incubating 56 / 157 / 83, stable + sandbox 62 / 258 / 95
    for files, (rules, macros, lists) in (
        ([STABLE, INCUBATING], (56, 157, 83)),
        ([STABLE, SANDBOX], (62, 258, 95)),
    ):
        e, _ = _load(corpus, files)
        assert len(e.rules) == rules
        assert len(e._state.macros) == macros
        assert len(e._state.lists) == lists


def test_stable_event_types(corpus: Path) -> None:
    # falco-language.md §4.3: the 19 event types of the stable rules
    e, _ = _load(corpus, [STABLE])
    assert e.event_types() == {
        "connect", "dup", "dup2", "dup3", "execve", "execveat", "finit_module",
        "init_module", "link", "linkat", "open", "openat", "openat2", "ptrace",
        "sendmsg", "sendto", "socket", "symlink", "symlinkat",
    }  # fmt: skip


def test_load_order_changes_shared_lists(corpus: Path) -> None:
    # §4.1 load-order trap: python_package_managers differs between stable and incubating
    e, _ = _load(corpus, [STABLE])
    assert "uv" in e._state.lists["python_package_managers"]
    e, _ = _load(corpus, [STABLE, INCUBATING])
    assert "uv" not in e._state.lists["python_package_managers"]


def test_disabled_rules(corpus: Path) -> None:
    for files, disabled in (([SANDBOX], 12), ([CLOUDTRAIL], 2), ([OKTA], 9)):
        e, _ = _load(corpus, files)
        assert sum(not r.enabled for r in e.rules) == disabled


def test_gke_overlay_appends(corpus: Path) -> None:
    e, _ = _load(corpus, [K8S, GKE])
    base, _ = _load(corpus, [K8S])
    images = e._state.lists["k8s_audit_privileged_images"]
    assert images[: len(base._state.lists["k8s_audit_privileged_images"])] == (
        base._state.lists["k8s_audit_privileged_images"]
    )
    assert images[-1] == "gke.gcr.io/k8s-dns-node-cache"
    [rule] = [r for r in e.rules if r.name == "Disallowed K8s User"]
    assert "ka.user.name" in rule.exception_fields


# -- Falco's own loader test cases ------------------------------------------------------------
def falco_cases() -> list[dict]:
    """Every case of Falco's legacy tests (falco-tests/expectations.json), in file order;
    the load-only cases run here, the capture-based ones in test_falco_captures.py."""
    from tests.conftest import corpus_dir

    path = corpus_dir() / "falco-tests" / "expectations.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()))


def _load_only_cases() -> list[dict]:
    return [c for c in falco_cases() if not c["captures"]]


CASES = _load_only_cases()


def test_there_are_39_load_only_cases(corpus: Path) -> None:
    assert len(CASES) == 39


@pytest.mark.parametrize("case", CASES, ids=[c["test"].removeprefix("TestFalco_Legacy_") for c in CASES])
def test_falco_loader_cases(corpus: Path, case: dict) -> None:
    # Falco's legacy tests run with its default configuration, which loads no plugin:
    # only the syscall source exists, so rules of other sources are skipped with the
    # "Unknown source" warning. The same sources are configured here.
    e = Engine(EngineConfig(sources=("syscall",)))
    res = e.load([corpus / "falco-tests" / f for f in case["rule_files"]])
    expected_ok = case["exit_code"] == 0
    assert res.ok == expected_ok, "\n".join(m.format() for m in res.messages)
    if not expected_ok:
        err = res.errors[0]
        assert err.message and err.position.file.endswith(".yaml")


def test_unknown_source_rule_exception_fails_when_the_source_is_loaded(corpus: Path) -> None:
    # The same file as NoPluginsUnknownSourceRuleException with the cloudtrail source
    # loaded: its exception names fields the plugin does not have, which Falco with the
    # plugin loaded also refuses.
    e = Engine()
    res = e.load(
        [corpus / "falco-tests/rules/falco/PluginsCloudtrailCreateInstancesExceptions__cloudtrail_create_instances_exceptions.yaml"]
    )
    assert not res.ok and "'aws.user' is not a supported filter field" in res.errors[0].message
