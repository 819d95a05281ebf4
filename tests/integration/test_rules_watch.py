"""`falconet rules push --watch` on the real broker: a rules ConfigMap that changes reaches
the workers through rules.v1, without restarting anything.

The rules folder is laid out as the kubelet lays out a ConfigMap volume: each file is a
symlink through ``..data``, itself a symlink to a timestamped folder that an update
replaces at once (the Helm chart's rules pusher mounts it that way).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from falconet.broker import die_with_parent
from falconet.streams.rulesets import Ruleset, read_compacted
from falconet.streams.topics import RULES
from tests.integration.harness import ROOT, Stack, status_of, wait_for
from tests.integration.test_pipeline import CAT_RULE, DOG_RULE

BAD_RULE = "- rule: Broken\n  desc: d\n  condition: proc.name=(\n  output: o\n  priority: INFO\n"


class ConfigMapDir:
    """A folder updated the way the kubelet updates a ConfigMap volume."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        root.mkdir()

    def update(self, files: dict[str, str]) -> None:
        self.generation += 1
        data = self.root / f"..2026_11_22_{self.generation:04d}"
        data.mkdir()
        for name, text in files.items():
            (data / name).write_text(text)
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(data.name)
        os.replace(tmp, self.root / "..data")  # the atomic swap


def pushed_version(stack: Stack, name: str = "default") -> str:
    value = read_compacted(stack.settings, stack.topic(RULES)).get(name)
    return Ruleset.decode(value).version if value else ""


def test_watch_pushes_each_valid_change_and_reports_a_bad_one(stack: Stack) -> None:
    rules = ConfigMapDir(stack.tmp / "rules")
    rules.update({"falconet_rules.yaml": CAT_RULE})
    cat_version = Ruleset.from_files([rules.root]).version
    log_path = stack.tmp / "watch.log"
    with open(log_path, "wb") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "falconet", "rules", "push", "--watch", "--interval", "0.3",
             str(rules.root)],
            env=stack.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
    stack.workers.append(watcher)  # stopped with the stack
    log = lambda: log_path.read_text(errors="replace")  # noqa: E731

    # the files as they are at start are pushed
    wait_for(lambda: pushed_version(stack) == cat_version, 60, "the first push")
    assert f"pushed rule set 'default' version {cat_version} (1 rules, 1 files)" in log()

    # a worker running the pushed set: the ConfigMap changes, the worker follows
    worker = stack.start_worker("w1")
    wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("version") == cat_version,
             90, "the worker to run the pushed set")  # fmt: skip
    rules.update({"falconet_rules.yaml": CAT_RULE + DOG_RULE})
    both_version = Ruleset.from_files([rules.root]).version
    assert both_version != cat_version
    wait_for(lambda: pushed_version(stack) == both_version, 60, "the changed files to be pushed")
    wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("version") == both_version,
             60, "the worker to swap to the changed set")  # fmt: skip
    assert worker.poll() is None, "the worker was not restarted"

    # an invalid change is reported with its position and not pushed; the watch goes on
    rules.update({"falconet_rules.yaml": BAD_RULE})
    wait_for(
        lambda: "not pushed: the rules do not load" in log(), 60, "the bad file to be reported"
    )
    assert "falconet_rules.yaml:3:14" in log()
    assert pushed_version(stack) == both_version
    assert watcher.poll() is None

    # an unchanged bad file is reported once, not at every poll
    time.sleep(2)  # several polls
    assert log().count("not pushed") == 1 and watcher.poll() is None

    # fixing it pushes again; a new file in the folder counts as a change
    rules.update({"falconet_rules.yaml": DOG_RULE, "zz_more.yaml": CAT_RULE})
    fixed_version = Ruleset.from_files([rules.root]).version
    wait_for(lambda: pushed_version(stack) == fixed_version, 60, "the fixed files to be pushed")
    record = orjson.loads(read_compacted(stack.settings, stack.topic(RULES))["default"])
    assert [f["name"] for f in record["files"]] == ["falconet_rules.yaml", "zz_more.yaml"]

    watcher.send_signal(signal.SIGINT)
    assert watcher.wait(timeout=30) == 0
