"""`falconet replay` of a .scap capture on the real broker: the capture's syscall events land
on events.syscall.v1 (or --topic) in batches keyed by the captured host, and a worker finds
in them what `falconet run` finds offline."""

from __future__ import annotations

from pathlib import Path

from falconet.streams.topics import DETECTIONS, events_topic
from tests.integration.harness import Stack, reader

CAPTURE = "falco-tests/traces/cat_write.scap"
SINGLE_RULE = "falco-tests/rules/falco/SingleRule__single_rule.yaml"


def test_replayed_capture_lands_on_the_syscall_topic_keyed_by_host(
    stack: Stack, corpus: Path
) -> None:
    r = stack.falconet("replay", str(corpus / CAPTURE), "--topic", events_topic("syscall"),
                       "--as-fast-as-possible")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "303 events" in r.stderr and "0 skipped" in r.stderr
    with reader(stack, events_topic("syscall")) as read:
        batches = read(until=lambda s: sum(len(b) for b in s) >= 303, timeout=60)
    envelopes = [e for b in batches for e in b]
    assert len(envelopes) == 303
    assert {e["host"] for e in envelopes} == {"ubuntu"} and {e["source"] for e in envelopes} == {
        "syscall"
    }
    opens = [e for e in envelopes if e["type"] == "open"]
    assert [o["event"]["fd"]["name"] for o in opens][-1] == "/dev/null"


def test_worker_detections_match_falconet_run(stack: Stack, corpus: Path) -> None:
    w = stack.start_worker("w1", "--rules", str(corpus / SINGLE_RULE))
    r = stack.falconet("replay", str(corpus / CAPTURE), "--as-fast-as-possible")
    assert r.returncode == 0, r.stderr
    with reader(stack, DETECTIONS) as read:
        seen = read(until=lambda s: len({x["id"] for x in s}) >= 4, timeout=90, workers=[w])
    assert sorted({x["output"].split(": ")[0] for x in seen}) == [
        "16:17:57.881785348", "16:17:57.881799840", "16:17:57.882008208", "16:17:57.882054739",
    ]  # fmt: skip
    assert {x["rule"] for x in seen} == {"open_from_cat"}
