#!/usr/bin/env python3
"""Shell speed figures: the guarded shell (`attyguard`) against plain `bash -i`.

Both shells are driven the same way in one run, each on its own pty
(ptyprocess), with HOME in a temporary directory whose minimal ~/.bashrc sets
PS1 to a unique marker carrying bash's command number (`AGB\\#> `): "the next
prompt" is then one exact, increasing string in the output, found after
stripping terminal escape sequences — no sleeps, no guessing.

Figures (medians over N runs, N configurable):
  start-up     spawn → first prompt                 (target: attyguard ≤ 150 ms)
  first key    spawn → a key typed as soon as the prompt shows is echoed
               (attyguard draws its first prompt before its front end is up
               and echoes printable keys typed there itself; target ≤ 100 ms)
  first line   spawn → that key erased (Ctrl-U), `true` + Enter → next prompt:
               when the first command has really run (no target)
  its CPU      CPU time the shell's own process used up to that echo (all its
               threads, ended ones too; not the bash child's): a figure that
               the load of a shared machine disturbs far less than wall time
  -c true      `SHELL -c true` with no tty → exit   (target ≤ 40 ms: every ssh CMD/scp/rsync)
  round trip   send `true` + Enter → next prompt    (target: attyguard ≤ 2 ms)
  throughput   `seq 1 1500000` drained from the pty → next prompt
                                                    (target: attyguard ≤ 1.5 × bash)

It is a benchmark, not a test: it asserts nothing about time. It prints a
table and the ratios and exits 0; 1 if a shell could not be measured (with one
line saying why); 2 on bad arguments.

Hand-written pty loop rather than pexpect.expect(): pexpect reads in small
chunks, adds a 50 ms delay before each send by default and matches on raw
bytes, all of which would distort the very figures measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ptyprocess import PtyProcess

__all__ = ["Figures", "ShellUnderTest", "main", "measure"]

PS1 = r"AGB\#> "
# The prompt as it appears on screen: AGB<command number>> (a front end may draw
# the trailing space as a cursor move, so it is not part of the pattern).
PROMPT_RE = re.compile(rb"AGB(\d+)>")
# CSI, OSC (BEL or ST terminated), and two-byte escapes: what a front end may
# put between the characters of a prompt it redraws.
ESCAPES_RE = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0e-\x1f]"
)
FIRST_KEY = b"Q"
READ_SIZE = 65536
# Kept from the previous chunk so a prompt split across two reads is still seen.
CARRY = 512

BASHRC = f"""\
# minimal rc of the shell benchmark: a prompt that is easy to find, no history file
PS1='{PS1}'
PS2='> '
HISTFILE=/dev/null
unset PROMPT_COMMAND
"""


class BenchError(Exception):
    """A shell could not be measured (did not start, died, never showed its prompt)."""


@dataclass(frozen=True)
class ShellUnderTest:
    label: str
    argv: tuple[str, ...]


@dataclass
class Figures:
    startup_s: list[float] = field(default_factory=list)
    first_key_s: list[float] = field(default_factory=list)
    first_key_cpu_s: list[float] = field(default_factory=list)
    first_line_s: list[float] = field(default_factory=list)
    command_s: list[float] = field(default_factory=list)
    round_trip_s: list[float] = field(default_factory=list)
    throughput_s: list[float] = field(default_factory=list)
    throughput_bytes: int = 0
    error: str | None = None


class PromptWatcher:
    """One shell on a pty; reads its output and finds the next prompt."""

    def __init__(self, shell: ShellUnderTest, env: dict[str, str], cwd: str) -> None:
        self.proc = PtyProcess.spawn(list(shell.argv), env=env, cwd=cwd, dimensions=(24, 80))
        # bash -i shows AGB1> first; attyguard (expanding PS1 itself) was seen to show AGB0>.
        self.last_prompt = -1
        self.tail = b""
        self.bytes_read = 0

    def wait_prompt(self, timeout: float, also: bytes | None = None) -> bool:
        """Read until a prompt numbered above the last one; True if `also` was seen first."""
        deadline = time.perf_counter() + timeout
        seen_also = also is None
        while True:
            chunk = self._read(deadline, f"no new prompt within {timeout:.0f} s")
            if not chunk:
                continue
            window = ESCAPES_RE.sub(b"", self.tail + chunk)
            self.tail = window[-CARRY:]
            if not seen_also and also is not None and also in window:
                seen_also = True
            numbers = [int(m.group(1)) for m in PROMPT_RE.finditer(window)]
            if numbers and max(numbers) > self.last_prompt:
                self.last_prompt = max(numbers)
                # Anything after the prompt (a front end's cursor moves) is not a prompt.
                self.tail = b""
                return seen_also

    def wait_text(self, text: bytes, timeout: float) -> None:
        """Read until `text` shows in the output (escapes stripped) after the last prompt."""
        deadline = time.perf_counter() + timeout
        while text not in self.tail:
            chunk = self._read(deadline, f"{text!r} not echoed within {timeout:.0f} s")
            self.tail = ESCAPES_RE.sub(b"", self.tail + chunk)[-CARRY:]

    def _read(self, deadline: float, late: str) -> bytes:
        """One read of the shell's output (b"" if the poll woke with nothing);
        BenchError saying `late` past the deadline, or if the shell exited."""
        left = deadline - time.perf_counter()
        if left <= 0:
            raise BenchError(f"{late}; last output: {self._last()}")
        ready, _, _ = select.select([self.proc.fd], [], [], left)
        if not ready:
            return b""
        try:
            chunk = os.read(self.proc.fd, READ_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            raise BenchError(f"the shell exited; last output: {self._last()}")
        self.bytes_read += len(chunk)
        return chunk

    def cpu_s(self) -> float | None:
        """CPU time the shell's process has used so far, all threads (Linux); None if unknown.

        Two sources, the larger wins: the running threads' schedstat (ns,
        but threads that have ended are gone from it) and utime + stime of
        /proc/PID/stat (ended threads included, but in 10 ms clock ticks).
        """
        pid = self.proc.pid
        live = 0
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                        live += int(f.read().split()[0])
                except FileNotFoundError:  # a thread that just ended
                    continue
        except (OSError, ValueError, IndexError):
            return None
        return max(ticks, live / 1e9)

    def send(self, text: bytes) -> None:
        os.write(self.proc.fd, text)

    def close(self) -> None:
        if self.proc.isalive():
            try:
                self.send(b"exit\r")
                deadline = time.perf_counter() + 3
                while self.proc.isalive() and time.perf_counter() < deadline:
                    ready, _, _ = select.select([self.proc.fd], [], [], 0.1)
                    if ready:
                        try:
                            os.read(self.proc.fd, READ_SIZE)
                        except OSError:
                            break
            except OSError:
                pass
        self.proc.terminate(force=True)
        self.proc.close(force=True)

    def _last(self) -> str:
        return repr(self.tail[-200:].decode("utf-8", "replace"))


def _environment(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "ATTYGUARD_HOME": str(home / ".attyguard"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "USER": os.environ.get("USER", "bench"),
        "SHELL": "/bin/bash",
        # No terminal answers cursor-position requests here; do not wait for one.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


def measure(
    shell: ShellUnderTest,
    *,
    runs: int,
    round_trips: int,
    seq_runs: int,
    seq_lines: int,
    home: Path,
    timeout: float,
    progress: Callable[[str], None],
) -> Figures:
    """Measure one shell; an error leaves the figures gathered so far and says why."""
    env = _environment(home)
    figures = Figures()
    try:
        for i in range(runs + 1):
            start = time.perf_counter()
            watcher = PromptWatcher(shell, env, str(home))
            try:
                watcher.wait_prompt(timeout)
                shown = time.perf_counter()
                # A key typed the moment the prompt shows, as an impatient user
                # would; echoed only once the shell really reads (no prompt
                # below contains it). Ctrl-U then empties the line again.
                watcher.send(FIRST_KEY)
                watcher.wait_text(FIRST_KEY, timeout)
                echoed = time.perf_counter()
                cpu = watcher.cpu_s()
                # Ctrl-U empties the line again and `true` runs: the first
                # command's next prompt (attyguard: its front end is up and
                # the line was classified, whoever echoed the key).
                watcher.send(b"\x15true\r")
                watcher.wait_prompt(timeout)
                ran = time.perf_counter()
                if i > 0:  # the first start-up fills the page cache: not counted
                    figures.startup_s.append(shown - start)
                    figures.first_key_s.append(echoed - start)
                    figures.first_line_s.append(ran - start)
                    if cpu is not None:
                        figures.first_key_cpu_s.append(cpu)
            finally:
                watcher.close()
        progress(f"{shell.label}: start-up done")

        # `SHELL -c CMD` with no terminal: what every `ssh host CMD`, scp, rsync and
        # git-over-ssh pays once per connection.
        for i in range(runs + 1):
            start = time.perf_counter()
            done = subprocess.run(
                [shell.argv[0], "-c", "true"],
                env=env,
                cwd=str(home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
            if done.returncode != 0:
                raise BenchError(f"`-c true` exited {done.returncode}: {done.stderr[-200:]!r}")
            if i > 0:
                figures.command_s.append(time.perf_counter() - start)
        progress(f"{shell.label}: -c done")

        watcher = PromptWatcher(shell, env, str(home))
        try:
            watcher.wait_prompt(timeout)
            for i in range(round_trips + 5):
                start = time.perf_counter()
                watcher.send(b"true\r")
                watcher.wait_prompt(timeout)
                if i >= 5:  # the first few warm caches (history, completion, imports)
                    figures.round_trip_s.append(time.perf_counter() - start)
            progress(f"{shell.label}: round trips done")

            last_line = f"{seq_lines}\r\n".encode()
            for _ in range(seq_runs):
                before = watcher.bytes_read
                start = time.perf_counter()
                watcher.send(f"seq 1 {seq_lines}\r".encode())
                if not watcher.wait_prompt(timeout, also=last_line):
                    raise BenchError(f"`seq 1 {seq_lines}` output ended before its last line")
                figures.throughput_s.append(time.perf_counter() - start)
                figures.throughput_bytes = watcher.bytes_read - before
            progress(f"{shell.label}: throughput done")
        finally:
            watcher.close()
    except (BenchError, OSError) as err:
        figures.error = str(err)
    return figures


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(seconds: float | None, unit: str) -> str:
    if seconds is None:
        return "n/a"
    if unit == "ms":
        return f"{seconds * 1000:.2f} ms" if seconds < 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "n/a"


def report(guarded: Figures, plain: Figures, args: argparse.Namespace) -> str:
    Row = tuple[str, float | None, float | None, str, str, Callable[[float, float], bool]]
    rows: list[Row] = [
        (
            "start-up to first prompt",
            _median(guarded.startup_s),
            _median(plain.startup_s),
            "ms",
            "≤ 150 ms",
            lambda g, p: g <= 0.150,
        ),
        (
            "start-up to first key echoed",
            _median(guarded.first_key_s),
            _median(plain.first_key_s),
            "ms",
            "≤ 100 ms",
            lambda g, p: g <= 0.100,
        ),
        (
            "  first `true` run → prompt",
            _median(guarded.first_line_s),
            _median(plain.first_line_s),
            "ms",
            "—",
            lambda g, p: True,
        ),
        (
            "  its CPU (shell process)",
            _median(guarded.first_key_cpu_s),
            _median(plain.first_key_cpu_s),
            "ms",
            "—",
            lambda g, p: True,
        ),
        (
            "`-c true`, no tty",
            _median(guarded.command_s),
            _median(plain.command_s),
            "ms",
            "≤ 40 ms",
            lambda g, p: g <= 0.040,
        ),
        (
            "round trip of `true`",
            _median(guarded.round_trip_s),
            _median(plain.round_trip_s),
            "ms",
            "≤ 2 ms",
            lambda g, p: g <= 0.002,
        ),
        (
            f"seq 1 {args.seq_lines} drained",
            _median(guarded.throughput_s),
            _median(plain.throughput_s),
            "s",
            "≤ 1.5× bash",
            lambda g, p: g <= 1.5 * p,
        ),
    ]
    width = (28, 12, 12, 9, 13, 5)
    head = ("figure (median)", "attyguard", "bash -i", "ratio", "target", "met")
    lines = [
        f"shell bench: start-up ×{args.runs}, round trips ×{args.round_trips}, "
        f"seq ×{args.seq_runs}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        "uptime: " + subprocess.run(["uptime"], capture_output=True, text=True,
                                    check=False).stdout.strip(),
        "  ".join(h.ljust(w) for h, w in zip(head, width, strict=True)),
    ]
    for name, g, p, unit, target, ok in rows:
        met = "n/a" if g is None or p is None else ("yes" if ok(g, p) else "NO")
        if target == "—":
            met = ""
        cells = (name, _fmt(g, unit), _fmt(p, unit), _ratio(g, p), target, met)
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)))
    if plain.throughput_bytes:
        mb = plain.throughput_bytes / 1e6
        lines.append(f"(seq output through the pty: {mb:.1f} MB per run)")
    for label, figures in (("attyguard", guarded), ("bash", plain)):
        if figures.error:
            lines.append(f"{label}: could not be measured: {figures.error}")
    return "\n".join(lines)


def _as_json(guarded: Figures, plain: Figures) -> str:
    def one(f: Figures) -> dict[str, object]:
        return {
            "startup_s": _median(f.startup_s),
            "first_key_s": _median(f.first_key_s),
            "first_key_cpu_s": _median(f.first_key_cpu_s),
            "first_line_s": _median(f.first_line_s),
            "command_s": _median(f.command_s),
            "round_trip_s": _median(f.round_trip_s),
            "throughput_s": _median(f.throughput_s),
            "throughput_bytes": f.throughput_bytes,
            "error": f.error,
        }

    return json.dumps({"attyguard": one(guarded), "bash": one(plain)}, indent=2)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shell_bench.py",
        description="attyguard vs plain bash on a pty: start-up, round trip, throughput.",
    )
    default_attyguard = Path(sys.executable).parent / "attyguard"
    parser.add_argument("--runs", type=_positive, default=15, help="start-ups per shell (15)")
    parser.add_argument(
        "--round-trips", type=_positive, default=200, help="`true` round trips per shell (200)"
    )
    parser.add_argument("--seq-runs", type=_positive, default=5, help="seq runs per shell (5)")
    parser.add_argument("--seq-lines", type=_positive, default=1_500_000, help="seq 1 N (1500000)")
    parser.add_argument(
        "--attyguard",
        default=str(default_attyguard),
        help=f"the guarded shell to run ({default_attyguard})",
    )
    parser.add_argument("--bash", default=shutil.which("bash") or "/bin/bash", help="plain bash")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-wait limit in s (60)")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--rc-judge", action="store_true",
                        help="only: start-up with a 200-line ~/.bashrc, rc judging on vs off")
    return parser.parse_args(argv)


def _rc_200() -> str:
    """A 200-line ~/.bashrc of everyday shapes (aliases, exports, functions, guarded sources)."""
    lines = [BASHRC.rstrip("\n")]
    for i in range(48):
        lines += [f"alias g{i}='git log --oneline -n {i + 1}'",
                  f'export TOOL{i}_HOME="$HOME/.tool{i}"',
                  f"proj{i}() {{ cd \"$HOME/src/p{i}\" && ls; }}",
                  f"[ -f ~/.rc.d/{i}.sh ] && . ~/.rc.d/{i}.sh"]
    while len(lines) < 200:
        lines.append(f"# comment {len(lines)}")
    return "\n".join(lines[:200]) + "\n"


def rc_judge_startup(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """Start-up with a 200-line ~/.bashrc: rc judging on (remembered and first time) vs off.

    One run. "on, remembered": the usual start-up (the rc file judged before and unchanged);
    "on, first time": the cache removed before each start (an edited ~/.bashrc).
    """
    with tempfile.TemporaryDirectory(prefix="shell-bench-rc-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(_rc_200())
        config = home / ".attyguard" / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        cache = home / ".attyguard" / "state" / "rc-judged"
        env = _environment(home)
        shell = ShellUnderTest("attyguard", (args.attyguard,))
        modes = {"off": "false", "on, remembered": "true", "on, first time": "true"}
        figures: dict[str, list[float]] = {m: [] for m in modes}

        def once(mode: str) -> float:
            config.write_text(f"[shell]\njudge_rc_files = {modes[mode]}\n")
            if mode == "on, first time":
                cache.unlink(missing_ok=True)
            start = time.perf_counter()
            watcher = PromptWatcher(shell, env, str(home))
            try:
                watcher.wait_prompt(args.timeout)
                return time.perf_counter() - start
            finally:
                watcher.close()

        # off and remembered in alternating pairs (which one goes first alternates
        # too), so the machine's load falls on both alike; first time apart: its
        # engine load would disturb whatever ran right after it.
        for i in range(args.runs + 1):
            pair = ("off", "on, remembered") if i % 2 else ("on, remembered", "off")
            for mode in pair:
                took = once(mode)
                if i > 0:
                    figures[mode].append(took)
            progress(f"rc judging: round {i}/{args.runs}")
        for _ in range(max(3, args.runs // 3)):
            figures["on, first time"].append(once("on, first time"))
        once("on, remembered")  # (leaves the cache for the in-process figure)
        if not cache.exists():
            print("rc judging: the verdict cache was never written", file=sys.stderr)
            return 1
        in_process = _remembered_cpu(home, cache)
    off = _median(figures["off"])
    print(f"start-up to first prompt, 200-line ~/.bashrc, medians of {args.runs} "
          f"(load average {os.getloadavg()[0]:.2f}):")
    for mode, values in figures.items():
        median = _median(values)
        extra = "" if mode == "off" or median is None or off is None else \
            f"  ({(median - off) * 1000:+.1f} ms vs off)"
        print(f"  rc judging {mode:15} {_fmt(median, 'ms')} (min {_fmt(min(values), 'ms')}, "
              f"{len(values)} runs){extra}")
    print("  target: on (remembered) at most 20 ms later than off")
    print(f"  the remembered check alone (read, digest, copy; in this process, CPU): "
          f"{_fmt(in_process, 'ms')} median of 50")
    return 0


def _remembered_cpu(home: Path, cache: Path) -> float | None:
    """CPU of RcJudge.remembered() on the bench's ~/.bashrc, without the shell around it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from attyguard.rcjudge import RcJudge

    samples = []
    for _ in range(51):
        judge = RcJudge([f"{home}/.bashrc"], home=str(home), cache_path=str(cache))
        start = time.process_time()
        answers = judge.remembered()
        samples.append(time.process_time() - start)
        judge.close()
        if answers is None:
            return None
    return _median(samples[1:])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for path in (args.attyguard, args.bash):
        if not os.access(path, os.X_OK):
            print(f"shell_bench: {path} is not an executable file", file=sys.stderr)
            return 2

    def progress(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    if args.rc_judge:
        return rc_judge_startup(args, progress)
    with tempfile.TemporaryDirectory(prefix="shell-bench-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(BASHRC)

        def run(shell: ShellUnderTest) -> Figures:
            return measure(
                shell,
                runs=args.runs,
                round_trips=args.round_trips,
                seq_runs=args.seq_runs,
                seq_lines=args.seq_lines,
                home=home,
                timeout=args.timeout,
                progress=progress,
            )

        plain = run(ShellUnderTest("bash", (args.bash, "-i")))
        guarded = run(ShellUnderTest("attyguard", (args.attyguard,)))

    print(_as_json(guarded, plain) if args.json else report(guarded, plain, args))
    return 1 if guarded.error or plain.error else 0


if __name__ == "__main__":
    sys.exit(main())
