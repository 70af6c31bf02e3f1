"""This machine's syscall table: the names a policy may block, their numbers, and
whether the running kernel implements them.

Two real sources, each for what it is right about:

* numbers and ABI names: the x86-64 table `asm/unistd_64.h` from the kernel's
  UAPI headers (Debian `linux-libc-dev`). Numbers are ABI and never change,
  and these are the names `strace`, seccomp and man pages use (`stat`,
  `umount2`), which the tracefs event names are not (`newstat`, `umount`).
* what this kernel implements: `/proc/kallsyms`, readable by anyone (names,
  addresses hidden). `T __x64_sys_NAME` is a real entry; a weak `W` symbol is
  a `cond_syscall` stub that returns ENOSYS (e.g. `init_module` on a kernel
  built without modules). tracefs (`events/syscalls/sys_enter_*`) would say
  the same but is often not mounted and needs root, and has no numbers.

An unknown name is an error in the policy; a known name this kernel does not
implement is only a note (blocking it is harmless, and the seed's standard
CRITICAL list names `init_module`/`kexec_load`).
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SyscallTable", "load_syscall_table", "tracepoint_event"]

UNISTD_PATHS = (
    "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "/usr/include/asm/unistd_64.h",
)
KALLSYMS = "/proc/kallsyms"

# The kernel's SYSCALL_DEFINE name where it differs from the ABI name.
_KERNEL_ALIASES = {"stat": "newstat", "lstat": "newlstat", "fstat": "newfstat",
                   "uname": "newuname", "umount2": "umount", "sendfile": "sendfile64"}
_DEFINE = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class SyscallTable:
    numbers: dict[str, int]  # ABI name -> number
    source: str  # which header
    implemented: frozenset[str] | None  # ABI names this kernel implements; None: unknown
    note: str = ""  # why the table is missing or partial

    def number(self, name: str) -> int | None:
        return self.numbers.get(name)

    def is_implemented(self, name: str) -> bool | None:
        if self.implemented is None:
            return None
        return name in self.implemented


def tracepoint_event(name: str) -> str:
    """The tracefs event of an ABI syscall name (`stat` -> `sys_enter_newstat`)."""
    return "sys_enter_" + _KERNEL_ALIASES.get(name, name)


def _implemented(names: dict[str, int], kallsyms: str) -> frozenset[str] | None:
    try:
        text = Path(kallsyms).read_text(errors="replace")
    except OSError:
        return None
    strong = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("__x64_sys_") and parts[1] in ("T", "t"):
            strong.add(parts[2][len("__x64_sys_"):])
    if not strong:
        return None
    return frozenset(n for n in names if n in strong or _KERNEL_ALIASES.get(n) in strong)


@functools.cache
def load_syscall_table(paths: tuple[str, ...] = UNISTD_PATHS,
                       kallsyms: str = KALLSYMS) -> SyscallTable:
    """The table, read once per process (the files do not change under a running kernel)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return SyscallTable({}, "", None, f"no syscall table for {platform.machine()} "
                            "(only x86-64 is supported)")
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        numbers = {m.group(1): int(m.group(2)) for m in _DEFINE.finditer(text)}
        if numbers:
            return SyscallTable(numbers, path, _implemented(numbers, kallsyms))
    return SyscallTable({}, "", None, "no syscall table: " + " and ".join(paths)
                        + " missing (Debian package linux-libc-dev)")


# The seed's severity table for blocked syscalls (anything else is MEDIUM).
CRITICAL_SYSCALLS = frozenset({"ptrace", "process_vm_readv", "process_vm_writev",
                               "kexec_load", "init_module", "finit_module"})
HIGH_SYSCALLS = frozenset({"execve", "fork", "clone", "clone3"})
