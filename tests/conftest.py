"""Shared test fixtures: where the shared Falco corpus is, and engine helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: moto in server mode for the tests of AWS code (fixtures ``moto_url`` and ``aws``)
pytest_plugins = ["tests.moto"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def corpus_dir() -> Path:
    """``FALCONET_CORPUS``, default ``../shared/corpus`` beside the project root."""
    return Path(os.environ.get("FALCONET_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if not (path / "falco").is_dir():
        pytest.skip(
            f"the shared Falco corpus is not at {path}: set FALCONET_CORPUS to the folder "
            "holding falco/ and falco-tests/ (CI has it at ../shared/corpus)"
        )
    return path


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alert text uses the local clock, as Falco's does; tests pin it to UTC."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
