"""A generic libbpf loader over ctypes: object file → programs, maps, ring buffer.

It owns the C signatures of the few libbpf calls attyguard uses (Debian
`libbpf1`, `libbpf.so.1`; no bcc, which cannot work without kernel headers)
and nothing about what any program does, so another `.bpf.c` (SEC-002's
policy sensors) loads through the same code. The life of an object reads top
to bottom as libbpf-bootstrap's examples do:

    obj = BpfObject.open(path)                 # 1. open: parse the ELF, no kernel yet
    obj.set_rodata(bytes(cfg))                 # 2. set the read-only config (.rodata)
    obj.set_autoload("prog", False)            #    (skip a program this kernel refuses)
    obj.load()                                 # 3. load: CO-RE relocation, verifier, maps
    obj.attach()                               # 4. attach every loaded program
    rb = obj.ring_buffer("events", on_record)  # 5. the ring buffer and its callback
    while not stopped: rb.poll(100)            # 6. poll until stopped
    rb.free(); obj.close()                     # 7. destroy: detach, free, close fds

Why ctypes and not a compiled extension: libbpf1 is a stable C ABI already on
the machine, and the calls are few and coarse (open/load/attach once, one
poll per batch), so the FFI cost is irrelevant; a C extension would add a
build step to every install.

Errors: every failing step raises `BpfError(step, errno, message)`.
`BpfError.unsupported` is True when the kernel or the environment refuses the
feature (EPERM, EACCES, EINVAL, ENOTSUP, ENOENT, ENOSYS…) rather than a bug;
`try_open_load` returns that case as the typed result `Unsupported`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import logging
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BpfError",
    "BpfObject",
    "RingBuffer",
    "Unsupported",
    "ensure_tracefs",
    "libbpf",
    "libbpf_unavailable_reason",
    "try_open_load",
]

log = logging.getLogger("attyguard.kernel.bpf")

_UNSUPPORTED_ERRNOS = frozenset(
    {
        errno_mod.EPERM,
        errno_mod.EACCES,
        errno_mod.EINVAL,
        errno_mod.EOPNOTSUPP,
        errno_mod.ENOENT,
        errno_mod.ENOSYS,
        errno_mod.E2BIG,
        errno_mod.ESRCH,
    }
)
_ENOTSUPP = 524  # the kernel-internal "not supported" libbpf sometimes passes through

BPF_ANY = 0
BPF_NOEXIST = 1

RingBufferCallback = Callable[[bytes], None]
_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class BpfError(Exception):
    """A libbpf step failed: which step, the errno, and libbpf's own words."""

    def __init__(self, step: str, err: int, detail: str = "") -> None:
        self.step = step
        self.errno = abs(err)
        self.detail = detail
        text = f"{step}: {os.strerror(self.errno)} (errno {self.errno})"
        super().__init__(f"{text}: {detail}" if detail else text)

    @property
    def unsupported(self) -> bool:
        return self.errno in _UNSUPPORTED_ERRNOS or self.errno == _ENOTSUPP


@dataclass(frozen=True, slots=True)
class Unsupported:
    """The typed "this kernel/environment cannot": step, errno, one-line reason."""

    step: str
    errno: int
    reason: str


# --------------------------------------------------------------------------- bindings

_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_lib_lock = threading.Lock()
_libbpf_messages: list[str] = []  # the last load's libbpf log lines (verifier output, reasons)
_print_cb: Any = None  # kept alive: libbpf holds the raw pointer


def _declare(lib: ctypes.CDLL) -> None:
    vp, cp, ci, cu32, csz = (
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.c_size_t,
    )
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__load": (ci, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_object__next_map": (vp, [vp, vp]),
        "bpf_object__find_program_by_name": (vp, [vp, cp]),
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_object__btf": (vp, [vp]),
        "bpf_program__name": (cp, [vp]),
        "bpf_program__section_name": (cp, [vp]),
        "bpf_program__set_autoload": (ci, [vp, ctypes.c_bool]),
        "bpf_program__autoload": (ctypes.c_bool, [vp]),
        "bpf_program__attach": (vp, [vp]),
        "bpf_program__attach_cgroup": (vp, [vp, ci]),
        "bpf_program__attach_tracepoint": (vp, [vp, cp, cp]),
        "bpf_program__fd": (ci, [vp]),
        "bpf_link__destroy": (ci, [vp]),
        "bpf_map__name": (cp, [vp]),
        "bpf_map__fd": (ci, [vp]),
        "bpf_map__type": (ci, [vp]),
        "bpf_map__key_size": (cu32, [vp]),
        "bpf_map__value_size": (cu32, [vp]),
        "bpf_map__max_entries": (cu32, [vp]),
        "bpf_map__set_max_entries": (ci, [vp, cu32]),
        "bpf_map__set_initial_value": (ci, [vp, vp, csz]),
        "bpf_map_update_elem": (ci, [ci, vp, vp, ctypes.c_uint64]),
        "bpf_map_lookup_elem": (ci, [ci, vp, vp]),
        "bpf_map_delete_elem": (ci, [ci, vp]),
        "bpf_map_get_next_key": (ci, [ci, vp, vp]),
        "btf__find_by_name_kind": (ctypes.c_int32, [vp, cp, ctypes.c_uint32]),
        "btf__resolve_size": (ctypes.c_ssize_t, [vp, ctypes.c_uint32]),
        "ring_buffer__new": (vp, [ci, _SAMPLE_FN, vp, vp]),
        "ring_buffer__poll": (ci, [vp, ci]),
        "ring_buffer__consume": (ci, [vp]),
        "ring_buffer__epoll_fd": (ci, [vp]),
        "ring_buffer__free": (None, [vp]),
        "libbpf_num_possible_cpus": (ci, []),
        "libbpf_set_print": (vp, [_PRINT_FN]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def _on_libbpf_print(level: int, fmt: bytes | None, args: int | None) -> int:
    # libbpf's printer is variadic (a va_list): format it with libc's vsnprintf.
    if fmt is None:
        return 0
    buf = ctypes.create_string_buffer(1 << 20)  # a verifier log can be long
    _libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(args))
    text = buf.value.decode("utf-8", "replace").rstrip()
    if text:
        _libbpf_messages.append(text)
        del _libbpf_messages[:-200]
        log.debug("libbpf: %s", text)
    return 0


_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_libc.vsnprintf.restype = ctypes.c_int


def libbpf() -> ctypes.CDLL:
    """The loaded libbpf.so.1 (raises BpfError("libbpf", ENOENT) when absent)."""
    global _lib, _lib_error, _print_cb
    with _lib_lock:
        if _lib is None and _lib_error is None:
            name = "libbpf.so.1"
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                _declare(lib)
            except (OSError, AttributeError) as exc:
                _lib_error = f"{name} not usable ({exc}); install Debian libbpf1 (>= 1.0)"
            else:
                _print_cb = _PRINT_FN(_on_libbpf_print)
                lib.libbpf_set_print(_print_cb)
                _lib = lib
        if _lib is None:
            raise BpfError("libbpf", errno_mod.ENOENT, _lib_error or "")
        return _lib


def libbpf_unavailable_reason() -> str | None:
    try:
        libbpf()
    except BpfError as exc:
        return str(exc)
    return None


def _errno() -> int:
    return ctypes.get_errno() or errno_mod.EINVAL


def _last_libbpf_reason() -> str:
    # The most telling line of libbpf's log: a program's own failure, else the
    # last "failed"/"error" line.
    for line in reversed(_libbpf_messages):
        if line.startswith("libbpf: prog '") and "fail" in line:
            return line[:300]
    for line in reversed(_libbpf_messages):
        low = line.lower()
        if "fail" in low or "error" in low or "invalid" in low:
            return line[:300]
    return ""


# --------------------------------------------------------------------------- tracefs

TRACEFS = Path("/sys/kernel/tracing")


def ensure_tracefs() -> str | None:
    """Make sure tracefs is mounted (None), or say why it cannot be.

    libbpf attaches a `tracepoint/` program through the tracepoint's id in
    tracefs. systemd mounts tracefs at boot (sys-kernel-tracing.mount); a
    machine without systemd (this project's VMs) may not have it, and then
    every tracepoint attach fails with ENOENT. Mounting it is what systemd
    would have done and changes nothing else.
    """
    if (TRACEFS / "events").is_dir():
        return None
    debugfs = Path("/sys/kernel/debug/tracing/events")
    if debugfs.is_dir():
        return None
    try:
        _mount(b"tracefs", os.fsencode(TRACEFS), b"tracefs", 0)
    except OSError as exc:
        return f"tracefs is not mounted at {TRACEFS} and mounting it failed: {exc.strerror}"
    return None


def _mount(source: bytes, target: bytes, fstype: bytes, flags: int) -> None:
    # No Python binding for mount(2); one libc call does not warrant a dependency.
    _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                            ctypes.c_ulong, ctypes.c_void_p]
    if _libc.mount(source, target, fstype, flags, None) != 0:
        err = ctypes.get_errno()
        if err != errno_mod.EBUSY:  # mounted meanwhile by someone else: fine
            raise OSError(err, os.strerror(err))


# --------------------------------------------------------------------------- object


class BpfObject:
    """One BPF object file's programs, maps and links, from open to close."""

    def __init__(self, path: Path, handle: int) -> None:
        self.path = path
        self._h: int | None = handle
        self._links: dict[str, int] = {}
        self._rings: list[RingBuffer] = []
        self._loaded = False
        self._fds: dict[str, int] = {}

    # 1. open ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> BpfObject:
        lib = libbpf()
        p = Path(path)
        ctypes.set_errno(0)
        h = lib.bpf_object__open_file(os.fsencode(p), None)
        if not h:
            raise BpfError(f"open {p.name}", _errno(), _last_libbpf_reason())
        return cls(p, h)

    @property
    def handle(self) -> int:
        if self._h is None:
            raise BpfError("use after close", errno_mod.EBADF)
        return self._h

    def programs(self) -> Iterator[tuple[str, str]]:
        """(name, section) of every program in the object."""
        lib = libbpf()
        prog = lib.bpf_object__next_program(self.handle, None)
        while prog:
            yield (
                lib.bpf_program__name(prog).decode(),
                lib.bpf_program__section_name(prog).decode(),
            )
            prog = lib.bpf_object__next_program(self.handle, prog)

    def maps(self) -> Iterator[tuple[str, int, int, int, int]]:
        """(name, type, key size, value size, max entries) of every map."""
        lib = libbpf()
        m = lib.bpf_object__next_map(self.handle, None)
        while m:
            yield (
                lib.bpf_map__name(m).decode(),
                lib.bpf_map__type(m),
                lib.bpf_map__key_size(m),
                lib.bpf_map__value_size(m),
                lib.bpf_map__max_entries(m),
            )
            m = lib.bpf_object__next_map(self.handle, m)

    def btf_type_size(self, struct_name: str) -> int | None:
        """Size of a struct in the object's BTF (None when absent): checks a ctypes mirror."""
        lib = libbpf()
        btf = lib.bpf_object__btf(self.handle)
        if not btf:
            return None
        btf_kind_struct = 4
        tid = lib.btf__find_by_name_kind(btf, struct_name.encode(), btf_kind_struct)
        if tid < 0:
            return None
        size = lib.btf__resolve_size(btf, tid)
        return None if size < 0 else int(size)

    def _map(self, name: str) -> int:
        m = libbpf().bpf_object__find_map_by_name(self.handle, name.encode())
        if not m:
            raise BpfError(f"map {name}", errno_mod.ENOENT, "no such map in the object")
        return int(m)

    def _prog(self, name: str) -> int:
        p = libbpf().bpf_object__find_program_by_name(self.handle, name.encode())
        if not p:
            raise BpfError(f"program {name}", errno_mod.ENOENT, "no such program in the object")
        return int(p)

    # 2. configure (before load) ----------------------------------------------
    def set_rodata(self, data: bytes, map_name: str = ".rodata") -> None:
        """Replace the whole read-only section (the program's `const volatile` config)."""
        lib = libbpf()
        # libbpf names the internal map "<obj prefix>.rodata"; find it by suffix.
        target = None
        m = lib.bpf_object__next_map(self.handle, None)
        while m:
            if lib.bpf_map__name(m).decode().endswith(map_name):
                target = m
                break
            m = lib.bpf_object__next_map(self.handle, m)
        if target is None:
            raise BpfError("set rodata", errno_mod.ENOENT, "the object has no .rodata")
        want = lib.bpf_map__value_size(target)
        if want != len(data):
            raise BpfError(
                "set rodata", errno_mod.EINVAL, f".rodata is {want} bytes, config is {len(data)}"
            )
        buf = ctypes.create_string_buffer(data, len(data))
        rc = lib.bpf_map__set_initial_value(target, buf, len(data))
        if rc:
            raise BpfError("set rodata", rc)

    def set_autoload(self, program: str, autoload: bool) -> None:
        rc = libbpf().bpf_program__set_autoload(self._prog(program), autoload)
        if rc:
            raise BpfError(f"autoload {program}", rc)

    def set_max_entries(self, map_name: str, entries: int) -> None:
        rc = libbpf().bpf_map__set_max_entries(self._map(map_name), entries)
        if rc:
            raise BpfError(f"resize {map_name}", rc)

    # 3. load -------------------------------------------------------------------
    def load(self) -> None:
        _libbpf_messages.clear()
        rc = libbpf().bpf_object__load(self.handle)
        if rc:
            raise BpfError(f"load {self.path.name}", rc, _last_libbpf_reason())
        self._loaded = True

    # 4. attach -----------------------------------------------------------------
    def attach(self, programs: list[str] | None = None) -> None:
        """Attach the named programs (default: every program that was loaded)."""
        lib = libbpf()
        if programs is None:
            programs = []
            prog = lib.bpf_object__next_program(self.handle, None)
            while prog:
                if lib.bpf_program__autoload(prog):
                    programs.append(lib.bpf_program__name(prog).decode())
                prog = lib.bpf_object__next_program(self.handle, prog)
        for name in programs:
            if name in self._links:
                continue
            ctypes.set_errno(0)
            link = lib.bpf_program__attach(self._prog(name))
            if not link:
                raise BpfError(f"attach {name}", _errno(), _last_libbpf_reason())
            self._links[name] = link

    def attach_cgroup(self, name: str, cgroup_path: str) -> None:
        """Attach a `cgroup/...` program (no auto-attach exists for them) to a cgroup
        directory; it then runs for every process in that cgroup and below."""
        if name in self._links:
            return
        fd = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            ctypes.set_errno(0)
            link = libbpf().bpf_program__attach_cgroup(self._prog(name), fd)
        finally:
            os.close(fd)  # the link holds its own reference to the cgroup
        if not link:
            raise BpfError(f"attach {name} to {cgroup_path}", _errno(), _last_libbpf_reason())
        self._links[name] = link

    def attach_tracepoint(self, name: str, category: str, event: str) -> str:
        """Attach a `tracepoint` program to one named tracepoint (through a perf
        event, as libbpf does); one program may hold several. Returns the link's
        key in `attached`: "program:category/event"."""
        key = f"{name}:{category}/{event}"
        if key in self._links:
            return key
        ctypes.set_errno(0)
        link = libbpf().bpf_program__attach_tracepoint(self._prog(name), category.encode(),
                                                       event.encode())
        if not link:
            raise BpfError(f"attach {name} to {category}/{event}", _errno(),
                           _last_libbpf_reason())
        self._links[key] = link
        return key

    def detach(self, key: str) -> bool:
        """Destroy one link (a program name or an `attach_tracepoint` key); False if absent."""
        link = self._links.pop(key, None)
        if link is None:
            return False
        libbpf().bpf_link__destroy(link)
        return True

    def map_mmap(self, name: str) -> mmap.mmap:
        """A read-only view of a BPF_F_MMAPABLE array (values padded to 8 bytes each)."""
        lib = libbpf()
        m = self._map(name)
        size = lib.bpf_map__max_entries(m) * ((lib.bpf_map__value_size(m) + 7) & ~7)
        size = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        return mmap.mmap(self.map_fd(name), size, mmap.MAP_SHARED, mmap.PROT_READ)

    @property
    def attached(self) -> tuple[str, ...]:
        return tuple(self._links)

    # maps at run time ------------------------------------------------------------
    def map_fd(self, name: str) -> int:
        # Cached after load: the permission path looks maps up per event, and
        # libbpf's by-name search is a linear walk.
        fd = self._fds.get(name)
        if fd is None:
            fd = int(libbpf().bpf_map__fd(self._map(name)))
            if fd < 0:
                raise BpfError(f"map {name} fd", fd)
            if self._loaded:
                self._fds[name] = fd
        return fd

    def map_update(self, name: str, key: ctypes._CData, value: ctypes._CData) -> None:
        rc = libbpf().bpf_map_update_elem(
            self.map_fd(name), ctypes.byref(key), ctypes.byref(value), BPF_ANY
        )
        if rc:
            raise BpfError(f"update {name}", rc)

    def map_delete(self, name: str, key: ctypes._CData) -> bool:
        rc: int = libbpf().bpf_map_delete_elem(self.map_fd(name), ctypes.byref(key))
        if rc and abs(rc) != errno_mod.ENOENT:
            raise BpfError(f"delete {name}", rc)
        return rc == 0

    def map_lookup(self, name: str, key: ctypes._CData, value: ctypes._CData) -> bool:
        """Fill `value` and return True when `key` is present."""
        rc: int = libbpf().bpf_map_lookup_elem(
            self.map_fd(name), ctypes.byref(key), ctypes.byref(value)
        )
        return rc == 0

    def map_keys(self, name: str, key_type: type[ctypes._CData]) -> list[Any]:
        lib = libbpf()
        fd = self.map_fd(name)
        out: list[Any] = []
        cur = key_type()
        nxt = key_type()
        rc = lib.bpf_map_get_next_key(fd, None, ctypes.byref(nxt))
        while rc == 0 and len(out) < 1_000_000:
            out.append(nxt)
            cur = nxt
            nxt = key_type()
            rc = lib.bpf_map_get_next_key(fd, ctypes.byref(cur), ctypes.byref(nxt))
        return out

    def percpu_sum(self, name: str, index: int) -> int:
        """Sum of a u64 slot of a per-CPU array over every possible CPU."""
        lib = libbpf()
        ncpu = lib.libbpf_num_possible_cpus()
        if ncpu <= 0:
            raise BpfError("possible cpus", ncpu)
        values = (ctypes.c_uint64 * ncpu)()
        key = ctypes.c_uint32(index)
        rc = lib.bpf_map_lookup_elem(self.map_fd(name), ctypes.byref(key), values)
        if rc:
            raise BpfError(f"lookup {name}[{index}]", rc)
        return int(sum(values))

    # 5. ring buffer --------------------------------------------------------------
    def ring_buffer(self, map_name: str, callback: RingBufferCallback) -> RingBuffer:
        rb = RingBuffer(self.map_fd(map_name), callback)
        self._rings.append(rb)
        return rb

    # 7. destroy ---------------------------------------------------------------
    def close(self) -> None:
        """Detach every link, free ring buffers, close the object (idempotent)."""
        if self._h is None:
            return
        lib = libbpf()
        for rb in self._rings:
            rb.free()
        self._rings.clear()
        for link in self._links.values():
            lib.bpf_link__destroy(link)
        self._links.clear()
        lib.bpf_object__close(self._h)
        self._h = None
        self._fds.clear()

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RingBuffer:
    """A BPF ring buffer and the Python callback that receives each record's bytes.

    `poll` must be called from one thread at a time (the reader thread); the
    callback runs in that thread. A callback that raises is logged and counted
    (`callback_errors`), never allowed to unwind through C.
    """

    def __init__(self, map_fd: int, callback: RingBufferCallback) -> None:
        lib = libbpf()
        self._callback = callback
        self.callback_errors = 0

        def sample(_ctx: int | None, data: int | None, size: int) -> int:
            try:
                callback(ctypes.string_at(data, size) if data else b"")
            except Exception:
                self.callback_errors += 1
                log.exception("ring buffer callback failed")
            return 0

        self._cfn = _SAMPLE_FN(sample)  # kept alive as long as libbpf holds it
        ctypes.set_errno(0)
        h = lib.ring_buffer__new(map_fd, self._cfn, None, None)
        if not h:
            raise BpfError("ring buffer", _errno(), _last_libbpf_reason())
        self._h: int | None = h
        self._lock = threading.Lock()

    @property
    def epoll_fd(self) -> int:
        """An fd that polls readable when records wait (to multiplex with other fds)."""
        if self._h is None:
            raise BpfError("ring buffer", errno_mod.EBADF, "freed")
        return int(libbpf().ring_buffer__epoll_fd(self._h))

    def consume(self) -> int:
        """Deliver every record waiting now, without blocking; returns how many."""
        with self._lock:
            if self._h is None:
                return 0
            rc: int = libbpf().ring_buffer__consume(self._h)
        if rc < 0:
            raise BpfError("ring buffer consume", rc)
        return rc

    # 6. poll ---------------------------------------------------------------------
    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms for records and deliver them; returns how many (>= 0)."""
        with self._lock:
            if self._h is None:
                return 0
            rc: int = libbpf().ring_buffer__poll(self._h, timeout_ms)
        if rc < 0 and abs(rc) != errno_mod.EINTR:
            raise BpfError("ring buffer poll", rc)
        return max(rc, 0)

    def free(self) -> None:
        with self._lock:
            if self._h is not None:
                libbpf().ring_buffer__free(self._h)
                self._h = None


def try_open_load(
    path: str | os.PathLike[str],
    *,
    rodata: bytes | None = None,
    autoload: dict[str, bool] | None = None,
    max_entries: dict[str, int] | None = None,
) -> BpfObject | Unsupported:
    """Open, configure and load; the kernel's refusal comes back as `Unsupported`.

    Errors that are not "unsupported" (a corrupt object, a config of the
    wrong size) still raise `BpfError`: they are bugs, not environments.
    """
    try:
        obj = BpfObject.open(path)
    except BpfError as exc:
        if exc.step == "libbpf" or exc.unsupported:
            return Unsupported(exc.step, exc.errno, str(exc))
        raise
    try:
        if rodata is not None:
            obj.set_rodata(rodata)
        for name, on in (autoload or {}).items():
            obj.set_autoload(name, on)
        for name, n in (max_entries or {}).items():
            obj.set_max_entries(name, n)
        obj.load()
    except BpfError as exc:
        obj.close()
        if exc.unsupported:
            return Unsupported(exc.step, exc.errno, str(exc))
        raise
    except BaseException:
        obj.close()
        raise
    return obj
