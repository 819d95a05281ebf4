"""Output formatting and the Falco JSON alert."""

from __future__ import annotations

import orjson

from falconet.detection import detection_id
from falconet.event import Event
from tests.helpers import TS, engine, load, syscall


def rule(output: str, cond: str = "evt.type=execve", extra: str = "") -> str:
    return (
        f"- rule: R\n  desc: d\n  condition: {cond}\n  output: {output!r}\n  priority: WARNING\n"
        f"  tags: [zeta, alpha, mitre]\n{extra}"
    )


def render(output: str, ev=None, **cfg) -> tuple[str, dict]:
    cfg.setdefault("suggested_output", False)
    [d] = engine(rule(output), **cfg).process(ev or syscall("execve", proc={"name": "bash"}))
    return d.output.split("Warning ", 1)[1], d.output_fields


def test_fields_and_literals() -> None:
    text, fields = render("shell %proc.name (pid=%proc.pid) in %proc.cwd.")
    assert text == "shell bash (pid=100) in /."
    assert fields == {"proc.name": "bash", "proc.pid": 100, "proc.cwd": "/", "evt.time": TS}


def test_longest_valid_prefix() -> None:
    text, fields = render("x=%proc.name)y %fd.names")
    assert text == "x=bash)y <NA>s"  # fd.names is not a field: fd.name then a literal 's'
    assert "fd.name" in fields


def test_width_pads_and_truncates() -> None:
    text, _ = render("[%6proc.name][%2proc.name]")
    assert text == "[bash  ][ba]"


def test_missing_values() -> None:
    text, fields = render("sip=%fd.sip tty=%proc.tty")
    assert text == "sip=<NA> tty=0"
    assert fields["fd.sip"] is None and fields["proc.tty"] == 0


def test_keys_as_written() -> None:
    ev = syscall(
        "execve",
        args={"flags": "O_RDONLY"},
        proc={"name": "sh"},
        ancestors=[{"pid": 2, "name": "node"}, {"pid": 1, "name": "systemd"}],
    )
    _, fields = render("%proc.aname[2] %evt.arg.flags %evt.arg[flags]", ev)
    assert fields["proc.aname[2]"] == "systemd"
    assert fields["evt.arg.flags"] == "O_RDONLY"
    assert "evt.arg[flags]" in fields


def test_list_fields() -> None:
    payload = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "x", "stage": "ResponseComplete",
        "verb": "create", "stageTimestamp": "2024-01-01T00:00:00Z", "user": {"username": "bob"},
        "objectRef": {"resource": "pods"},
        "requestObject": {"spec": {"containers": [{"image": "a"}, {"image": "b"}]}},
    }  # fmt: skip
    text = (
        "- rule: R\n  desc: d\n  condition: ka.verb=create\n"
        "  output: 'images=%ka.req.pod.containers.image user=%ka.user.name'\n"
        "  priority: NOTICE\n  source: k8s_audit\n"
    )
    [d] = engine(text).process(Event("k8s_audit", "create", TS, "h", "x", payload))
    assert d.output.endswith("Notice images=(a,b) user=bob")
    assert d.output_fields["ka.req.pod.containers.image"] == ["a", "b"]


def test_alert_prefix_and_json_shape() -> None:
    [d] = engine(rule("shell %proc.name"), suggested_output=False).process(
        syscall("execve", proc={"name": "bash"}, host="node-7")
    )
    obj = orjson.loads(d.to_json())
    assert obj["output"] == "06:13:20.123456789: Warning shell bash"
    assert obj["time"] == "2024-06-10T06:13:20.123456789Z"
    assert obj["priority"] == "Warning"
    assert obj["rule"] == "R" and obj["source"] == "syscall" and obj["hostname"] == "node-7"
    assert obj["tags"] == ["alpha", "mitre", "zeta"]  # Falco keeps tags in a sorted set
    assert obj["output_fields"] == {"proc.name": "bash", "evt.time": TS}
    assert obj["id"] == detection_id("R", "node-7-1") and obj["event_id"] == "node-7-1"
    assert set(obj) == {
        "time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname",
        "id", "event_id",
    }  # fmt: skip


def test_iso8601_prefix() -> None:
    [d] = engine(rule("x"), suggested_output=False, time_iso8601=True).process(syscall("execve"))
    assert d.output == "2024-06-10T06:13:20.123456789+0000: Warning x"
    assert d.output_fields["evt.time.iso8601"] == "2024-06-10T06:13:20.123456789+0000"


def test_suggested_container_fields_for_syscall_only() -> None:
    ev = syscall(
        "execve",
        proc={"name": "bash"},
        container="3ad7b26ded6d",
        enrichment={
            "container": {"id": "3ad7b26ded6d", "name": "web",
                          "image": {"repository": "nginx", "tag": "1.25"}},
            "k8s": {"pod": {"name": "web-1"}, "ns": {"name": "shop"}},
        },
    )  # fmt: skip
    [d] = engine(rule("shell %proc.name")).process(ev)
    assert d.output.endswith(
        "shell bash container_id=3ad7b26ded6d container_name=web "
        "container_image_repository=nginx container_image_tag=1.25 k8s_pod_name=web-1 "
        "k8s_ns_name=shop"
    )
    assert d.output_fields["k8s.ns.name"] == "shop"


def test_container_info_is_dropped_with_a_warning() -> None:
    e, res = load(rule("shell %proc.name %container.info"))
    assert res.ok and [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


def test_detection_ids_are_stable_and_per_rule() -> None:
    text = rule("x") + rule("y").replace("rule: R", "rule: S")
    e = engine(text, rule_matching="all")
    a = e.process(syscall("execve"))
    b = engine(text, rule_matching="all").process(syscall("execve"))
    assert [d.id for d in a] == [d.id for d in b]
    assert a[0].id != a[1].id


def test_invalid_utf8_in_events_is_replaced() -> None:
    bad = "caf\udce9"  # an undecodable byte, as surrogateescape keeps it
    [d] = engine(rule("name=%proc.name"), suggested_output=False).process(
        syscall("execve", proc={"name": bad})
    )
    obj = orjson.loads(d.to_json())
    assert obj["output"].endswith("name=caf\ufffd")
