from __future__ import annotations

import threading

from attyguard.shell.keys import dump_warnings, format_warnings
from attyguard.shell.warnings import WarnBuffer


def test_add_count_drain_and_callback():
    changes: list[int] = []
    buf = WarnBuffer()
    buf.on_change = lambda: changes.append(buf.count)
    buf.add("one")
    buf.add("two")
    assert buf.count == 2
    assert buf.drain() == ["one", "two"]
    assert buf.count == 0
    assert changes == [1, 2, 0]


def test_concurrent_adds_are_all_counted():
    buf = WarnBuffer()

    def worker() -> None:
        for i in range(200):
            buf.add(str(i))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert buf.count == 800
    assert len(buf.drain()) == 800


def test_format_escapes_and_dump_clears():
    assert format_warnings([]) == "attyguard: no warnings\n"
    buf = WarnBuffer()
    buf.add("evil\x1b]0;title\x07")
    text = dump_warnings(buf)
    assert "\x1b" not in text and "\\x1b]0;title\\x07" in text
    assert buf.count == 0
