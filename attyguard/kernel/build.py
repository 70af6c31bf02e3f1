"""Building the BPF objects: `python -m attyguard.kernel.build [--check] [--out DIR]`.

Decision: the compiled, debug-stripped object (`exec.bpf.o`, ~110 KB, BTF kept
for CO-RE) is COMMITTED next to its source, with `exec.bpf.o.sha256` recording
the SHA-256 of the sources it was built from. Why:
- CO-RE makes one object valid on every BTF-enabled kernel (libbpf relocates
  field offsets at load time), so there is nothing machine-specific to build;
- the daemon then needs only `libbpf1` at run time — no clang, llvm, bpftool
  or 2.8 MB generated vmlinux.h on production hosts, and install.sh stays a
  copy;
- staleness is caught by tests/test_kernel_bpf.py: the stamp must match the
  sources, and a fresh rebuild (with the toolchain that dev.sh installs)
  must expose the same programs and maps.
After editing exec.bpf.c or exec.h, run `python -m attyguard.kernel.build`.

The fanotify answering helper (`fanswer.c`, see its head comment) is the
other way round: native code for this machine's CPU, so it is NOT committed
but built at install time (`python -m attyguard.kernel.build --helper`, called
by contrib/dev.sh and contrib/install.sh) into `_fanswer-<machine>.so` with a
stamp of its sources. When it is missing, stale or fails to build, the layer
answers from its Python reader and says so (`answer_path` in its status).

A missing toolchain is the typed `ToolchainMissing`, never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HERE",
    "SOURCES",
    "ToolchainMissing",
    "build",
    "build_helper",
    "find_tools",
    "helper_path",
    "main",
    "source_digest",
    "stamp_path",
]

HERE = Path(__file__).resolve().parent
# object name -> the sources it is built from (the .bpf.c first)
SOURCES: dict[str, tuple[str, ...]] = {"exec.bpf.o": ("exec.bpf.c", "exec.h"),
                                     "policy.bpf.o": ("policy.bpf.c", "policy.h")}
_SBIN = "/usr/sbin:/sbin:/usr/local/sbin"
HELPER_SOURCES = ("fanswer.c", "exec.h")


@dataclass(frozen=True, slots=True)
class ToolchainMissing:
    reason: str


def find_tools() -> dict[str, str] | ToolchainMissing:
    path = os.environ.get("PATH", "") + ":" + _SBIN
    tools: dict[str, str] = {}
    missing: list[str] = []
    for name in ("clang", "bpftool", "llvm-strip"):
        found = shutil.which(name, path=path)
        if found is None:
            missing.append(name)
        else:
            tools[name] = found
    if missing:
        return ToolchainMissing(
            f"{', '.join(missing)} not found (Debian: apt-get install clang llvm bpftool "
            "libbpf-dev)"
        )
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        return ToolchainMissing("bpf/bpf_helpers.h not found (Debian: apt-get install libbpf-dev)")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return ToolchainMissing("/sys/kernel/btf/vmlinux missing: this kernel has no BTF")
    return tools


def source_digest(obj: str, src_dir: Path = HERE) -> str:
    h = hashlib.sha256()
    for name in SOURCES[obj]:
        h.update(name.encode() + b"\0")
        h.update((src_dir / name).read_bytes())
    return h.hexdigest()


def stamp_path(obj: str, out_dir: Path = HERE) -> Path:
    return out_dir / f"{obj}.sha256"


def helper_path(out_dir: Path = HERE) -> Path:
    """Where the answering helper for this machine's architecture lives."""
    return out_dir / f"_fanswer-{os.uname().machine}.so"


def helper_digest(src_dir: Path = HERE) -> str:
    h = hashlib.sha256()
    for name in HELPER_SOURCES:
        h.update(name.encode() + b"\0")
        h.update((src_dir / name).read_bytes())
    return h.hexdigest()


def helper_stale_reason(out_dir: Path = HERE) -> str | None:
    """None when the helper is built from the current sources, else why it cannot be used."""
    so = helper_path(out_dir)
    if not so.exists():
        return f"{so.name} not built (python -m attyguard.kernel.build --helper)"
    stamp = Path(f"{so}.sha256")
    try:
        if stamp.read_text().strip() == helper_digest():
            return None
    except OSError:
        pass
    return f"{so.name} is stale (sources changed; rebuild with --helper)"


def build_helper(out_dir: Path = HERE) -> Path | ToolchainMissing:
    """Compile fanswer.c into a shared object for this machine, and stamp it.

    Raises CalledProcessError when the compiler fails (the caller says so).
    """
    path = os.environ.get("PATH", "") + ":" + _SBIN
    cc = os.environ.get("CC") or shutil.which("cc", path=path) or shutil.which("gcc", path=path)
    if cc is None:
        return ToolchainMissing("no C compiler (Debian: apt-get install gcc libc6-dev)")
    out = helper_path(out_dir)
    with tempfile.TemporaryDirectory(prefix="attyguard-fanswer-") as tmp:
        raw = Path(tmp) / out.name
        # -l:libbpf.so.1: the runtime library itself (libbpf1), no dev symlink needed.
        subprocess.run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-pthread", "-I", str(HERE),
                        str(HERE / HELPER_SOURCES[0]), "-o", str(raw), "-l:libbpf.so.1"],
                       check=True, capture_output=True, text=True)
        # rename into place: a daemon loading the old one keeps its mapping intact
        tmp_out = out.with_name(out.name + ".new")
        shutil.copyfile(raw, tmp_out)
        os.replace(tmp_out, out)
    Path(f"{out}.sha256").write_text(helper_digest() + "\n")
    return out


def _arch_define() -> str:
    machine = os.uname().machine
    arch = {"x86_64": "x86", "aarch64": "arm64", "ppc64le": "powerpc", "s390x": "s390"}.get(
        machine, machine
    )
    return f"-D__TARGET_ARCH_{arch}"


def build(
    out_dir: Path = HERE, objects: tuple[str, ...] | None = None
) -> list[Path] | ToolchainMissing:
    """Compile each object into out_dir (stripped of DWARF, BTF kept) and write its stamp."""
    tools = find_tools()
    if isinstance(tools, ToolchainMissing):
        return tools
    built: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="attyguard-bpf-") as tmp:
        vmlinux = Path(tmp) / "vmlinux.h"
        # vmlinux.h: every kernel type, from the running kernel's BTF (CO-RE
        # relocates against whatever kernel loads the object later).
        with vmlinux.open("wb") as fh:
            subprocess.run(
                [tools["bpftool"], "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                stdout=fh,
                check=True,
            )
        for obj in objects or tuple(SOURCES):
            src = HERE / SOURCES[obj][0]
            raw = Path(tmp) / obj
            subprocess.run(
                [tools["clang"], "-O2", "-g", "-target", "bpf", _arch_define(),
                 "-I", tmp, "-I", str(HERE), "-c", str(src), "-o", str(raw)],
                check=True,
            )
            out = out_dir / obj
            # -g keeps .BTF/.BTF.ext (CO-RE needs them) and drops DWARF (600 KB).
            subprocess.run([tools["llvm-strip"], "-g", str(raw), "-o", str(out)], check=True)
            stamp_path(obj, out_dir).write_text(source_digest(obj) + "\n")
            built.append(out)
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attyguard.kernel.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: in place)")
    ap.add_argument("--helper", action="store_true",
                    help="build only the fanotify answering helper (fanswer.c) for this machine")
    ap.add_argument("--check", action="store_true",
                    help="only check that each committed object's stamp matches its sources")
    args = ap.parse_args(argv)
    if args.check:
        stale = [o for o in SOURCES
                 if not stamp_path(o).exists()
                 or stamp_path(o).read_text().strip() != source_digest(o)]
        for o in stale:
            print(f"{HERE / o}: stale: rebuild with python -m attyguard.kernel.build",
                  file=sys.stderr)
        return 1 if stale else 0
    if args.helper:
        try:
            made = build_helper(args.out)
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            first = next((ln for ln in str(detail).splitlines() if ln.strip()), str(exc))
            print(f"attyguard.kernel.build: cannot build the answering helper: {first}",
                  file=sys.stderr)
            return 1
        if isinstance(made, ToolchainMissing):
            print(f"attyguard.kernel.build: helper not built: {made.reason}", file=sys.stderr)
            return 3
        print(made)
        return 0
    try:
        result = build(args.out)
    except subprocess.CalledProcessError as exc:
        print(f"attyguard.kernel.build: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, ToolchainMissing):
        print(f"attyguard.kernel.build: not available: {result.reason}", file=sys.stderr)
        return 3
    for p in result:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
