"""The one enforcement point, with a fake classifier, a fake bash and no terminal."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from attyguard.config import Config
from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict
from attyguard.guard import Guard
from attyguard.shell.bash import PromptState, RunResult
from attyguard.shell.session import Session
from attyguard.shell.warnings import WarnBuffer
from attyguard.shell.wiring import Wired


def verdict_for(line: str) -> Verdict:
    if "evil" in line:
        return Verdict(Action.BLOCK, rules=(RuleHit("b1", "evil thing", Severity.CRITICAL,
                                                    Action.BLOCK, 0.99),))
    if "risky" in line:
        return Verdict(Action.WARN, rules=(RuleHit("w1", "risky thing", Severity.HIGH,
                                                   Action.WARN, 0.6),))
    return Verdict(Action.ALLOW)


@dataclass
class FakeChild:
    sent: list[str] = field(default_factory=list)
    cancelled: int = 0
    more_after: set[str] = field(default_factory=set)
    state: PromptState = field(default_factory=PromptState)
    master: int = -1
    out_tail: bytes = b""  # (output ends a line: no partial-line mark)
    pidfd: int | None = None
    exit_signal: int | None = None
    gone_while_held: bool = False
    settling: bool = False  # (its runs end at B: nothing is left for the prompt's loop)

    def run(self, text: str, in_fd: int | None, out_fd: int | None,
            early: bytes = b"", settle_later: bool = False) -> RunResult:
        self.sent.append(text)
        return RunResult("more" if text in self.more_after else "done", 0)

    def cancel_continuation(self) -> RunResult:
        self.cancelled += 1
        return RunResult("done", 130)

    # The live shell's state (attyguard/shell/state.py): a names file and answers.
    names_data: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    requests: list[bytes] = field(default_factory=list)

    def names(self) -> tuple[str, ...]:
        return self.names_data

    def fetch_state(self, request: bytes) -> tuple[str, ...] | None:
        self.requests.append(request)
        return self.answers


@dataclass
class FakeTrust:
    added: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def lookup(self, line: str) -> bool:
        return any(line == a for a, _ in self.added)

    def add(self, line: str, rule_ids: tuple[str, ...]) -> None:
        self.added.append((line, rule_ids))


@pytest.fixture
def make(tmp_path):
    def build(answer: str = "cancel"):
        child = FakeChild()
        trust = FakeTrust()
        shown: list[str] = []
        devnull = os.open(os.devnull, os.O_WRONLY)
        session = Session(
            child=child,  # type: ignore[arg-type]
            get_wired=lambda: Wired(Guard(verdict_for, trust=trust)),
            config=Config(), ui=None, warnings=WarnBuffer(),
            ask_warn=lambda: answer,
            show=lambda ft: shown.append("".join(t for _, t in ft)),  # type: ignore[attr-defined]
            in_fd=os.open(os.devnull, os.O_RDONLY), out_fd=devnull,
        )
        return session, child, trust, shown
    return build


def test_allow_runs(make):
    session, child, _, shown = make()
    assert session.submit("ls -l").kind == "done"
    assert child.sent == ["ls -l"] and shown == []


def test_block_refuses_and_runs_nothing(make):
    session, child, _, shown = make()
    assert session.submit("do evil") is None
    assert child.sent == []
    assert shown == ["REFUSED — evil thing\n"]
    assert session.default == ""  # the buffer is cleared
    assert session.warnings.count == 1


@pytest.mark.parametrize("answer", ["cancel"])
def test_warn_cancel_restores_the_line(make, answer):
    session, child, trust, shown = make(answer)
    assert session.submit("risky op") is None
    assert child.sent == [] and trust.added == []
    assert session.default == "risky op"
    assert shown and shown[0].startswith("⚠ risky thing")
    assert session.warnings.count == 1


def test_warn_yes_runs_once(make):
    session, child, trust, _ = make("yes")
    session.submit("risky op")
    assert child.sent == ["risky op"] and trust.added == []


def test_warn_trust_remembers_then_runs_and_next_time_no_question(make):
    session, child, trust, _shown = make("trust")
    session.submit("risky op")
    assert trust.added == [("risky op", ("w1",))]
    assert child.sent == ["risky op"]
    session.ask_warn = lambda: pytest.fail("asked again for a trusted line")  # type: ignore[assignment]
    session.submit("risky op")
    assert child.sent == ["risky op", "risky op"]


@pytest.mark.parametrize("first,second", [
    ("echo start \\", "evil"),
    ("echo 'open", "evil'"),
    ("if true; then", "evil; fi"),
    ("cat <<EOF", "evil\nEOF"),
    ("echo one |", "evil"),
])
def test_continuation_is_collected_and_judged_whole_before_bash_sees_any(make, first, second):
    session, child, _, shown = make()
    assert session.submit(first) is None  # bash would ask for more: held, not sent
    assert session.pending == first and child.sent == []
    assert session.submit(second) is None  # the joined text is blocked
    assert child.sent == [] and child.cancelled == 0 and session.pending == ""
    assert shown and shown[-1].startswith("REFUSED")


def test_complete_joined_text_is_sent_once(make):
    session, child, _, _ = make()
    assert session.submit("for i in 1 2; do") is None
    assert session.submit("echo $i") is None
    assert session.submit("done").kind == "done"
    assert child.sent == ["for i in 1 2; do\necho $i\ndone"]


def test_when_bash_itself_asks_for_more_refusal_cancels_it(make):
    """An alias can open a loop: bash shows PS2 for a line the check called complete."""
    session, child, _, _shown = make()
    child.more_after = {"myloop"}
    assert session.submit("myloop").kind == "more"
    assert session.pending == "myloop"
    assert session.submit("evil") is None  # "myloop\nevil" is blocked
    assert child.cancelled == 1 and session.pending == ""
    assert child.sent == ["myloop"]



@dataclass
class EarlyChild(FakeChild):
    """Records whether a line came through `send_line` (early) or `run`."""

    early_sent: list[str] = field(default_factory=list)
    passed: int = 0

    def send_line(self, text: str, tty_fd: int | None = None) -> None:
        self.early_sent.append(text)

    def passthrough(self, in_fd: int | None, out_fd: int | None,
                    phase: str = "echo", early: bytes = b"",
                    settle_later: bool = False) -> RunResult:
        self.passed += 1
        return RunResult("done", 0)


@pytest.fixture
def make_early(tmp_path):
    def build(answer: str = "cancel", ready: bool = True):
        child = EarlyChild()
        decided: list[str] = []

        def counting(line: str) -> Verdict:
            decided.append(line)
            return verdict_for(line)

        wired = Wired(Guard(counting, trust=FakeTrust()))
        shown: list[str] = []
        session = Session(
            child=child,  # type: ignore[arg-type]
            get_wired=lambda: wired, ready_wired=lambda: wired if ready else None,
            config=Config(), ui=None, warnings=WarnBuffer(), ask_warn=lambda: answer,
            show=lambda ft: shown.append("".join(t for _, t in ft)),  # type: ignore[attr-defined]
            in_fd=os.open(os.devnull, os.O_RDONLY), out_fd=os.open(os.devnull, os.O_WRONLY),
        )
        session._notes_shown = True  # (not the first line)
        return session, child, decided, shown
    return build


def test_an_allowed_line_goes_to_bash_as_enter_accepts_it(make_early):
    session, child, decided, _ = make_early()
    session.accepting("ls -l")
    assert child.early_sent == ["ls -l"] and decided == ["ls -l"]  # classified first
    assert session.submit("ls -l").kind == "done"
    assert child.passed == 1 and child.sent == []  # not sent a second time
    assert decided == ["ls -l"]  # nor classified twice


@pytest.mark.parametrize("line, answer", [("do evil", "yes"), ("risky op", "cancel"),
                                          ("risky op", "yes")])
def test_warned_or_blocked_lines_are_never_sent_early(make_early, line, answer):
    session, child, decided, shown = make_early(answer)
    session.accepting(line)
    assert child.early_sent == []
    session.submit(line)
    assert decided == [line]  # the early verdict is the one acted on
    assert child.sent == ([line] if "risky" in line and answer == "yes" else [])
    assert shown  # REFUSED or the warning, as without the early verdict


def test_nothing_is_decided_early_while_the_guard_loads_or_on_the_first_line(make_early):
    session, child, decided, _ = make_early(ready=False)
    session.accepting("ls")
    assert child.early_sent == [] and decided == []
    session.submit("ls")
    assert child.sent == ["ls"] and decided == ["ls"]
    session, child, decided, _ = make_early()
    session._notes_shown = False
    session.accepting("ls")
    assert child.early_sent == [] and decided == []


def test_a_continuation_is_classified_whole_when_accepted(make_early):
    session, child, decided, _ = make_early()
    session.pending = "echo start \\"
    session.accepting("evil")
    # (also as bash joins the continued line: judged both ways)
    assert decided == ["echo start \\\nevil", "echo start evil"] and child.early_sent == []


def test_the_end_of_a_command_and_the_next_prompt_are_marked_in_one_write(make, tmp_path):
    session, child, _, _ = make()
    reads, writes = os.pipe()
    session.out_fd = writes
    session.child.state.cwd = "/some where"

    class OneLine:
        def set_editing_mode(self, mode: str) -> None:
            pass

        def read(self, *args: object, **kwargs: object) -> object:
            from attyguard.shell.prompt import ChildGone

            return ChildGone()

    session.ui = OneLine()
    child.close = lambda: 0  # type: ignore[attr-defined]
    child.read_idle = lambda: b""  # type: ignore[attr-defined]
    session._after_command(3)
    assert session.loop() == 0
    os.close(writes)
    data = os.read(reads, 4096)
    os.close(reads)
    host = os.uname().nodename
    assert data == (b"\x1b]133;D;3\x07\x1b]7;file://" + host.encode() + b"/some%20where\x07"
                    b"\x1b]133;A\x07")


# --- the live shell's state (issue 9, families 1 and 2) ---------------------------------

def test_state_the_line_uses_is_fetched_and_judged(tmp_path):
    from attyguard.engine.state import ShellState

    seen: list[ShellState | None] = []

    def engine(line: str, state: ShellState | None = None) -> Verdict:
        seen.append(state)
        if state is not None and "evil" in state.variables.get("v", ""):
            return verdict_for("evil")
        return Verdict(Action.ALLOW)

    child = FakeChild(answers=("V", "v", "evil payload"))
    shown: list[str] = []
    session = Session(
        child=child,  # type: ignore[arg-type]
        get_wired=lambda: Wired(Guard(engine)), config=Config(), ui=None,
        warnings=WarnBuffer(), ask_warn=lambda: "cancel",
        show=lambda ft: shown.append("".join(t for _, t in ft)),  # type: ignore[attr-defined]
        in_fd=os.open(os.devnull, os.O_RDONLY), out_fd=os.open(os.devnull, os.O_WRONLY))
    assert session.submit('eval "$v"') is None
    assert child.sent == [] and shown and shown[0].startswith("REFUSED")
    assert child.requests == [b"v:v\0"]
    # A literal line asks nothing and the engine gets no state.
    assert session.submit("ls -la").kind == "done"
    assert child.requests == [b"v:v\0"] and seen[-1] is None


def test_verdict_cache_keys_on_line_and_state():
    from attyguard.engine.state import ShellState
    from attyguard.shell.wiring import Remembering

    calls: list[str] = []

    def engine(line: str, state: ShellState | None = None) -> Verdict:
        calls.append(state.variables.get("v", "") if state else "")
        return Verdict(Action.ALLOW)

    remembering = Remembering(engine)
    a = ShellState(variables={"v": "a"})
    b = ShellState(variables={"v": "b"})
    for state in (a, a, b, None, None, ShellState(variables={"v": "a"})):
        remembering('eval "$v"', state)
    assert calls == ["a", "b", ""]


def test_trust_is_for_the_line_with_its_state():
    from attyguard.engine.state import ShellState

    trust = FakeTrust()
    guard = Guard(lambda line, state=None: verdict_for("risky"), trust=trust)
    one = ShellState(variables={"v": "echo one"})
    verdict = guard.decide('eval "$v"', state=one)
    assert verdict.action is Action.WARN
    guard.remember('eval "$v"', verdict, one)
    assert guard.decide('eval "$v"', state=one).action is Action.ALLOW
    assert guard.decide('eval "$v"', state=ShellState(variables={"v": "x"})).action \
        is Action.WARN
    assert guard.decide('eval "$v"').action is Action.WARN
    # A line trusted as text (attyguard trust add) holds whatever the state.
    trust.add("ll", ())
    assert guard.decide("ll", state=ShellState(aliases={"ll": "ls -l"})).action is Action.ALLOW


def test_continued_word_is_judged_as_bash_joins_it(make):
    """bash drops backslash-newline before splitting words: `ev\\` + `il` is `evil`."""
    session, child, _, shown = make()
    assert session.submit("echo ev\\") is None
    assert session.submit("il") is None
    assert child.sent == [] and shown and shown[-1].startswith("REFUSED")


def test_bare_bash_starts_a_nested_attyguard(make, monkeypatch):
    import attyguard.shell.spawn as spawn

    monkeypatch.setattr(spawn, "attyguard_path", lambda: "/opt/ag/attyguard")
    session, child, _, shown = make()
    assert session.submit("bash").kind == "done"
    assert child.sent == ["/opt/ag/attyguard"]
    assert session.submit("sudo -i").kind == "done"
    assert child.sent[-1] == "sudo -i" and "not judged" in shown[-1]


def test_fc_inside_a_larger_line_is_asked_about(make):
    session, child, _, shown = make()
    assert session.submit("history -s 'echo x'; fc -s") is None  # asked, cancelled
    assert child.sent == [] and "fc re-runs a history line" in shown[-1]


def test_lines_touching_our_hooks_are_refused(make):
    session, child, _, shown = make()
    for line in ("__ag_tok=0", "__ag_complete() { :; }", "unset -f __ag_post"):
        assert session.submit(line) is None
        assert shown[-1].startswith("REFUSED — Changes attyguard's own hooks")
    assert child.sent == []
