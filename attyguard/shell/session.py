"""The interactive loop and THE one enforcement point.

Every line the user enters (typed, pasted, completed, recalled, or typed
ahead while a command ran) reaches bash only through `Session.submit`, which
asks the Guard first: allow -> run; warn -> `[y]es / [t]rust / cancel`;
block -> one REFUSED line and a cleared buffer. bash's parser decides when a
command is complete (it shows PS2 for more); the classifier always sees the
whole command entered so far.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attyguard.shell.bash import BashChild, RunResult, raw_terminal
from attyguard.shell.instant import (
    InstantPrompt,
    ends_at_line_start,
    partial_line_mark,
)
from attyguard.shell.spawn import (
    terminal_size,
)
from attyguard.shell.text import one_line, split_typeahead
from attyguard.shell.warnings import WarnBuffer

if TYPE_CHECKING:  # imported lazily: bash is spawned before anything heavy

    from attyguard.config import Config
    from attyguard.engine.state import ShellState
    from attyguard.engine.verdict import Verdict
    from attyguard.shell.state import Names
    from attyguard.shell.wiring import Wired

__all__ = ["Session"]


def _not_ready() -> Wired | None:
    return None


@dataclass(frozen=True)
class _Decided:
    """A verdict reached as Enter accepted `text`; `sent`: bash already has the line."""

    text: str
    verdict: Verdict
    sent: bool
    state: ShellState | None = None
    send: str = ""  # the line as handed to bash (reading judged copies of its files)


@dataclass
class Session:
    child: BashChild
    get_wired: Callable[[], Wired]  # waits for the Guard if it is still loading
    config: Config
    ui: object  # ShellPrompt (typed loosely: prompt_toolkit is imported lazily)
    warnings: WarnBuffer
    ask_warn: Callable[[], str]
    show: Callable[[object], None]  # prints prompt_toolkit formatted text
    in_fd: int = 0
    out_fd: int = 1
    pending: str = ""  # the command so far while bash waits for more (PS2)
    keys: str = ""  # typed ahead while a command ran: replayed as keystrokes
    default: str = ""
    after_first_render: Callable[[], None] | None = None
    # The Guard if it is loaded and warm, else None (never waits): lets
    # `accepting` decide while the prompt is still finishing its last frame.
    ready_wired: Callable[[], Wired | None] = _not_ready
    instant: InstantPrompt | None = None  # the first PS1, drawn before the front end
    _notes_shown: bool = False
    _lock_hint_shown: bool = False
    # Said once above the next prompt (e.g. history that cannot be saved).
    notes: list[str] = field(default_factory=list)
    history: Any = None  # SharedFileHistory: one entry per command (finish_entry)
    _decided: _Decided | None = None
    _held_marks: str = ""
    _pending_in_bash: bool = False  # bash itself holds `pending` (it showed PS2)
    _more_memo: tuple[str, bool] | None = None
    # The last `submit` kept its line as the start of a longer command (`_wants_more`):
    # its history entry stays open for the rest, as when bash itself shows PS2.
    _collecting: bool = False
    _fc_edit: bool = False  # an editing `fc` ran: its text comes back to the prompt
    _names_data: tuple[str, ...] = ()
    _names: Names | None = None
    files: Any = None  # attyguard.filejudge.SessionFiles, made on the first line

    # --- the one enforcement point ----------------------------------------------------

    def accepting(self, text: str) -> None:
        """Enter has accepted `text`; the prompt has yet to draw its final frame.

        Called by the prompt from its Enter handler. Classifies the line here
        already and, if it is allowed, hands it to bash at once, so bash reads
        and runs it while the prompt finishes drawing and tears down (on the
        other core) instead of after. Still classified before bash sees it;
        `submit` then acts on this verdict and only passes the terminal
        through. Anything but a plain allow (warn, block), or a Guard still
        loading, is left to `submit` as before.
        """
        from attyguard.engine.verdict import Action

        self._decided = None
        wired = self.ready_wired()
        if wired is None or not self._notes_shown:
            return  # (the first line also shows the Guard's notes: submit's job)
        if self._resolve_needed(text) or "__ag_" in text:
            return  # (history expansion, fc, our hooks: submit's job)
        full = self._full(text)
        if self._wants_more(full):
            return  # (held until the command is complete: submit's job)
        if not self.pending and self._nested(full, tell=False) != full:
            return  # (a nested shell: what runs is not `text`; submit's job)
        state = self._state_for(full)
        verdict, send = self._files_judged(wired, text, full, _decide(wired, full, state))
        sent = verdict.action is Action.ALLOW
        if sent:
            self.child.send_line(send, self.in_fd)
        self._decided = _Decided(text, verdict, sent, state, send)

    def _state_for(self, line: str) -> ShellState | None:
        """The live bash's values of the names `line` uses (a round trip only if it uses any)."""
        from attyguard.shell.state import build_state, encode_request, parse_names

        data = self.child.names()
        if data != self._names_data or self._names is None:
            self._names_data, self._names = data, parse_names(data)
        state = build_state(line, self._names,
                            lambda needs: self.child.fetch_state(encode_request(needs)))
        return state or None

    def _refuse_hooks(self, text: str) -> bool:
        """Refuse a line that touches attyguard's own hooks (see `_touches_hooks`)."""
        from attyguard.engine.verdict import Action, Verdict
        from attyguard.shell.confirm import refused_text

        if "__ag_" not in text:
            return False
        refused = _touches_hooks(Verdict(Action.ALLOW))
        self.show(refused_text(refused, self.config.ui.refused_style))
        self.warnings.add(f"refused: {refused.reason}: {one_line(text, 120)}")
        return True

    def _resolve_needed(self, text: str) -> bool:
        from attyguard.shell.history_expand import might_expand

        return might_expand(text, self.child.state.histchars) or text.lstrip().startswith("fc")

    def _resolve(self, text: str) -> str | None:
        """What bash will run for `text`: history expanded, `fc` resolved (history_expand.py).

        None when nothing is to run: the expansion failed (bash's message is
        shown and the text stays in the prompt), `:p` only prints, or
        `histverify` wants the expansion edited first.
        """
        from prompt_toolkit.formatted_text import FormattedText

        from attyguard.shell.history_expand import (
            event_designator,
            fc_substitute,
            might_expand,
            parse_fc,
            print_only,
            rewrite_fc_edit,
        )
        from attyguard.shell.text import escape_controls

        def say(line: str) -> None:
            self.show(FormattedText([("", escape_controls(line) + "\n")]))

        prompt = self.child.state
        if might_expand(text, prompt.histchars):
            got = self.child.expand_history(text)
            if got is not None:  # (no answer: bash will not expand it either)
                status, expanded, error = got
                if status != 0:
                    say(error or "attyguard: history expansion failed")
                    self.default = text  # nothing typed is lost
                    return None
                if print_only(text, prompt.histchars):
                    say(expanded)
                    return None
                if expanded != text:
                    say(expanded)  # as bash shows an expanded line
                    if prompt.histverify:
                        self.default = expanded
                        return None
                    text = expanded
        call = parse_fc(text)
        if call is None or call.mode == "list":
            return text
        if call.mode == "edit":
            self._fc_edit = True
            return rewrite_fc_edit(call)
        designator = event_designator(call, prompt.histchars)
        got = self.child.expand_history(designator) if designator else None
        if got is None or got[0] != 0:
            say(f"attyguard: fc: cannot tell which command {one_line(text, 80)} would run; "
                "nothing ran")
            self.default = text
            return None
        command = fc_substitute(got[1], call)
        say(command)  # (fc -s shows the command it runs)
        return command

    def _take_fc_edit(self) -> None:
        """After an editing `fc`: the edited text waits in the prompt, to be judged."""
        from prompt_toolkit.formatted_text import FormattedText

        self._fc_edit = False
        path = self.child.dir / "fced"
        try:
            edited = path.read_text("utf-8", "surrogateescape")
            path.unlink()
        except (OSError, AttributeError):
            return
        if edited.strip():
            self.default = edited.rstrip("\n")
            self.show(FormattedText([("", "attyguard: the edited command is in the prompt; "
                                          "Enter runs it\n")]))

    def _nested(self, line: str, *, tell: bool = True) -> str:
        """A bare `bash`/`sh` runs a nested attyguard; an unguardable shell is named once."""
        from prompt_toolkit.formatted_text import FormattedText

        from attyguard.shell.nested import nested_shell
        from attyguard.shell.spawn import attyguard_path

        # (Most lines start no shell: the executable is looked up, a stat and
        # an access check, only for those that do.)
        if nested_shell(line, None) is None:
            return line
        got = nested_shell(line, attyguard_path())
        if got is None:
            return line
        if got.notice and tell:
            self.show(FormattedText([("", got.notice + "\n")]))
        return got.line or (line if tell else "\0")  # (accepting: "not as typed")

    def _wants_more(self, full: str) -> bool:
        """bash would ask for more (PS2): collect it here, judge and send it whole.

        Once bash itself holds a part (it asked for more although the check
        said complete, e.g. an alias opening a loop) the rest goes the old
        way: each further part joined with it, judged, then sent.
        """
        from attyguard.shell.continuation import needs_more

        if self._pending_in_bash:
            return False
        if self._more_memo is None or self._more_memo[0] != full:
            self._more_memo = (full, needs_more(full))
        return self._more_memo[1]

    def _to_send(self, text: str, full: str) -> str:
        return text if self._pending_in_bash else full

    def _files_judged(self, wired: Wired, text: str, full: str,
                      verdict: Verdict) -> tuple[Verdict, str]:
        """The files the line hands to a shell judged with it; the line to send (filejudge)."""
        from attyguard.filejudge import SessionFiles

        if self.files is None:
            directory = getattr(self.child, "dir", None)  # (copies go with the session's)
            self.files = SessionFiles(str(directory) if directory is not None else None)
        if self._pending_in_bash:  # (bash holds the first part: judged joined, not re-pointed)
            return self.files.judge(wired.guard, full, verdict,
                                    self.child.state.cwd, pin=False)[0], text
        result: tuple[Verdict, str] = self.files.judge(wired.guard, full, verdict,
                                                        self.child.state.cwd)
        return result

    def _full(self, text: str) -> str:
        return f"{self.pending}\n{text}" if self.pending else text

    def submit(self, text: str) -> RunResult | None:
        """Classify what would run and act on the verdict; None if nothing ran."""
        from prompt_toolkit.formatted_text import FormattedText

        from attyguard.engine.verdict import Action
        from attyguard.shell.confirm import refused_text, warn_text

        decided, self._decided = self._decided, None
        self._collecting = False
        if decided is not None and decided.sent:
            # Classified and allowed as Enter accepted it; bash is running it.
            return self._run(decided.text, self._full(decided.text), self._take_typeahead(),
                             sent=True)
        if decided is not None and decided.text != text:
            decided = None  # (not the line the prompt returned: decide again)
        if self._refuse_hooks(text):  # (as typed, before any rewrite of ours)
            return None
        if decided is None and self._resolve_needed(text):
            resolved = self._resolve(text)
            if resolved is None:
                return None
            if not self._fc_edit and self._refuse_hooks(resolved):  # (from the history)
                return None
            text = resolved
        full = self._full(text)
        if self._wants_more(full):
            # Shown with PS2; nothing of it reaches bash yet. What is there so
            # far is judged too: a block need not wait for the rest.
            early_verdict = _decide(self.get_wired(), full, self._state_for(full))
            if early_verdict.action is Action.BLOCK:
                self.show(refused_text(early_verdict, self.config.ui.refused_style))
                self.warnings.add(f"refused: {early_verdict.reason}: {one_line(full, 120)}")
                self.pending = ""
                return None
            self.pending = full
            self._collecting = True
            return None
        if not self.pending:
            text = full = self._nested(full)
        wired = self.get_wired()
        if not self._notes_shown:
            self._notes_shown = True
            for note in wired.warnings:
                self.show(FormattedText([("", f"attyguard: {note}\n")]))
        state = decided.state if decided is not None else self._state_for(full)
        if decided is not None:
            verdict, send = decided.verdict, decided.send or self._to_send(text, full)
        else:
            verdict, send = self._files_judged(wired, text, full, _decide(wired, full, state))
        if verdict.action is Action.BLOCK and _LEAVING.fullmatch(full):
            # Leaving always works: a shell the daemon locked must not be a trap.
            return self._run(text, full, self._take_typeahead())
        if verdict.action is Action.BLOCK:
            self.show(refused_text(verdict, self.config.ui.refused_style))
            if _locked_by_daemon(verdict) and not self._lock_hint_shown:
                self._lock_hint_shown = True  # (once: every later line says REFUSED too)
                self.show(FormattedText([("", _LOCKED_HINT.format(pid=os.getpid()))]))
            self.warnings.add(f"refused: {verdict.reason}: {one_line(full, 120)}")
            if self.pending:
                self._cancel_pending()
            return None
        # Keys typed after Enter are for what comes next, never an answer to
        # the question below: take them out of prompt_toolkit's hands first.
        early = self._take_typeahead()
        if verdict.action is Action.WARN:
            self.show(warn_text(verdict, self.config.ui.warn_style))
            answer = self.ask_warn()
            self.warnings.add(
                f"{'ran' if answer != 'cancel' else 'cancelled'}: {verdict.reason}: "
                f"{one_line(full, 120)}")
            if answer == "cancel":
                self.default = text  # nothing typed is lost
                self.keys = early + self.keys
                return None
            if answer == "trust":
                wired.guard.remember(full, verdict, state)
                self.files.remember(wired.guard)
        return self._run(send, full, early)

    # --- running --------------------------------------------------------------------

    def _osc(self, body: str, *, hold: bool = False) -> None:
        """Write a shell-integration mark; `hold`: with the next one, in one write.

        A command's end (D), its directory (7) and the next prompt (A) go out
        together: one write instead of three, each of which wakes the
        terminal (or tmux) to parse a few bytes.
        """
        if not self.config.ui.shell_integration_marks:
            return
        self._held_marks += f"\x1b]{body}\x07"
        if not hold:
            self._flush_marks()

    def _flush_marks(self) -> None:
        if self._held_marks:
            data, self._held_marks = self._held_marks.encode(), ""
            os.write(self.out_fd, data)

    def _take_typeahead(self) -> str:
        take = getattr(self.ui, "take_typeahead", None)
        return take() if take is not None else ""

    def _run(self, text: str, full: str, early: str = "", sent: bool = False) -> RunResult:
        self._osc("133;C")
        keys = early.encode("utf-8", "surrogateescape")
        # The next prompt starts at the command's D mark, while bash finishes
        # (drains typeahead, draws its prompt: ~0.3 ms) on the other core;
        # `loop` passes `_settled_keys` to the prompt, which holds keys till
        # then. Not with keys of an earlier typeahead still queued: the
        # drained ones must come after those (the old way keeps that order).
        later = not self.keys
        with raw_terminal(self.in_fd):
            if sent:  # (by `accepting`: bash has the line already)
                result = self.child.passthrough(self.in_fd, self.out_fd, early=keys,
                                                settle_later=later)
            else:
                result = self.child.run(text, self.in_fd, self.out_fd, early=keys,
                                        settle_later=later)
        self._tell_notices()
        if result.kind == "more":
            self.pending = full
            self._pending_in_bash = True
            self._collect_typeahead()
            return result
        self.pending = ""
        self._pending_in_bash = False
        if self._fc_edit:
            self._take_fc_edit()
        if result.kind == "done":
            self._after_command(result.status)
        return result

    def _tell_notices(self) -> None:
        """Lines bash was given by something other than us were emptied: say so, once each."""
        from prompt_toolkit.formatted_text import FormattedText

        notices = getattr(self.child, "notices", None)
        while notices:
            self.show(FormattedText([("", "attyguard: input that did not come from attyguard "
                                          f"reached bash and was not run: "
                                          f"{one_line(notices.pop(0), 120)}\n")]))

    def _after_command(self, status: int) -> None:
        # (held: they go out with the next prompt's 133;A, in one write)
        self._held_marks += _finished_marks_text(self.config, status, self.child.state.cwd)
        self._held_marks += _keep_partial_line(self.child.out_tail, self.out_fd)
        self._collect_typeahead()

    def _settled_keys(self) -> str | None:
        """None while bash is still finishing the last command (`BashChild.settling`);
        then the keys it drained for the prompt now shown (the rest wait in `keys`)."""
        if self.child.settling:
            return None
        self._collect_typeahead()
        keys, self.keys = split_typeahead(self.keys)
        return keys

    def _collect_typeahead(self) -> None:
        """Keys typed while bash had the terminal: replayed into the next prompts."""
        typed = self.child.state.typeahead.decode("utf-8", "replace")
        self.child.state.typeahead = b""
        self.keys += typed

    def _cancel_pending(self) -> None:
        self.pending = ""
        if self._pending_in_bash:
            self._pending_in_bash = False
            self.child.cancel_continuation()

    def _interrupted(self) -> int | None:
        """Ctrl-C abandoned a typed line: bash's $? becomes 130 (None: bash is still there)."""
        with raw_terminal(self.in_fd):
            result = self.child.run("__ag_interrupted", self.in_fd, self.out_fd)
        self._collect_typeahead()
        return result.status if result.kind == "exited" else None

    def _exit(self) -> int | None:
        with raw_terminal(self.in_fd):
            result = self.child.exit(self.in_fd, self.out_fd)
        if result.kind == "exited":
            return result.status
        return None  # e.g. "There are stopped jobs.": bash stays

    # --- the loop -------------------------------------------------------------------

    def loop(self) -> int:
        from attyguard.shell.prompt import ChildGone, Eof, Interrupted

        # A command's history entry is stored as it starts to run (it may run long).
        self.child.on_run = self._finish_history

        while True:
            self._decided = None  # (set by `accepting` during the read below)
            default = self.default
            keys, self.keys = split_typeahead(self.keys)
            self.default = ""
            state = self.child.state
            message = state.ps2 if self.pending else state.ps1
            self.ui.set_editing_mode(state.editing_mode)  # type: ignore[attr-defined]
            instant, self.instant = self.instant, None
            if instant is None and not self.pending:
                self._osc("133;A", hold=True)
            self._flush_marks()  # (before the prompt draws anything)
            self._show_notes()
            if instant is not None:
                # Drawn (after its 133;A) while the front end loaded.
                instant.hand_over(terminal_size(self.in_fd))
            first, self.after_first_render = self.after_first_render, None
            got = self.ui.read(  # type: ignore[attr-defined]
                message, default=default, keys=keys, after_render=first,
                continuation=state.ps2, on_accept=self.accepting,
                idle_fd=self.child.master, on_idle=self.child.read_idle,
                gone_fd=self.child.pidfd,
                settle=self._settled_keys if self.child.settling else None)
            if isinstance(got, ChildGone):
                return self._ended(self.child.close())
            if not isinstance(got, str):
                self._finish_history()
            if isinstance(got, Interrupted):
                if self.pending:
                    self._cancel_pending()  # (bash's own ^C at PS2: $? is 130)
                elif self._interrupted() is not None:
                    return self._ended(self.child.exit_status or 0)
                continue
            if isinstance(got, Eof):
                if self.pending:
                    self._cancel_pending()
                    continue
                status = self._exit()
                if status is not None:
                    return status
                continue
            result = self.submit(got)
            more = self._collecting if result is None else result.kind == "more"
            if not more:
                self._finish_history()
            if result is not None and result.kind == "exited":
                return self._ended(result.status)

    def _finish_history(self) -> None:
        finish = getattr(self.history, "finish_entry", None)
        if finish is not None:
            finish()

    def _show_notes(self) -> None:
        if not self.notes:
            return
        from prompt_toolkit.formatted_text import FormattedText

        from attyguard.textsafe import safe_text

        while self.notes:
            note = safe_text(self.notes.pop(0), 400)
            self.show(FormattedText([("", f"attyguard: {note}\n")]))

    def _ended(self, status: int) -> int:
        """bash has gone: say so if it did not simply exit, and pass on its status."""
        why = _end_reason(self.child.exit_signal, self.child.gone_while_held)
        if why:
            os.write(self.out_fd, f"\r\nattyguard: {why}\r\n".encode())
        return status


def _end_reason(signum: int | None, held: bool) -> str:
    """Why the shell ends, for the user; "" for a plain exit."""
    import signal as _signal

    parts = []
    if signum is not None:
        try:
            name = _signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        parts.append(f"bash was killed by {name}")
    if held:
        parts.append(("bash has exited" if not parts else "")
                     + " while a background job still holds the terminal; leaving")
    return "".join(parts).strip()


# `exit`/`logout` with at most a status: runs whatever the verdict (see submit).
_LEAVING = re.compile(r"\s*(?:exit|logout)(?:\s+[0-9]{1,3})?\s*;?\s*")

_LOCKED_HINT = ("attyguard: the daemon has locked this shell; lines are refused until it "
                "exits (`exit` works). Root lifts it: attyguard daemon clear --pid {pid}\n")


def _locked_by_daemon(verdict: Verdict) -> bool:
    from attyguard.engine.verdict import Source
    from attyguard.guard import PID_CRITICAL_RULE

    return verdict.source is Source.DAEMON and any(
        hit.rule_id == PID_CRITICAL_RULE or hit.rule_id.startswith("daemon.")
        for hit in verdict.rules)


def _decide(wired: Wired, full: str, state: ShellState | None) -> Verdict:
    """The Guard's verdict on `full`, also as bash joins its continued lines.

    bash drops every backslash-newline before it splits words, so
    `/dev/tc\\` + `p/…` is `/dev/tcp/…`. Judged both ways (the join may be
    wrong inside single quotes, where bash keeps the pair): the stronger wins.
    `fc` inside a larger line (its target unknown until it runs) is asked about.
    """
    from attyguard.engine.verdict import Action
    from attyguard.shell.history_expand import fc_in_compound

    verdict = wired.guard.decide(full, state=state)
    if "\\\n" in full:
        joined = wired.guard.decide(full.replace("\\\n", ""), state=state)
        verdict = joined if joined.action.rank > verdict.action.rank else verdict
    if "fc" in full and verdict.action is Action.ALLOW and fc_in_compound(full):
        verdict = _fc_unresolved(verdict)
    return verdict


def _touches_hooks(verdict: Verdict) -> Verdict:
    """A refusal of the shell's own: attyguard's hooks and their secrets are not the
    user's to change (a changed hook or line token would let lines run unjudged)."""
    from dataclasses import replace

    from attyguard.engine.verdict import Action, RuleHit, Severity

    hit = RuleHit(
        "shell.hooks", "Changes attyguard's own hooks in the shell",
        Severity.HIGH, Action.BLOCK, 0.9,
        explanation="Names starting with __ag_ are attyguard's hooks, marks and line "
                    "token inside bash; changing them would let lines run unjudged.",
        remediation="Leave __ag_* alone; `attyguard --norc` starts a shell without your rc.")
    return replace(verdict, action=Action.BLOCK, rules=(hit, *verdict.rules),
                   probability=max(verdict.probability, 0.9))


def _fc_unresolved(verdict: Verdict) -> Verdict:
    """A warning of the shell's own: `fc` inside a larger line re-runs history unjudged."""
    from dataclasses import replace

    from attyguard.engine.verdict import Action, RuleHit, Severity

    hit = RuleHit(
        "shell.fc-unresolved", "fc re-runs a history line that cannot be judged here",
        Severity.MEDIUM, Action.WARN, 0.3,
        explanation="`fc` inside a larger command line runs a line from the history "
                    "that attyguard cannot see before the line runs.",
        remediation="Run `fc` (or `!!`, `!n`) on a line of its own: attyguard then "
                    "judges the command it re-runs.")
    return replace(verdict, action=Action.WARN, rules=(*verdict.rules, hit),
                   probability=max(verdict.probability, 0.3))


def _hostname() -> str:
    """This host's name for OSC 7, asked once (a uname(2) per command otherwise)."""
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = os.uname().nodename
    return _HOSTNAME


_HOSTNAME: str | None = None


def _keep_partial_line(tail: bytes, out_fd: int) -> str:
    """The partial-line mark if the last output did not end a line (see `partial_line_mark`)."""
    if ends_at_line_start(tail):
        return ""
    size = terminal_size(out_fd)
    return partial_line_mark(size[1]) if size is not None else "\r\n"


def _osc_bytes(config: Config, body: str) -> str:
    return f"\x1b]{body}\x07" if config.ui.shell_integration_marks else ""


def _finished_marks_text(config: Config, status: int, cwd: str) -> str:
    """OSC 133;D (the command finished) and OSC 7 (cwd) for the outer terminal."""
    if not config.ui.shell_integration_marks:
        return ""
    marks = _osc_bytes(config, f"133;D;{status}")
    if cwd:
        from urllib.parse import quote

        marks += _osc_bytes(config, f"7;file://{_hostname()}{quote(cwd)}")
    return marks


def _finished_marks(config: Config, out_fd: int, status: int, cwd: str) -> None:
    marks = _finished_marks_text(config, status, cwd)
    if marks:
        os.write(out_fd, marks.encode())
