"""The committed BPF object is built from the committed source, and its record layout is the
one the Python decoder reads (no compiler needed: the build script records sha256 sums,
and libbpf reads the object's BTF without any privilege)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from falconet.sensors.syscall import records as R

SRC = Path(__file__).resolve().parents[2] / "sensors" / "syscall"


def _sums() -> dict[str, str]:
    sums = {}
    for line in (SRC / "sensor.bpf.sha256").read_text().splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split()
            sums[name] = digest
    return sums


OBJECTS = ["sensor.bpf.o", "sensor-compat.bpf.o"]


@pytest.mark.parametrize("name", ["sensor.bpf.c", "sensor.h", *OBJECTS])
def test_object_matches_committed_sources(name: str) -> None:
    """Fails when sensor.bpf.c or sensor.h changed without scripts/build_bpf.sh."""
    actual = hashlib.sha256((SRC / name).read_bytes()).hexdigest()
    assert _sums()[name] == actual, (
        f"{name} does not match sensor.bpf.sha256: rebuild the object with scripts/build_bpf.sh"
    )


def test_header_constants_match_the_decoder() -> None:
    text = (SRC / "sensor.h").read_text()
    defines = dict(re.findall(r"^#define (FN_\w+) ([^/\n]+)", text, re.M))

    def value(name: str) -> int:
        v = defines[name].strip().strip("()")
        if "<<" in v:
            a, b = v.split("<<")
            return int(a) << int(b)
        return int(v, 0)

    for name, ours in {
        "FN_REC_SIZE": R.REC_SIZE, "FN_BODY_SIZE": R.BODY_SIZE, "FN_DATA_SIZE": R.DATA_SIZE,
        "FN_NR_MAX": R.NR_MAX, "FN_K_CHUNK": R.K_CHUNK, "FN_K_EXEC": R.K_EXEC,
        "FN_K_FORK": R.K_FORK, "FN_K_EXIT": R.K_EXIT, "FN_C_FILENAME": R.C_FILENAME,
        "FN_C_EXEPATH": R.C_EXEPATH, "FN_C_CWD": R.C_CWD, "FN_C_ARGV": R.C_ARGV,
        "FN_C_ENV": R.C_ENV, "FN_C_CGROUP": R.C_CGROUP, "FN_F_TRUNC": R.F_TRUNC,
        "FN_F_PATHWALK": R.F_PATHWALK, "FN_F_SOCK": R.F_SOCK, "FN_F_UADDR": R.F_UADDR,
        "FN_F_FILE": R.F_FILE, "FN_F_GROUP_DEAD": R.F_GROUP_DEAD,
        "FN_EXE_UPPER_LAYER": R.EXE_UPPER_LAYER, "FN_EXE_FROM_MEMFD": R.EXE_FROM_MEMFD,
        "FN_EXE_LOWER_LAYER": R.EXE_LOWER_LAYER, "FN_FILE_CREATED": R.FILE_CREATED,
        "FN_UADDR_OFF": R.UADDR_OFF, "FN_PATH2_OFF": R.PATH2_OFF,
    }.items():  # fmt: skip
        assert value(name) == ours, name


@pytest.mark.parametrize("name", OBJECTS)
def test_object_btf_layout_matches_the_numpy_record(name: str) -> None:
    from falconet.errors import SensorError

    try:
        from falconet.sensors.syscall.libbpf import BpfObject, Libbpf

        Libbpf.get()
    except SensorError as exc:
        pytest.skip(f"libbpf.so.1 is not installed: {exc}")
    with BpfObject(str(SRC / name)) as obj:
        size, offsets = obj.struct_layout("fn_rec")
        R.check_layout(size, offsets)  # raises on any difference
        sock_size, sock = obj.struct_layout("fn_sock")
        uaddr_size, uaddr = obj.struct_layout("fn_uaddr")
        programs = {name for name, _p in obj.programs()}
    assert sock_size == R.SOCK_DTYPE.itemsize
    assert sock == {n: R.SOCK_DTYPE.fields[n][1] for n in R.SOCK_DTYPE.names or ()}
    assert uaddr_size == R.UADDR_DTYPE.itemsize
    assert uaddr == {n: R.UADDR_DTYPE.fields[n][1] for n in R.UADDR_DTYPE.names or ()}
    assert programs == {"fn_sys_exit", "fn_exec", "fn_fork", "fn_exit"}


def test_layout_mismatch_is_a_clear_error() -> None:
    from falconet.errors import SensorError

    offsets = {n: R.REC_DTYPE.fields[n][1] for n in R.REC_DTYPE.names or ()}
    offsets["ret"] += 8
    with pytest.raises(SensorError, match="does not match this falconet's decoder"):
        R.check_layout(R.REC_SIZE, offsets)


@pytest.mark.parametrize(("has_kfunc", "expected"), [(True, "sensor.bpf.o"), (False, "sensor-compat.bpf.o")])
def test_the_object_is_chosen_by_the_kernels_kfuncs(has_kfunc: bool, expected: str) -> None:
    """Kernels with bpf_rdonly_cast (6.2+) get the direct-load object, older ones the compat one."""
    from falconet.sensors.syscall.sensor import default_object

    class Lib:
        def kernel_has_func(self, name: str, btf_path: str) -> bool:
            assert name == "bpf_rdonly_cast" and btf_path == "/sys/kernel/btf/vmlinux"
            return has_kfunc

    path = Path(default_object(Lib()))  # type: ignore[arg-type]
    assert path.name == expected and path.is_file()


def test_kfunc_lookup_reads_the_kernel_btf(tmp_path: Path) -> None:
    from falconet.errors import SensorError

    try:
        from falconet.sensors.syscall.libbpf import Libbpf

        lib = Libbpf.get()
    except SensorError as exc:
        pytest.skip(f"libbpf.so.1 is not installed: {exc}")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("no kernel BTF at /sys/kernel/btf/vmlinux")
    assert not lib.kernel_has_func("falconet_no_such_kfunc", "/sys/kernel/btf/vmlinux")
    assert lib.kernel_has_func("bpf_map_lookup_elem", "/sys/kernel/btf/vmlinux")
    (tmp_path / "junk").write_bytes(b"not BTF")
    assert not lib.kernel_has_func("bpf_map_lookup_elem", str(tmp_path / "junk"))
