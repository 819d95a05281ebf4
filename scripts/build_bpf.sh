#!/usr/bin/env bash
# Rebuild the syscall sensor's BPF objects: sensors/syscall/sensor.bpf.o and
# sensor-compat.bpf.o (the same program for kernels without the bpf_rdonly_cast kfunc)
#
#   scripts/build_bpf.sh            build (needs clang, llvm-strip, bpftool, libbpf-dev)
#   scripts/build_bpf.sh --check    exit 1 when the committed object is stale
#
# vmlinux.h is generated from this machine's BTF (/sys/kernel/btf/vmlinux, or $VMLINUX_BTF)
# into build/bpf/ and never committed: the object is CO-RE, libbpf relocates it against the
# BTF of whatever kernel loads it, so nodes need neither a compiler nor headers.
# The build writes sensors/syscall/sensor.bpf.sha256: the sha256 of the source, the header
# and the objects, checked by tests/sensors/test_syscall_bpf_object.py.
#
# Debian 12: apt-get install -y clang llvm bpftool libbpf-dev
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC_DIR="$ROOT/sensors/syscall"
OUT_DIR="$ROOT/build/bpf"
BTF="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
CLANG="${CLANG:-clang}"
STRIP="${LLVM_STRIP:-llvm-strip}"
BPFTOOL="${BPFTOOL:-bpftool}"

sources_sha() {
  (cd "$SRC_DIR" && sha256sum sensor.bpf.c sensor.h)
}

if [[ "${1:-}" == "--check" ]]; then
  expected="$(grep -E ' (sensor\.bpf\.c|sensor\.h)$' "$SRC_DIR/sensor.bpf.sha256" || true)"
  if [[ "$(sources_sha)" != "$expected" ]]; then
    echo "sensor.bpf.o is stale: sensor.bpf.c or sensor.h changed; run scripts/build_bpf.sh" >&2
    exit 1
  fi
  echo "sensor.bpf.o matches its sources"
  exit 0
fi

missing=()
for tool in "$CLANG" "$STRIP" "$BPFTOOL"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -f /usr/include/bpf/bpf_helpers.h ]] || missing+=("libbpf-dev (/usr/include/bpf/bpf_helpers.h)")
if (( ${#missing[@]} )); then
  echo "build_bpf: missing: ${missing[*]}" >&2
  echo "Debian/Ubuntu: apt-get install -y clang llvm bpftool libbpf-dev" >&2
  exit 1
fi
[[ -r "$BTF" ]] || { echo "build_bpf: cannot read kernel BTF at $BTF (set VMLINUX_BTF)" >&2; exit 1; }

mkdir -p "$OUT_DIR"
"$BPFTOOL" btf dump file "$BTF" format c > "$OUT_DIR/vmlinux.h.tmp"
mv "$OUT_DIR/vmlinux.h.tmp" "$OUT_DIR/vmlinux.h"

# sensor.bpf.o: plain loads through the bpf_rdonly_cast kfunc (kernel >= 6.2);
# sensor-compat.bpf.o: bpf_probe_read_kernel instead, for older kernels (FN_COMPAT)
build() { # build OUTPUT [CFLAGS...]
  local out="$1"; shift
  "$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 "$@" \
    -I"$OUT_DIR" -I"$SRC_DIR" -Wall -Werror -Wno-unused-function \
    -c "$SRC_DIR/sensor.bpf.c" -o "$OUT_DIR/$out"
  # keep .BTF and .BTF.ext (CO-RE needs them), drop DWARF
  "$STRIP" -g "$OUT_DIR/$out"
  cp "$OUT_DIR/$out" "$SRC_DIR/$out"
}
build sensor.bpf.o
build sensor-compat.bpf.o -DFN_COMPAT

{
  sources_sha
  (cd "$SRC_DIR" && sha256sum sensor.bpf.o sensor-compat.bpf.o)
  echo "# built with: $("$CLANG" --version | head -n1); $("$BPFTOOL" version | head -n1)"
} > "$SRC_DIR/sensor.bpf.sha256"

echo "built $SRC_DIR/sensor.bpf.o ($(stat -c %s "$SRC_DIR/sensor.bpf.o") bytes)" \
  "and sensor-compat.bpf.o ($(stat -c %s "$SRC_DIR/sensor-compat.bpf.o") bytes)"
