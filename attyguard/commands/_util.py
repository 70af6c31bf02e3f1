"""What every subcommand shares: exit statuses, argument parsing without
tracebacks or argparse's exit status 2 (which `check` uses for block), and a
wrapper that turns any failure into one line on stderr.

Kept free of heavy imports: `attyguard trust …` and `check --batch` must start
fast, so rich is imported only by the functions that print for humans.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

__all__ = [
    "EXIT_ERROR",
    "EXIT_NEGATIVE",
    "EXIT_OK",
    "CommandError",
    "Parser",
    "bad_utf8",
    "run_command",
    "write_json",
]

EXIT_OK = 0
EXIT_NEGATIVE = 1  # a valid answer that is "no": nothing removed, a rule example failed
EXIT_ERROR = 3  # bad usage, bad input, unusable store or rules (check: 0/1/2 are verdicts)


class CommandError(Exception):
    """A failure to report as one line (`attyguard <cmd>: <message>`) with a status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as CommandError instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see '{self.prog} --help')")


def bad_utf8(args: Sequence[str]) -> int | None:
    """Index of the first argument that was not valid UTF-8, else None.

    Python decodes argv with surrogateescape, so undecodable bytes show up as
    lone surrogates; printing or hashing them as text would be wrong.
    """
    for index, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return index
    return None


def write_json(obj: Any, out: IO[str] | None = None) -> None:
    import json

    stream = out if out is not None else sys.stdout
    stream.write(json.dumps(obj, indent=2) + "\n")


def run_command(name: str, body: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a subcommand body; every failure becomes one stderr line and a status."""
    try:
        index = bad_utf8(argv)
        if index is not None:
            raise CommandError(f"argument {index + 1} is not valid UTF-8")
        status = body(argv)
        sys.stdout.flush()
        return status
    except CommandError as exc:
        _stderr(f"attyguard {name}: {exc}")
        return exc.status
    except BrokenPipeError:
        # `attyguard trust list | head`: the reader left; that is not an error.
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        _stderr(f"attyguard {name}: interrupted")
        return 130
    except SystemExit as exc:  # argparse --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except Exception as exc:  # a bug: still one line, never a traceback for the user
        _stderr(f"attyguard {name}: internal error: {type(exc).__name__}: {exc}")
        return EXIT_ERROR


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(" ".join(text.split("\n")) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
