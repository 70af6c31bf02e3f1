"""bash-compatible command line of `attyguard` used as a shell (pure).

Understands what login, sshd, scp, rsync, editors and scripts pass to a
shell: `-c CMD [name args…]`, `-l`/`--login`, `-i`, `-s`, `FILE args…`, and
bash's other options (kept and passed on to bash unchanged).
"""

from __future__ import annotations

__all__ = ["ShellArgs", "parse_args"]

# Options that take the next argument as their value.
_WITH_VALUE = {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}
_LONG_FLAGS = {
    "--login", "--noprofile", "--norc", "--posix", "--verbose", "--noediting",
    "--restricted", "--debugger", "--dump-strings", "--dump-po-strings", "--wordexp",
    "--protected", "--pretty-print",
}


class ShellArgs:
    # A plain class, not a dataclass: this module is on the path to spawning
    # bash, which should start before the heavier imports.
    def __init__(self) -> None:
        self.login = False
        self.command: str | None = None  # -c
        self.force_interactive = False  # -i
        self.read_stdin = False  # -s
        self.file: str | None = None
        self.operands: list[str] = []  # after FILE / CMD
        self.norc = False
        self.noprofile = False
        self.rcfile: str | None = None  # --rcfile / --init-file FILE
        self.rcfile_index = -1  # argv index of that FILE
        self.posix = False  # --posix / -o posix
        self.operand_index = -1  # argv index of the -c string or FILE
        self.error: str | None = None


def parse_args(argv: list[str]) -> ShellArgs:
    args = ShellArgs()
    want_c = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg in _WITH_VALUE:
            if i + 1 >= len(argv):
                args.error = f"{arg}: option requires an argument"
                return args
            if arg in ("--rcfile", "--init-file"):
                args.rcfile, args.rcfile_index = argv[i + 1], i + 1
            elif arg == "-o" and argv[i + 1] == "posix":
                args.posix = True
            i += 2
            continue
        if arg.startswith("--"):
            if arg == "--login":
                args.login = True
            elif arg == "--norc":
                args.norc = True
            elif arg == "--noprofile":
                args.noprofile = True
            elif arg == "--posix":
                args.posix = True
            elif arg not in _LONG_FLAGS:
                args.error = f"{arg}: invalid option"
                return args
            i += 1
            continue
        if len(arg) > 1 and arg[0] in "-+":
            letters = arg[1:]
            if arg[0] == "-":
                want_c = want_c or "c" in letters
                args.login = args.login or "l" in letters
                args.force_interactive = args.force_interactive or "i" in letters
                args.read_stdin = args.read_stdin or "s" in letters
            i += 1
            continue
        break
    rest = argv[i:]
    if rest:
        args.operand_index = i
    if want_c:
        if not rest:
            args.error = "-c: option requires an argument"
            return args
        args.command, args.operands = rest[0], rest[1:]
    elif rest and not args.read_stdin:
        args.file, args.operands = rest[0], rest[1:]
    else:
        args.operands = rest
    return args
