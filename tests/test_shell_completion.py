"""The completion listing's layout (readline's rl_display_match_list), pure."""

from __future__ import annotations

import pytest

from attyguard.shell.completion import bash_columns


@pytest.mark.parametrize("items, width, rows", [
    ([], 80, []),
    (["a"], 80, ["a"]),
    # width 3 per column (1 + 2): 26 // 3 = 8 columns, 8 items: one row, no trailing pad
    (list("abcdefgh"), 26, ["a  b  c  d  e  f  g  h"]),
    # 24 == 8 × 3 exactly: one column fewer (the last would wrap), down the columns
    (list("abcdefgh"), 24, ["a  c  e  g", "b  d  f  h"]),
    # widest item sets the column; a name wider than the screen: one column
    (["ab", "abcdef", "c"], 9, ["ab", "abcdef", "c"]),
    (["ab", "abcdef", "c"], 20, ["ab      c", "abcdef"]),  # 20 // 8: two columns
    (["ab", "abcdef", "c"], 25, ["ab      abcdef  c"]),
    # wide characters count two cells: 4 + 2 = 6, and 12 is an exact fit
    (["日本", "x"], 12, ["日本", "x"]),
    (["日本", "x"], 13, ["日本  x"]),
])
def test_bash_columns(items, width, rows):
    assert bash_columns(items, width) == rows


def test_a_long_list_keeps_its_columns_across_screens():
    items = [f"n{i:02d}" for i in range(30)]
    rows = bash_columns(items, 16)  # 3 + 2 = 5 wide: 3 columns, 10 rows
    assert len(rows) == 10
    assert rows[0] == "n00  n10  n20" and rows[9] == "n09  n19  n29"
