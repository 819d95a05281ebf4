"""docs/sinks.md documents every option of every destination, and the common ones."""

from __future__ import annotations

import importlib
import re

import pytest
import yaml

from falconet.sinks import registry
from falconet.sinks.base import Option
from falconet.sinks.http import HTTP_OPTIONS
from falconet.sinks.settings import COMMON
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "sinks.md").read_text()


def documented(o: Option) -> bool:
    env = f"FALCONET_SINK_<NAME>_{o.key.upper()}"
    return re.search(rf"^\| `{re.escape(o.key)}` \| `{re.escape(env)}`", DOC, re.M) is not None


def block(tag: str) -> str:
    return DOC.split(f"<!-- {tag} -->", 1)[1].split(f"<!-- end {tag} -->", 1)[0]


def test_common_and_http_settings_are_in_the_framework_table() -> None:
    framework = block("sinks.framework")
    for o in COMMON + HTTP_OPTIONS:
        env = f"FALCONET_SINK_<NAME>_{o.key.upper()}"
        assert f"| `{o.key}` | `{env}`" in framework, o.key


@pytest.mark.parametrize("kind", sorted(registry.DESTINATIONS))
def test_every_destination_option_is_documented(kind: str) -> None:
    module = registry.DESTINATIONS[kind].partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            pytest.skip(f"{module} does not exist yet")
        raise
    cls = registry.destination(kind)
    missing = [o.key for o in cls.options if not documented(o)]
    assert not missing, f"{kind}: not in docs/sinks.md: {missing}"


def test_yaml_examples_of_the_framework_and_webhook_load() -> None:
    from falconet.sinks.base import SinkOptions
    from falconet.sinks.settings import Common, options_of

    for tag in ("sinks.framework", "sink.webhook"):
        for text in re.findall(r"```yaml\n(.*?)```", block(tag), re.S):
            for entry in yaml.safe_load(text)["sinks"]:
                try:
                    cls = registry.destination(entry["type"])
                except ImportError:
                    continue
                yaml_only = {k: v for k, v in entry.items() if not k.endswith("_file")}
                secrets = {o.env(entry["name"]): "x" for o in options_of(cls) if o.secret}
                opts = SinkOptions(entry["name"], options_of(cls), yaml_only, secrets)
                Common.from_options(opts, cls.max_batch_bytes)
