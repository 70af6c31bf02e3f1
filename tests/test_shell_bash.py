"""The bash child driven directly (no terminal): protocol, state, repair, completion."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from attyguard.resources import data_path
from attyguard.shell.bash import BashChild, Phase, interactive_bash_argv, sanitize_line


@pytest.fixture
def child(tmp_path) -> Iterator[BashChild]:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='[\\w]$ '\nalias ll='echo alias-ll'\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TERM": "xterm"}
    c = BashChild.spawn(data_path("shellrc"), size=(24, 80), env=env)
    assert c.wait_ready(10), "no first prompt"
    yield c
    c.close()


def run(c: BashChild, line: str) -> tuple[str, bytes]:
    r, w = os.pipe()
    try:
        result = c.run(line, None, w)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        return result.kind, f.read()


def test_state_after_commands(child):
    assert run(child, "cd /tmp; false") == ("done", b"")
    assert (child.state.status, child.state.cwd) == (1, "/tmp")
    assert child.state.ps1 == "[/tmp]$ "
    assert run(child, "echo $?; ll") == ("done", b"1\r\nalias-ll\r\n")


def test_continuation_then_complete(child):
    assert run(child, "for i in 1 2; do")[0] == "more"
    assert run(child, "echo n$i; done") == ("done", b"n1\r\nn2\r\n")


def test_cancel_continuation(child):
    assert run(child, "echo 'open")[0] == "more"
    assert child.cancel_continuation().kind == "done"
    assert run(child, "echo fine") == ("done", b"fine\r\n")


def test_syntax_error_message_is_shown(child):
    kind, out = run(child, "echo a; ) bad")
    assert kind == "done" and b"syntax error" in out
    assert child.state.status == 2


def test_unset_prompt_command_is_repaired(child):
    run(child, "unset PROMPT_COMMAND")
    assert run(child, "cd /; echo ok") == ("done", b"ok\r\n")
    assert child.state.cwd == "/"
    # and the hooks are back: PROMPT_COMMAND carries them again
    assert run(child, 'echo "${PROMPT_COMMAND[*]}"')[1] == b"__ag_pre __ag_post\r\n"


def test_pasted_text_cannot_escape_the_paste(child):
    assert sanitize_line("a\x1b[201~b\x03c\nd\te") == b"ab" + b"c\nd\te"
    assert run(child, "echo x\x1b[201~\rdate") == ("done", b"xdate\r\n")


def test_completion_of_session_names(child):
    run(child, "zzag_fn() { :; }; zzag_var=1")
    assert child.complete("zzag_", 5) == ("zzag_", ["zzag_fn"])
    assert child.complete("echo $zzag_", 11) == ("$zzag_", ["$zzag_var"])
    assert run(child, "echo $?") == ("done", b"0\r\n")


def test_typeahead_goes_to_the_front_end(child):
    child.send_line("sleep 0.3")
    # keys arriving while the command runs: written to the pty like a user would
    deadline = time.monotonic() + 5
    child._write_master(b"echo sneaky\r")
    result = child.passthrough(None, None, phase=Phase.ECHO)
    assert result.kind == "done" and time.monotonic() < deadline
    assert child.state.typeahead in (b"echo sneaky\n", b"echo sneaky\r")
    # bash did not run it
    assert run(child, "echo $?") == ("done", b"0\r\n")


def test_typeahead_holding_the_ack_separator_is_still_not_a_bypass(child, tmp_path):
    # Ctrl-] (the ack's separator) typed ahead splits the typeahead into
    # pieces; every piece still comes back to the front end, none reaches
    # readline, and the shell does not wait for a second ack.
    marker = tmp_path / "bypassed"
    child.send_line("sleep 0.3")
    keys = f"a\x1db\x1d\x1dtouch {marker}\r".encode()
    child._write_master(keys)
    deadline = time.monotonic() + 5
    assert child.passthrough(None, None, phase=Phase.ECHO).kind == "done"
    assert time.monotonic() < deadline
    assert child.state.typeahead.replace(b"\n", b"\r") == keys
    run(child, "true")
    assert not marker.exists()


def _type_while_running(c: BashChild, keys: bytes) -> bytes:
    """Run a command that waits, type `keys` once it runs, return the typeahead."""
    r, w = os.pipe()
    typed = threading.Event()

    def type_when_running() -> None:
        seen = b""
        while b"running" not in seen:
            seen += os.read(r, 4096)
        os.write(c.master, keys)  # (like the user's keys: the command's cooked tty)
        typed.set()
        while os.read(r, 4096):
            pass

    watcher = threading.Thread(target=type_when_running, daemon=True)
    watcher.start()
    c.send_line("echo running; sleep 0.5")
    result = c.passthrough(None, w, phase=Phase.ECHO)
    os.close(w)
    watcher.join(5)
    os.close(r)
    assert result.kind == "done" and typed.is_set()
    return c.state.typeahead


@pytest.mark.parametrize("keys, back", [
    (b"\x04", b"\x04"),  # Ctrl-D on its own: the prompt then ends the shell, as bash would
    (b"ab\x04cd", b"ab\x04cd"),
    (b"ls\r\x04", b"ls\n\x04"),
    (b"plain", b"plain"),
])
def test_ctrl_d_typed_while_a_command_runs_comes_back(child, keys, back):
    # The cooked tty turns the end-of-file key into a mark that reads as a
    # NUL; it used to be dropped on the way back (the known gap).
    assert _type_while_running(child, keys) == back
    assert run(child, "echo next") == ("done", b"next\r\n")  # nothing left for readline


def test_a_typed_ctrl_at_stays_a_nul(child):
    # Ctrl-@ (a NUL) forwarded to the command leaves the same mark: then the
    # pieces are joined with the NUL the user typed, never turned into Ctrl-D.
    from attyguard.shell.bash import _eof_for, _Run
    from attyguard.shell.marks import Record, RecordKind

    child._apply_record(Record(RecordKind.TYPEAHEAD, ("a", "b")), _eof_for(_Run(typed_nul=True)))
    assert child.state.typeahead == b"a\0b"
    child._apply_record(Record(RecordKind.TYPEAHEAD, ("a", "b")), _eof_for(_Run()))
    assert child.state.typeahead == b"a\x04b"


def test_vi_mode_keeps_the_protocol(child):
    run(child, "set -o vi; exec 3>/dev/null")
    assert child.state.editing_mode == "vi"
    assert run(child, "echo still; false") == ("done", b"still\r\n")
    assert child.state.status == 1
    run(child, "zzvi_fn() { :; }")
    assert child.complete("zzvi_", 5) == ("zzvi_", ["zzvi_fn"])


def test_typeahead_in_rescue_path_is_not_a_bypass(child, tmp_path):
    marker = tmp_path / "bypassed"
    run(child, "unset PROMPT_COMMAND")
    child.send_line("sleep 0.3")
    child._write_master(f"touch {marker}\r".encode())
    assert child.passthrough(None, None, phase=Phase.ECHO).kind == "done"
    assert child.state.typeahead.startswith(f"touch {marker}".encode())
    run(child, "true")
    assert not marker.exists()


def test_keys_are_not_forwarded_to_a_continuation_prompt(child, tmp_path):
    marker = tmp_path / "leaked"
    # early keys for a line bash answers with PS2: they come back as typeahead
    child.send_line("echo 'open")
    result = child.passthrough(None, None, early=f"touch {marker}\r".encode())
    assert result.kind == "more"
    assert child.state.typeahead == f"touch {marker}\r".encode()
    child.cancel_continuation()
    assert not marker.exists()


def test_bulk_output_passes_byte_exact(child):
    # Far more than one pty read (~4 KiB): the passthrough batches reads, and
    # a foreign OSC 133 mark in the middle of the stream must survive intact.
    r, w = os.pipe()
    got = bytearray()

    def drain() -> None:
        with os.fdopen(r, "rb") as f:
            while chunk := f.read1(65536):
                got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        result = child.run(r"seq 1 30000; printf '\033]133;A\007'; seq 5 7", None, w)
    finally:
        os.close(w)
        reader.join(10)
    expected = b"".join(b"%d\r\n" % i for i in range(1, 30001)) + b"\x1b]133;A\x075\r\n6\r\n7\r\n"
    assert result.kind == "done"
    # (readline may clear to the end of line as the prompt comes back)
    assert bytes(got).removesuffix(b"\x1b[K") == expected


@pytest.mark.parametrize(("argv", "interactive"), [
    ([b"bash"], True),
    ([b"/usr/bin/bash", b"-l"], True),
    ([b"-bash"], True),
    ([b"bash", b"--rcfile", b"x.rc", b"--norc"], True),
    ([b"bash", b"-o", b"vi"], True),
    ([b"bash", b"-i", b"script.sh"], True),
    ([b"bash", b"script.sh"], False),
    ([b"bash", b"-c", b"echo hi"], False),
    ([b"bash", b"-xc", b"echo hi"], False),
    ([b"bash", b"--", b"script.sh"], False),
    ([b"vim"], False),
    ([b"zsh"], False),
    ([], False),
])
def test_interactive_bash_argv(argv, interactive):
    assert interactive_bash_argv(argv) is interactive


def test_the_acks_echo_is_dropped_even_when_split_across_reads(child):
    # (bash's `read -s` turns echo off only once it runs: an early ack is echoed)
    from attyguard.shell.bash import _Run

    run_ = _Run(phase=Phase.AFTER_D)
    r, w = os.pipe()
    echo = child._ack_echo
    for piece in (b"\x1b[?2004h" + echo[:5], echo[5:12], echo[12:] + b"kept"):
        child._output_bytes(run_, piece, w)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"kept"


def test_close_removes_the_session_dir_with_the_judged_copies(child, tmp_path):
    # The rc and sourced-file copies live in subdirectories of the session's
    # directory (rcjudge, filejudge): closing (or a signal) removes them all,
    # and a link someone left there is removed, not followed.
    from attyguard.filejudge import DirSnapshots
    from attyguard.rcjudge import _copies_dir

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept")
    rc = _copies_dir(str(child.dir))
    rc_copy = rc.add(b"echo rc\n", "~/.bashrc")
    files = DirSnapshots.private(str(child.dir))
    file_copy = files.add(b"echo sourced\n", "x.sh")
    assert rc_copy and file_copy
    assert os.path.dirname(os.path.dirname(rc_copy)) == str(child.dir)
    assert os.path.dirname(os.path.dirname(file_copy)) == str(child.dir)
    (child.dir / "link").symlink_to(outside)
    child.close()
    assert not child.dir.exists()
    assert (outside / "keep").read_text() == "kept"
    rc.close()  # (already gone with the session's directory: nothing to do, no error)
    files.close()


@pytest.mark.parametrize("breaks", [
    "unset PROMPT_COMMAND",
    "PROMPT_COMMAND=(true)",  # replaced as a whole array
    "PS1='new$ '; unset PROMPT_COMMAND",  # with a new prompt in the same line
])
def test_keys_queued_while_a_line_breaks_prompt_command_never_run(child, tmp_path, breaks):
    # PS1 is the user's while a line runs (hooks.bash): no rescue in it. Keys
    # queued meanwhile meet readline at bash's own prompt; Enter still wants a
    # token there, and the front end repairs the hooks with one.
    marker = tmp_path / "bypassed"
    child.send_line(f"{breaks}; sleep 0.3")
    child._write_master(f"touch {marker}\r".encode())
    assert child.passthrough(None, None, phase=Phase.ECHO).kind == "done"
    assert run(child, "echo after")[1].endswith(b"after\r\n")
    assert not marker.exists()
    hooks = run(child, 'echo "${PROMPT_COMMAND[*]}"')[1].split()
    assert hooks[0] == b"__ag_pre" and hooks[-1] == b"__ag_post", hooks


def test_a_line_sees_the_users_ps1_and_the_state_request_too(child):
    assert run(child, 'echo "$PS1"') == ("done", b"[\\w]$ \r\n")
    assert child.fetch_state(b"v:PS1\0") == ("V", "PS1", "[\\w]$ ")
    run(child, "unset PS1")
    assert run(child, 'echo "${PS1-unset}"') == ("done", b"unset\r\n")
    assert child.fetch_state(b"v:PS1\0") == ()


def _drain(r: int) -> bytes:
    with os.fdopen(r, "rb") as f:
        return f.read()


def test_a_run_handed_over_at_its_d_mark_settles_before_the_next_line(child):
    # passthrough(settle_later=True) returns at the D mark (the front end draws
    # the next prompt meanwhile); bash has not drawn its own prompt yet, and a
    # line sent now waits for it: it runs after, whole, nothing of the ack shown.
    r, w = os.pipe()
    child.send_line("echo first")
    result = child.passthrough(None, w, settle_later=True)
    assert result.kind == "done" and child.settling
    child.send_line("echo second")
    assert not child.settling
    assert child.passthrough(None, w).kind == "done"
    os.close(w)
    assert _drain(r) == b"first\r\nsecond\r\n"
    assert run(child, "echo $?") == ("done", b"0\r\n")


def test_a_settling_run_is_finished_by_the_idle_reader_with_its_typeahead(child):
    # What the prompt's event loop does: read the pty when it is readable
    # (read_idle) until B; the keys typed during the command come back.
    import select

    r, w = os.pipe()
    seen = bytearray()

    def type_when_running() -> None:
        while b"running" not in seen:
            got = os.read(r, 4096)
            if not got:
                return
            seen.extend(got)
        os.write(child.master, b"echo typed\r")  # (the user's keys, while it runs)
        while got := os.read(r, 4096):
            seen.extend(got)

    watcher = threading.Thread(target=type_when_running, daemon=True)
    watcher.start()
    child.send_line("echo running; sleep 0.3; echo slept")
    assert child.passthrough(None, w, settle_later=True).kind == "done"
    os.close(w)
    watcher.join(5)
    os.close(r)
    assert seen.endswith(b"slept\r\n")
    assert child.settling and child.state.typeahead == b""
    shown = b""
    deadline = time.monotonic() + 5
    while child.settling and time.monotonic() < deadline:
        if select.select([child.master], [], [], 1)[0]:
            got = child.read_idle()
            assert got is not None
            shown += got
    assert not child.settling
    # Nothing for the screen: no echo of the ack, only readline's own redraw
    # (which the prompt drops as it drops it while idle).
    from attyguard.shell.prompt import idle_noise

    assert idle_noise(shown), shown
    assert child.state.typeahead.replace(b"\n", b"\r") == b"echo typed\r"
    assert run(child, "echo next") == ("done", b"next\r\n")  # nothing left for readline


def test_a_run_with_keys_left_to_deliver_is_not_handed_over(child):
    # Keys that never reached the command (it ended before the C mark: an
    # empty line) are the prompt's, from this run: it ends at B as before.
    child.send_line("")
    result = child.passthrough(None, None, early=b"xy", settle_later=True)
    assert result.kind == "done" and not child.settling
    assert child.state.typeahead == b"xy"
