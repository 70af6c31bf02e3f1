"""The mount policy of the fanotify rung (pure) and the mount table it reads."""

from __future__ import annotations

from attyguard.kernel.mounts import MountWatcher, marked_by_policy, parse_mountinfo

TABLE = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:30 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw
25 24 0:31 / /tmp/build\040dir rw - tmpfs tmpfs rw
26 22 0:32 / /run rw - tmpfs tmpfs rw
27 26 0:33 / /run/user/1000 rw - tmpfs tmpfs rw
28 22 0:34 / /mnt/usb rw - vfat /dev/sdb1 rw
29 22 0:35 / /home/u/.cache/x rw - cgroup2 cgroup2 rw
30 22 8:1 /srv /srv2 rw - ext4 /dev/sda1 rw
garbage line
"""


def test_parse_mountinfo_unescapes_and_skips_garbage() -> None:
    mounts = parse_mountinfo(TABLE)
    assert len(mounts) == 9
    assert mounts[3].mount_point == "/tmp/build dir"
    assert (mounts[3].dev, mounts[3].fstype) == ("0:31", "tmpfs")
    assert mounts[6].source == "/dev/sdb1"


def test_policy_marks_holders_and_mounts_below_roots_once_each() -> None:
    mounts = parse_mountinfo(TABLE)
    roots = ["/usr/bin", "/tmp", "/run/user", "/home", "/srv"]
    chosen = marked_by_policy(mounts, roots)
    assert {d: m.mount_point for d, m in chosen.items()} == {
        "8:1": "/",  # holds /usr/bin, /home and /srv (one filesystem, one mark)
        "0:30": "/tmp",
        "0:32": "/run",  # holds /run/user
        "0:31": "/tmp/build dir",  # mounted below a root
        "0:33": "/run/user/1000",
    }
    # pseudo filesystems are never marked, even below a root; mounts elsewhere are not
    assert "0:35" not in chosen and "0:34" not in chosen and "0:21" not in chosen


def test_policy_with_only_private_roots() -> None:
    mounts = parse_mountinfo(TABLE + "31 25 0:40 / /tmp/build\\040dir/late rw - tmpfs t rw\n")
    chosen = marked_by_policy(mounts, ["/tmp/build dir"])
    assert sorted(m.mount_point for m in chosen.values()) == [
        "/tmp/build dir", "/tmp/build dir/late"]


def test_watcher_reads_this_machines_table() -> None:
    w = MountWatcher()
    try:
        table = w.read()
        assert any(m.mount_point == "/" for m in table)
        assert any(m.mount_point == "/proc" and m.fstype == "proc" for m in table)
    finally:
        w.close()
