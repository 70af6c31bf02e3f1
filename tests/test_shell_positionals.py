"""substitute_positionals: a -c string with the operands it expands filled in, for judging."""

from __future__ import annotations

import pytest

from attyguard.shell.noninteractive import substitute_positionals

P = ["name", "a b;c", 'q"$x']

CASES = [
    ('eval "$1"', 'eval "a b;c"'),
    ("eval $1", "eval a 'b;c'"),
    ('eval "${1}"', 'eval "a b;c"'),
    ('eval "${1:-x}"', 'eval "a b;c"'),
    ('eval "$@"', 'eval "a b;c q\\"\\$x"'),
    ("echo $*", "echo a 'b;c' 'q\"$x'"),
    ("echo '$1'", None),  # single quotes: nothing expands
    ("echo $'$1'", None),
    ('echo "$0"', 'echo "name"'),
    ('echo "$(eval $1)"', "echo \"$(eval a 'b;c')\""),
    ("echo \\$1", None),
    ('echo "$5"', None),  # unset: left as it is
    ("true", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_substitute_positionals(text: str, expected: str | None) -> None:
    assert substitute_positionals(text, P) == expected
