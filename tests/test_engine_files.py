"""engine/files.py: which files a parsed line hands to a shell (pure, table-driven)."""

from __future__ import annotations

import pytest

from attyguard.engine.files import files_read
from attyguard.engine.parse import parse

CASES = [
    ("source ~/lib.sh a b", [("~/lib.sh", "source", True)]),
    (". ./env", [("./env", "source", True)]),
    ("bash job.sh arg", [("job.sh", "script", True)]),
    ("sudo -u ops bash -x /srv/run.sh", [("/srv/run.sh", "script", True)]),
    ("sh -e deploy", [("deploy", "script", True)]),
    ('bash -c "$(cat /srv/x)"', [("/srv/x", "substitution", True)]),
    ('eval "$(< /srv/y)"', [("/srv/y", "substitution", False)]),
    ("eval \"`cat /srv/z`\"", [("/srv/z", "substitution", True)]),
    ("BASH_ENV=/srv/e bash -c true", [("/srv/e", "BASH_ENV", False)]),
    ("ENV=/srv/e bash --posix -i", [("/srv/e", "ENV", False)]),
    ("ENV=/srv/e sh -i", [("/srv/e", "ENV", False)]),
    ("bash --rcfile /srv/r -i -c true", [("/srv/r", "rcfile", True)]),
    ("bash --init-file /srv/r -i", [("/srv/r", "rcfile", True)]),
    ("bash < /srv/in", [("/srv/in", "stdin", False)]),
    ("cat /srv/in | bash", [("/srv/in", "stdin", True)]),
    ("cat /srv/in | sh -s arg", [("/srv/in", "stdin", True)]),
    ("sh -c '. /srv/q'", [("/srv/q", "source", False)]),
]

QUIET = [
    "ls -la",
    'bash -c "echo hi"',
    'source "$f"',  # a name from the shell's state: not in the line
    "cat notes.txt | grep x",
    "cat /srv/in | bash -c 'wc -l'",  # bash -c reads its string, not stdin as code
    "BASH_ENV=/srv/e bash -i",  # an interactive bash does not read BASH_ENV
    "bash --rcfile /srv/r -c true",  # nor a non-interactive one its rcfile
    "echo . ./not-sourced",
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_files_read(line: str, expected: list[tuple[str, str, bool]]) -> None:
    got = [(r.path, r.how, r.exact) for r in files_read(parse(line))]
    assert got == expected


@pytest.mark.parametrize("line", QUIET)
def test_lines_that_read_no_file_as_code(line: str) -> None:
    assert files_read(parse(line)) == ()


def test_exact_span_is_the_word() -> None:
    line = 'source "my lib.sh" x'
    (read,) = files_read(parse(line))
    assert line[read.span[0]:read.span[1]] == '"my lib.sh"'
