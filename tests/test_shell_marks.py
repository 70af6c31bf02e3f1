from __future__ import annotations

import pytest

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
