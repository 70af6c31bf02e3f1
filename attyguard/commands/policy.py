"""`attyguard policy check FILE | status | violations | mode MODE | run NAME -- CMD`: SEC-002
from the CLI.

`check` needs no daemon: it validates a policy file (every error as
`file:line: message`, exit 3) and prints what each process entry will watch.
The others speak the daemon protocol (docs/protocol.md, ops `policy_status`,
`policy_violations`, `policy_mode`) over its Unix socket; `mode` is root only,
which the daemon checks from SO_PEERCRED, not from anything we send. `run`
starts a command under the entry's seccomp filter (attyguard/policy/launch.py);
it fails closed: CMD is not run unless the daemon took the filter's listener.

Exit statuses: 0 fine, 3 error (bad file, no daemon, refused).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

from attyguard.commands._util import EXIT_OK, CommandError, Parser, run_command, write_json

__all__ = ["main"]


def main(argv: list[str]) -> int:
    return run_command("policy", _main, argv)


def _parser() -> Parser:
    parser = Parser(prog="attyguard policy", description="The SEC-002 runtime policy.",
                    epilog="exit status: 0 fine, 3 error")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    sub.required = True
    p = sub.add_parser("check", help="validate a policy file and show what it watches")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("status", help="the daemon's policy: mode, watched processes, counters")
    p.add_argument("--socket", help="daemon socket")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("violations", help="recorded violations, one JSON object a line")
    p.add_argument("--socket", help="daemon socket")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new ones")
    p.add_argument("--json", action="store_true", help="JSON lines (the default form too)")
    p = sub.add_parser("run", help="start a command as policy process NAME under seccomp",
                       usage="attyguard policy run NAME [--socket S] -- CMD [ARGS…]")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--socket", help="daemon socket")
    p = sub.add_parser("mode", help="switch the running policy's mode (root only)")
    p.add_argument("mode", choices=("audit", "alert", "enforce"))
    p.add_argument("--socket", help="daemon socket")
    return parser


def _main(argv: list[str]) -> int:
    command: list[str] = []
    if argv[:1] == ["run"]:
        if "--" not in argv:
            raise CommandError("policy run needs '--' before the command "
                               "(attyguard policy run NAME -- CMD [ARGS…])")
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    args = _parser().parse_args(argv)
    if args.action == "run":
        return _run(args.name, command, args.socket or _default_socket())
    if args.action == "check":
        return _check(args.file, args.json)
    path = args.socket or _default_socket()
    if args.action == "status":
        return _status(path, args.json)
    if args.action == "violations":
        return _violations(path, args.follow)
    reply = _call(path, "policy_mode", mode=args.mode)
    print(f"policy mode: {reply.get('mode')} (was {reply.get('previous')})"
          + (f" — {reply['note']}" if reply.get("note") else ""))
    return EXIT_OK


def _run(name: str, command: list[str], socket_path: str) -> int:
    """Exec the command under the entry's seccomp filter; only failures return."""
    from attyguard.policy.launch import LaunchError, run

    try:
        return run(name, command, socket_path)
    except LaunchError as exc:
        raise CommandError(str(exc)) from None


def _default_socket() -> str:
    from attyguard.daemon.config import DEFAULT_SOCKET

    return DEFAULT_SOCKET


# --------------------------------------------------------------------------- check


def _check(path: str, as_json: bool) -> int:
    from attyguard.policy.load import PolicyLoadError, load_policy
    from attyguard.policy.syscalls import load_syscall_table

    try:
        policy = load_policy(path)
    except PolicyLoadError as exc:
        for error in exc.errors[:-1]:
            sys.stderr.write(f"attyguard policy: {error}\n")
        raise CommandError(str(exc.errors[-1])) from None
    table = load_syscall_table()
    notes = []
    for proc in policy.processes:
        for name in proc.blocked_syscalls:
            if table.is_implemented(name) is False:
                notes.append(f"{proc.name}: {name} is not implemented by this kernel "
                             "(ENOSYS); blocking it changes nothing here")
    plans = {proc.name: _plan(policy, proc) for proc in policy.processes}
    data = {"file": path, "version": policy.version, "mode": policy.mode.value,
            "alerts": {"on_violation": list(policy.on_violation),
                       "on_critical": list(policy.on_critical)},
            "syscall_table": table.source,
            "processes": [{**p.watches(), **plans[p.name]} for p in policy.processes],
            "notes": notes}
    if as_json:
        write_json(data)
        return EXIT_OK
    print(f"{path}: valid — version {policy.version}, mode {policy.mode.value}, "
          f"{len(policy.processes)} process entr{'y' if len(policy.processes) == 1 else 'ies'}")
    for proc in policy.processes:
        w = proc.watches()
        pin = f" (sha256 {proc.sha256[:12]}…)" if proc.sha256 else ""
        print(f"\n{proc.name}: {proc.exe.pattern}{pin} and its descendants  [{proc.source}]")
        if proc.description:
            print(f"  {proc.description}")
        for key, label in (("allowed_exec", "exec only"), ("allowed_files", "files only"),
                           ("allowed_network", "connect only to")):
            value = w[key]
            if value is not None:
                print(f"  {label}: {', '.join(value) if value else '(nothing)'}")  # type: ignore[arg-type]
        for key, label in (("blocked_syscalls", "syscalls blocked"),
                           ("blocked_files", "files blocked"),
                           ("blocked_network", "connect blocked to")):
            if w[key]:
                print(f"  {label}: {', '.join(w[key])}")  # type: ignore[arg-type]
        if proc.max_memory_mb:
            print(f"  memory (RSS) at most {proc.max_memory_mb} MB")
        if proc.max_cpu_percent:
            print(f"  CPU at most {proc.max_cpu_percent}% over a sliding second")
        plan = plans[proc.name]
        if plan["syscall_hooks"]:
            print("  matched by exe: tracepoints while one lives (every process pays): "
                  + ", ".join(plan["syscall_hooks"]))
        if proc.blocked_syscalls:
            print(f"  under `attyguard policy run {proc.name} -- CMD`: blocked syscalls "
                  "through seccomp (x86-64 + ia32; enforce: EPERM, the call does not run); "
                  "tracepoints: " + (", ".join(plan["launched_hooks"]) or "none"))
        for mark in plan["file_gate"]["marks"]:
            print(f"  file gate (enforce): {mark['how']} mark on {mark['path']} ({mark['why']})")
        for note in plan["file_gate"]["notes"]:
            print(f"  file gate note: {note}")
    sinks = ", ".join(policy.on_violation) or "(none)"
    critical = ", ".join(policy.on_critical) or "(none)"
    print(f"\nalerts: on_violation → {sinks}; on_critical → {critical}")
    for note in notes:
        print(f"note: {note}")
    return EXIT_OK


def _plan(policy: Any, proc: Any) -> dict[str, Any]:
    """What the daemon will place for this entry: the file gate's fanotify marks (in
    enforce) and the tracepoints its exe-matched processes attach."""
    import dataclasses

    from attyguard.policy.files import plan_marks
    from attyguard.policy.kernel import CONNECT_SYSCALLS, OPEN_SYSCALLS
    from attyguard.policy.syscalls import tracepoint_event

    try:
        gate = plan_marks(dataclasses.replace(policy, processes=(proc,))).to_json()
    except OSError as exc:
        gate = {"marks": [], "notes": [f"cannot plan the marks here: {exc.strerror or exc}"]}
    names: list[str] = []
    if proc.allowed_files is not None or proc.blocked_files:
        names += OPEN_SYSCALLS
    if proc.allowed_network is not None or proc.blocked_network:
        names += CONNECT_SYSCALLS

    def hooks(items: list[str]) -> list[str]:
        return sorted({f"syscalls/{tracepoint_event(n)}" for n in items})
    return {"file_gate": gate, "syscall_hooks": hooks([*proc.blocked_syscalls, *names]),
            "launched_hooks": hooks(names),
            "launched_syscalls": "seccomp" if proc.blocked_syscalls else None}


# --------------------------------------------------------------------------- daemon ops


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise CommandError(f"no daemon at {path}: {exc.strerror or exc}") from None
    return sock


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line, buffer = buffer[:newline], buffer[newline + 1:]
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise CommandError("the daemon sent something that is not JSON") from None
                if isinstance(obj, dict):
                    yield obj
            continue
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise CommandError("the daemon did not answer in time") from None
        if not chunk:
            return
        buffer += chunk


def _send(sock: socket.socket, op: str, **fields: Any) -> Iterator[dict[str, Any]]:
    sock.sendall(json.dumps({"v": 1, "id": 1, "op": op, **fields}).encode() + b"\n")
    lines = _lines(sock)
    for reply in lines:
        if reply.get("ok") is False:
            error = reply.get("error") or {}
            raise CommandError(f"{error.get('code', 'error')}: {error.get('message', '')}")
        if reply.get("ok"):
            yield reply
            yield from lines
            return
    raise CommandError("the daemon closed the connection without answering")


def _call(path: str, op: str, **fields: Any) -> dict[str, Any]:
    with _connect(path) as sock:
        return next(_send(sock, op, **fields))


def _status(path: str, as_json: bool) -> int:
    reply = _call(path, "policy_status")
    reply.pop("v", None)
    reply.pop("id", None)
    reply.pop("ok", None)
    if as_json:
        write_json(reply)
        return EXIT_OK
    if not reply.get("loaded"):
        print(f"no policy loaded: {reply.get('reason', '')}")
        return EXIT_OK
    forced = ""
    if reply.get("requested_mode") != reply.get("mode"):
        forced = f" ({reply.get('requested_mode')} asked; {reply.get('reason')})"
    print(f"policy {reply.get('file')}: mode {reply.get('mode')}{forced}, backend "
          f"{reply.get('backend')}")
    if reply.get("blind"):
        print(f"  not seen with this backend: {', '.join(reply['blind'])}")
    stats = reply.get("stats", {})
    print(f"  events {stats.get('total_events', 0)}, violations {stats.get('violations', 0)}, "
          f"blocked {stats.get('blocked', 0)}")
    for name, count in sorted(stats.get("by_type", {}).items()):
        print(f"    {name}: {count}")
    for entry in reply.get("processes", []):
        pids = entry.get("pids", [])
        count = stats.get("by_process", {}).get(entry["name"], 0)
        print(f"  {entry['name']} ({entry['exe']}): {len(pids)} watched process"
              f"{'' if len(pids) == 1 else 'es'}, {count} violations")
    seccomp = reply.get("seccomp")
    if isinstance(seccomp, dict):
        print(f"  policy run: {seccomp.get('launched', 0)} launched, "
              f"{seccomp.get('listeners', 0)} still running; blocked calls answered "
              f"{seccomp.get('notifications', 0)} (refused {seccomp.get('refused', 0)}, "
              f"let run {seccomp.get('continued', 0)})")
    return EXIT_OK


def _violations(path: str, follow: bool) -> int:
    with _connect(path) as sock:
        replies = _send(sock, "policy_violations", follow=follow)
        first = next(replies)
        for record in first.get("violations", []):
            print(json.dumps(record), flush=True)
        if not follow:
            return EXIT_OK
        sock.settimeout(None)  # following: wait as long as it takes
        for event in replies:
            if event.get("event") == "violation" and isinstance(event.get("violation"), dict):
                print(json.dumps(event["violation"]), flush=True)
    return EXIT_OK
