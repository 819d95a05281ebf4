"""Every operator, the missing-value rule, candidate fields, modifiers and transformers."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.event import Event
from tests.helpers import engine, load, syscall

TS = 1_718_000_000_000_000_000


def matches(cond: str, ev: Event, source: str = "syscall") -> bool:
    text = (
        f"- rule: R\n  desc: d\n  condition: {cond!r}\n  output: o\n  priority: INFO\n"
        f"  source: {source}\n  warn_evttypes: false\n"
    )
    return bool(engine(text).process(ev))


def ev(**proc: Any) -> Event:
    return syscall("execve", proc={"name": "bash", "args": ["-c", "ls /tmp"], "cwd": "/home/u", **proc})


def opened(path: str, flags: str = "O_RDONLY", **fd: Any) -> Event:
    return syscall(
        "openat",
        args={"fd": 3, "name": path, "flags": flags},
        res=3,
        fd={"num": 3, "type": "file", "name": path, **fd},
    )


def connected(cip: str, cport: int, sip: str, sport: int) -> Event:
    return syscall(
        "connect",
        res=0,
        fd={"num": 5, "type": "ipv4", "l4proto": "tcp", "role": "client", "connected": True,
            "cip": cip, "cport": cport, "sip": sip, "sport": sport,
            "name": f"{cip}:{cport}->{sip}:{sport}"},
    )


def audit(**obj: Any) -> Event:
    payload = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a-1", "stage": "ResponseComplete",
        "verb": "create", "stageTimestamp": "2024-01-01T00:00:00.000000Z",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "p"},
        "requestObject": {"spec": {"containers": [{"image": "nginx:1.25"}, {"image": "busybox"}]}},
        **obj,
    }  # fmt: skip
    return Event("k8s_audit", "create", TS, "h", "a-1", payload)


class TestStringOperators:
    @pytest.mark.parametrize(
        "cond,expected",
        [
            ("proc.name=bash", True),
            ("proc.name==bash", True),
            ("proc.name=BASH", False),
            ("proc.name!=bash", False),
            ("proc.name!=zsh", True),
            # numeric operators take a number (or a field) on the right; on a string
            # field they compare text, strcmp-style
            ("proc.name>1", True),
            ("proc.name<1", False),
            ("proc.name<=val(proc.name)", True),
            ("proc.cwd>=val(proc.name)", False),
            ("proc.cmdline contains 'ls /tmp'", True),
            ("proc.cmdline contains LS", False),
            ("proc.cmdline icontains 'LS /TMP'", True),
            ("proc.name startswith ba", True),
            ("proc.name startswith sh", False),
            ("proc.name endswith sh", True),
            ("proc.cwd glob '/home/*'", True),
            ("proc.cwd glob '/*'", True),  # '*' matches '/' (no FNM_PATHNAME)
            ("proc.cwd glob '/home/?'", True),
            ("proc.cwd glob '/home/[a-z]'", True),
            ("proc.cwd glob '/home/[!u]'", False),
            ("proc.cwd glob '/HOME/*'", False),
            ("proc.cwd iglob '/HOME/*'", True),
            ("proc.cwd glob '/home/\\\\u'", True),  # an escaped character matches itself
            ("proc.name regex 'ba.h'", True),
            ("proc.name regex 'as'", False),  # regex is anchored at both ends
            ("proc.name regex '.*as.*'", True),
            ("proc.name in (zsh, bash)", True),
            ("proc.name in (zsh, sh)", False),
            ("proc.name intersects (bash)", True),
            ("proc.cwd pmatch (/home)", True),
            ("proc.cwd pmatch (/home/u)", True),
            ("proc.cwd pmatch (/hom)", False),
            ("proc.cwd pmatch (/*/u)", True),
            ("proc.cwd pmatch (/var, /tmp)", False),
            ("proc.name exists", True),
        ],
    )
    def test_operator(self, cond: str, expected: bool) -> None:
        assert matches(cond, ev()) is expected

    def test_icontains_folds_ascii_only(self) -> None:
        assert matches("proc.name icontains É", ev(name="é")) is False
        assert matches("proc.name icontains ÉX", ev(name="Éx")) is True


class TestNumericAndBool:
    @pytest.mark.parametrize(
        "cond,expected",
        [
            ("fd.num=3", True),
            ("fd.num!=3", False),
            ("fd.num<4", True),
            ("fd.num<=3", True),
            ("fd.num>2", True),
            ("fd.num>=4", False),
            ("fd.num in (1, 2, 3)", True),
            ("fd.num=0x3", True),
            ("evt.rawres>=0", True),
            ("evt.is_open_read=true", True),
            ("evt.is_open_write=true", False),
            ("evt.is_open_write=false", True),
            ("evt.is_open_read!=false", True),
        ],
    )
    def test_operator(self, cond: str, expected: bool) -> None:
        assert matches(cond, opened("/etc/shadow")) is expected


class TestMissingValues:
    """A field that cannot be extracted makes every comparison false, even `!=`."""

    def test_every_operator_is_false(self) -> None:
        e = opened("/etc/shadow")
        for cond in (
            "fd.sip=1.2.3.4",
            "fd.sip!=1.2.3.4",
            "fd.sport in (80)",
            "fd.sport!=80",
            "fd.cport!=80",
            "proc.aname[9]!=x",
            "proc.aname[9] startswith x",
        ):
            assert matches(cond, e) is False, cond

    def test_not_turns_missing_into_true(self) -> None:
        e = opened("/etc/shadow")
        assert matches("not fd.sip=1.2.3.4", e) is True
        assert matches("not fd.sip!=1.2.3.4", e) is True
        assert matches("not proc.aname[9] in (x)", e) is True

    def test_exists(self) -> None:
        e = opened("/etc/shadow")
        assert matches("fd.name exists", e) is True
        assert matches("fd.sip exists", e) is False
        assert matches("not fd.sip exists", e) is True

    def test_output_prints_na_and_null(self) -> None:
        text = (
            "- rule: R\n  desc: d\n  condition: evt.type=openat\n"
            "  output: 'file=%fd.name sip=%fd.sip port=%fd.sport'\n  priority: INFO\n"
        )
        [d] = engine(text, suggested_output=False).process(opened("/etc/shadow"))
        assert d.output.endswith("Informational file=/etc/shadow sip=<NA> port=<NA>")
        assert d.output_fields == {
            "fd.name": "/etc/shadow",
            "fd.sip": None,
            "fd.sport": None,
            "evt.time": d.ts,
        }


class TestCandidateFields:
    def chain(self) -> Event:
        return syscall(
            "execve",
            proc={"name": "sh"},
            ancestors=[{"pid": 3, "name": "node"}, {"pid": 2, "name": "sshd"}, {"pid": 1, "name": "systemd"}],
        )

    def test_aname_any_ancestor(self) -> None:
        e = self.chain()
        assert matches("proc.aname=sshd", e)
        assert matches("proc.aname in (sshd, x)", e)
        assert not matches("proc.aname=bash", e)
        # `!=` means "some ancestor differs": almost always true
        assert matches("proc.aname!=sshd", e)
        # the rules say `not proc.aname in (...)` for "no ancestor is in the list"
        assert not matches("not proc.aname in (sshd)", e)
        assert matches("not proc.aname in (bash)", e)

    def test_aname_index(self) -> None:
        e = self.chain()
        assert matches("proc.aname[0]=sh", e)
        assert matches("proc.aname[1]=node", e)
        assert matches("proc.aname[2]=sshd", e)
        assert matches("proc.pname=node", e)
        assert not matches("proc.aname[4] exists", e)

    def test_ip_client_or_server(self) -> None:
        e = connected("10.0.0.5", 40000, "93.184.216.34", 443)
        assert matches("fd.ip=10.0.0.5", e)
        assert matches("fd.ip=93.184.216.34", e)
        assert not matches("fd.ip!=10.0.0.5", e)  # != needs both sides to differ
        assert matches("fd.ip!=1.1.1.1", e)
        assert matches("fd.net=10.0.0.0/8", e)
        assert not matches("fd.net!=10.0.0.0/8", e)
        assert matches("fd.snet in (93.184.0.0/16)", e)
        assert not matches("fd.snet in (10.0.0.0/8)", e)
        assert matches("fd.sip=93.184.216.34", e)
        assert matches("fd.port=443", e) and matches("fd.port=40000", e)
        assert matches("fd.sport in (https)", e)  # service names convert to ports

    def test_ipv6_canonical(self) -> None:
        e = connected("fd00::1", 1, "2001:db8::2", 22)
        assert matches("fd.sip=2001:0db8:0000::2", e)
        assert matches("fd.net=2001:db8::/32", e)


class TestListFields:
    def test_in_means_every_element(self) -> None:
        e = audit()
        assert matches("ka.req.pod.containers.image in (nginx:1.25, busybox, x)", e, "k8s_audit")
        assert not matches("ka.req.pod.containers.image in (nginx:1.25)", e, "k8s_audit")

    def test_intersects_means_some_element(self) -> None:
        e = audit()
        assert matches("ka.req.pod.containers.image intersects (busybox)", e, "k8s_audit")
        assert not matches("ka.req.pod.containers.image intersects (redis)", e, "k8s_audit")

    def test_empty_list_is_missing(self) -> None:
        e = audit(requestObject={"spec": {"containers": []}})
        assert not matches("ka.req.pod.containers.image in (x)", e, "k8s_audit")
        assert not matches("ka.req.pod.containers.image exists", e, "k8s_audit")

    def test_only_list_operators(self) -> None:
        text = (
            "- rule: R\n  desc: d\n  condition: ka.req.pod.containers.image=x\n  output: o\n"
            "  priority: INFO\n  source: k8s_audit\n"
        )
        _, res = load(text)
        assert "'=' operator not supported list filters" in res.errors[0].message


class TestModifiers:
    @pytest.mark.parametrize(
        "cond,expected",
        [
            ("proc.name startswith oneof (ba, x)", True),
            ("proc.name startswith oneof (ba, b)", False),  # two match: not exactly one
            ("proc.name startswith anyof (ba, b)", True),
            ("proc.name startswith anyof (x, y)", False),
            ("proc.name startswith allof (ba, b)", True),
            ("proc.name startswith allof (ba, x)", False),
            ("proc.name = anyof (zsh, bash)", True),
            ("proc.name contains allof (as, sh)", True),
        ],
    )
    def test_modifier(self, cond: str, expected: bool) -> None:
        assert matches(cond, ev()) is expected


class TestTransformersAndFieldValues:
    @pytest.mark.parametrize(
        "cond,expected",
        [
            ("tolower(proc.name)=bash", True),
            ("toupper(proc.name)=BASH", True),
            ("len(proc.name)=4", True),
            ("basename(proc.cwd)=u", True),
            ("b64(proc.name)=x", False),  # 'bash' is not valid base64: missing, false
            ("proc.name=val(proc.name)", True),
            ("proc.name=val(proc.cwd)", False),
            ("proc.cwd startswith val(proc.cwd)", True),
            ("tolower(proc.name)=tolower(proc.name)", True),
            ("concat(proc.name, proc.cwd)=bash/home/u", True),
        ],
    )
    def test_transformer(self, cond: str, expected: bool) -> None:
        assert matches(cond, ev()) is expected

    def test_b64(self) -> None:
        assert matches("b64(proc.name)=hello", ev(name="aGVsbG8="))

    def test_val_type_mismatch_is_an_error(self) -> None:
        text = "- rule: R\n  desc: d\n  condition: proc.name=val(fd.num)\n  output: o\n  priority: INFO\n"
        _, res = load(text)
        assert "different types" in res.errors[0].message


class TestBytes:
    def test_bcontains_hex(self) -> None:
        e = syscall("write", args={"data": "hello"}, res=5)
        e.payload["buffer"] = "aGVsbG8="  # base64 of "hello"
        assert matches("evt.buffer bcontains 656c6c", e)
        assert not matches("evt.buffer bcontains 7a7a", e)
        assert matches("evt.buffer bstartswith 6865", e)

    def test_hex_required(self) -> None:
        text = "- rule: R\n  desc: d\n  condition: evt.buffer bcontains zz\n  output: o\n  priority: INFO\n"
        _, res = load(text)
        assert "hex strings only" in res.errors[0].message


def test_filter_only_fields_restrict_operators() -> None:
    for cond in ("fd.ip intersects (1.2.3.4)", "evt.around[1000]>1"):
        text = f"- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n"
        _, res = load(text)
        assert "only supports the operators" in res.errors[0].message, cond
