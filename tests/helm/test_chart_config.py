"""What the chart hands falconet is what falconet accepts: every rendered command line parses
with the real CLI, every FALCONET_* variable is a known setting with a valid value, and the
rendered config files (shared and sinks) load with the real loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from falconet.cli import main as cli
from falconet.config import SETTINGS, Config, env_name
from falconet.sensors.runtime_meta.settings import SETTINGS as RUNTIME_META_SETTINGS
from falconet.sinks.settings import load_sinks
from tests.helm.conftest import SCENARIOS, Rendering, Tools, render

KNOWN_ENV = {"FALCONET_" + s.key.upper().replace(".", "_") for s in SETTINGS}
KNOWN_ENV |= {env_name(key) for key, _, _ in RUNTIME_META_SETTINGS}
KNOWN_ENV |= {"FALCONET_CONFIG"}


def parse(args: list[str]) -> click.Context:
    """Parse a container's args as `falconet` would, down to the leaf command, without running it."""
    ctx = cli.make_context("falconet", list(args))
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        name, sub, rest = cmd.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None, args
        cmd = sub
        ctx = sub.make_context(name or sub.name or "", rest, parent=ctx)
    return ctx


def container_env(c: dict[str, Any]) -> dict[str, str]:
    """Literal values as given; a value from a Secret or the downward API gets a stand-in."""
    return {e["name"]: e["value"] if "value" in e else f"<{e['name'].lower()}>" for e in c["env"]}


@pytest.fixture(scope="module", params=SCENARIOS)
def rendering(request: pytest.FixtureRequest, tools: Tools) -> Rendering:
    return render(tools, request.param)


def test_every_command_line_parses(rendering: Rendering) -> None:
    for w, _, c in rendering.containers():
        ctx = parse(c["args"])
        assert ctx.command.name, (w["metadata"]["name"], c["args"])


def test_every_falconet_variable_is_a_setting(rendering: Rendering) -> None:
    for w, _, c in rendering.containers():
        for name in container_env(c):
            if name.startswith("FALCONET_") and not name.startswith("FALCONET_SINK_"):
                assert name in KNOWN_ENV, (w["metadata"]["name"], c["name"], name)


def test_the_rendered_configuration_loads(rendering: Rendering, tmp_path: Path) -> None:
    shared = tmp_path / "falconet.yaml"
    shared.write_text(rendering.one("ConfigMap", "-config")["data"]["falconet.yaml"])
    for w, _, c in rendering.containers():
        env = container_env(c)
        env.pop("FALCONET_CONFIG", None)
        # files the Secrets would provide: the loader reads the SASL password file
        if "FALCONET_KAFKA_SASL_PASSWORD_FILE" in env:
            secret = tmp_path / "sasl-password"
            secret.write_text("not-a-real-password")
            env["FALCONET_KAFKA_SASL_PASSWORD_FILE"] = str(secret)
        cfg = Config.load(str(shared), env=env)
        assert cfg["kafka.bootstrap"] == env["FALCONET_KAFKA_BOOTSTRAP"], w["metadata"]["name"]
        assert cfg["topics.replication"] == -1


@pytest.mark.parametrize("scenario", ["everything", "kafka-tls-sasl", "sinks-existing-secret"])
def test_the_rendered_sinks_load(tools: Tools, scenario: str, tmp_path: Path) -> None:
    r = render(tools, scenario)
    path = tmp_path / "sinks.yaml"
    path.write_text(r.one("ConfigMap", "-sink")["data"]["falconet.yaml"])
    sink = r.one("Deployment", "-sink")["spec"]["template"]["spec"]["containers"][0]
    env = container_env(sink)
    env.pop("FALCONET_CONFIG")
    specs = load_sinks(Config.load(str(path), env=env), environ=env)
    assert [s.name for s in specs] == [s["name"] for s in yaml.safe_load(path.read_text())["sinks"]]
