"""Both an editable install and a built wheel import every subpackage and ship the data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SUBPACKAGES = [
    "falconet", "falconet.rules", "falconet.rules.fields", "falconet.sensors",
    "falconet.streams", "falconet.enrichers", "falconet.sinks", "falconet.scenarios",
]  # fmt: skip


def test_editable_layout_maps_top_level_folders() -> None:
    import falconet.enrichers
    import falconet.rules
    import falconet.sensors
    import falconet.sinks
    import falconet.streams

    for mod, folder in (
        (falconet.rules, "rules"),
        (falconet.sensors, "sensors"),
        (falconet.streams, "streams"),
        (falconet.enrichers, "enrichers"),
        (falconet.sinks, "sinks"),
    ):
        assert Path(mod.__file__).resolve().parent == ROOT / folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [whl] = out.glob("falconet-*.whl")
    return whl


def test_wheel_ships_package_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("falconet/rules/library/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("falconet/scenarios/intrusion/") for n in names)
    assert "falconet/rules/fields/syscall.py" in names
    assert not any(n.startswith(("tests/", "bench/", "rules/")) for n in names)


def test_wheel_imports_every_subpackage(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    probe = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__name__.lower()"
        " and 'editable' not in getattr(f, '__name__', '').lower()]\n"
        f"for name in {SUBPACKAGES!r}:\n"
        "    mod = importlib.import_module(name)\n"
        f"    assert mod.__file__.startswith({str(target)!r}), (name, mod.__file__)\n"
        "from falconet.cli import bundled_rules_dir, bundled_scenario_dir\n"
        "from falconet.rules.engine import Engine\n"
        "res = Engine().load([bundled_rules_dir()])\n"
        "assert res.ok, [m.format() for m in res.messages]\n"
        "assert list(bundled_scenario_dir().iterdir())\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
