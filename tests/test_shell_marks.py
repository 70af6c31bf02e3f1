from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attyguard.shell.marks import Mark, MarkParser, Record, RecordParser, mark_prefix

NONCE = "abc123"
P = mark_prefix(NONCE)


def collect(parser: MarkParser, chunks: list[bytes]) -> list[bytes | Mark]:
    out: list[bytes | Mark] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.append(parser.flush())
    merged: list[bytes | Mark] = []
    for item in out:
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += item
        elif item != b"":
            merged.append(item)
    return merged


# Chunks built from pieces that matter to the parser: our prefix (whole or
# cut), ESC, BEL, ordinary text.
_PIECES = st.sampled_from([P, P[:5], P[:-1], b"\x1b", b"\x07", b"D;0", b"abc", b"\r\n"])
_CHUNKS = st.lists(st.lists(_PIECES, max_size=8).map(b"".join), min_size=1, max_size=4)


@given(_CHUNKS)
def test_plain_means_feed_would_pass_the_chunk_unchanged(chunks):
    """The passthrough's hot loop writes a chunk `plain` accepts without feeding it:
    that must be exactly what feeding would have produced, whatever came before."""
    parser = MarkParser(NONCE)
    for chunk in chunks:
        is_plain = parser.plain(chunk)
        fed = parser.feed(chunk)
        if is_plain:
            assert fed == ([chunk] if chunk else [])
            assert parser.flush() == b""


def test_plain_refuses_a_chunk_with_our_mark_or_a_possible_start_of_one():
    parser = MarkParser(NONCE)
    assert parser.plain(b"lots of output\r\n")
    assert not parser.plain(b"x" + P + b"D;0\x07")
    assert not parser.plain(b"x" + P[:4])
    parser.feed(b"x" + P[:4])  # held back: the next chunk must be fed
    assert not parser.plain(b"more")


def test_marks_are_stripped_and_everything_else_passes():
    data = b"hello" + P + b"D;0\x07" + b"\x1b]133;A\x07world" + P + b"B\x07"
    assert collect(MarkParser(NONCE), [data]) == [
        b"hello", Mark("D", ("0",)), b"\x1b]133;A\x07world", Mark("B")]


@pytest.mark.parametrize("cut", range(1, 30))
def test_mark_split_across_chunks(cut):
    data = b"ab" + P + b"D;7\x07cd"
    assert collect(MarkParser(NONCE), [data[:cut], data[cut:]]) == [
        b"ab", Mark("D", ("7",)), b"cd"]


def test_foreign_nonce_is_not_ours():
    other = mark_prefix("ffffff") + b"D;0\x07"
    assert collect(MarkParser(NONCE), [b"x" + other]) == [b"x" + other]


def test_only_a_possible_prefix_is_held_back():
    parser = MarkParser(NONCE)
    assert parser.feed(b"data\x1b]13") == [b"data"]
    assert parser.feed(b"x more") == [b"\x1b]13x more"]
    assert parser.feed(b"plain\x1b") == [b"plain"]
    assert parser.feed(b"[0m") == [b"\x1b[0m"]


def test_unterminated_long_mark_is_passed_through():
    data = P + b"D;" + b"x" * 400
    out = collect(MarkParser(NONCE), [data])
    assert out == [data]


def test_records_across_chunks_and_garbage():
    rp = RecordParser(NONCE)
    stream = (b"junk\0@" + NONCE.encode() + b"\0D\x000\0/tmp\0$ \0> \0\0@end\0"
              b"@" + NONCE.encode() + b"\0T\0typed\0@end\0")
    got: list[Record] = []
    for i in range(0, len(stream), 3):
        got.extend(rp.feed(stream[i:i + 3]))
    assert got == [Record("D", ("0", "/tmp", "$ ", "> ", "")), Record("T", ("typed",))]


def test_record_of_other_nonce_is_dropped():
    rp = RecordParser(NONCE)
    assert rp.feed(b"@zzz\0D\x000\0@end\0") == []


def test_the_kinds_are_exactly_the_letters_the_hooks_print():
    """The enums name the wire letters: every mark and record kind hooks.bash writes
    has a member, and every member is written somewhere (no dead letters)."""
    import re
    from pathlib import Path

    from attyguard.shell.marks import MarkKind, RecordKind

    hooks = (Path(__file__).parents[1] / "shellrc" / "hooks.bash").read_text()
    # (a record written with printf to the prompt's channel fd, or a second record
    # in the same write, follows `"@$__ag_nonce"`)
    records = set(re.findall(r"(?:__ag_record|\"@\$__ag_nonce\") ([A-Z]) ", hooks))
    marks = set(re.findall(r"\"\$__ag_nonce\"\$';([A-Z])\\a'", hooks))
    marks |= set(re.findall(r"__ag_mark \"([A-Z]);", hooks))
    assert records == {k.value for k in RecordKind}
    assert marks == {k.value for k in MarkKind}
    # StrEnum: a member is its letter, so what bash prints compares equal.
    assert MarkKind.DONE == "D" and f"{RecordKind.TYPEAHEAD}" == "T"


def test_parsed_kinds_are_enum_members_and_unknown_letters_are_dropped():
    from attyguard.shell.marks import MarkKind, RecordKind

    got = collect(MarkParser(NONCE), [b"a" + P + b"D;3\x07b" + P + b"Z;1\x07c"])
    assert got == [b"a", Mark(MarkKind.DONE, ("3",)), b"bc"]
    assert isinstance(got[1], Mark) and got[1].kind is MarkKind.DONE
    rp = RecordParser(NONCE)
    n = NONCE.encode()
    got_r = rp.feed(b"@" + n + b"\0Q\0x\0@end\0@" + n + b"\0K\0cu\0cut\0@end\0")
    assert got_r == [Record(RecordKind.COMPLETIONS, ("cu", "cut"))]
    assert got_r[0].kind is RecordKind.COMPLETIONS
