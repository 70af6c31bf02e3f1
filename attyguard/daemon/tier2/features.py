"""Pure feature extraction for Tier-2: a command line -> a fixed vector in [0, 1].

Shared by the `heuristic` plugin (hand-set weights) and the `onnx` plugin (a
model trained on the same vector by tools/train_tier2.py), so both see a line
the same way. Everything here is pure: no I/O, no globals that change, no
exceptions for any `str` (NULs and lone surrogates included), and bounded
time: only the first `MAX_CHARS` characters are examined and every pattern is
linear or bounded by one pipeline segment.

This is deliberately *not* a bash parser (the Tier-1 engine owns parsing):
Tier-2 looks at the shape of a line — encoded blobs, a download feeding an
interpreter, a shell handed to another program, /dev/tcp — where a rough,
robust split into pipeline segments is enough and cannot fail on malformed
input.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_REASONS",
    "MAX_CHARS",
    "Segment",
    "extract",
    "segments",
    "shannon_entropy",
]

# Past this many characters a line is already "long" (its own feature); the
# rest is not examined so that time stays bounded on hostile input.
MAX_CHARS = 16384

# Order is the model's input order: append new features at the end and retrain.
FEATURE_NAMES: tuple[str, ...] = (
    "length",
    "max_token_entropy",
    "long_token",
    "base64_blob",
    "hex_blob",
    "decode_op",
    "net_tool",
    "dev_tcp",
    "pipe_to_interp",
    "inline_code",
    "net_exec_combo",
    "rare_binary",
    "hidden_path",
    "tmp_exec",
    "chmod_exec",
    "sensitive_file",
    "persistence",
    "anti_forensics",
    "shell_spawn",
    "socket_redirect",
    "eval_subst",
    "obfuscation",
    "ip_literal",
    "pipeline_depth",
    "privilege",
    "setuid_preload",
    "destructive",
    "background_detach",
    "shell_path_arg",
)

# One short phrase per feature: the `reasons` a plugin reports.
FEATURE_REASONS: dict[str, str] = {
    "length": "very long command line",
    "max_token_entropy": "high-entropy (random-looking) argument",
    "long_token": "very long single argument",
    "base64_blob": "base64-encoded blob",
    "hex_blob": "hex-encoded blob",
    "decode_op": "decodes encoded data",
    "net_tool": "network transfer tool",
    "dev_tcp": "bash /dev/tcp or /dev/udp socket",
    "pipe_to_interp": "pipes data into an interpreter",
    "inline_code": "interpreter runs inline code",
    "net_exec_combo": "downloads and executes",
    "rare_binary": "rarely legitimate binary (netcat, socat, mkfifo…)",
    "hidden_path": "hidden path in a system or temporary directory",
    "tmp_exec": "runs a program from a world-writable directory",
    "chmod_exec": "makes a file executable",
    "sensitive_file": "touches credentials or account files",
    "persistence": "installs persistence (cron, systemd, shell rc, preload)",
    "anti_forensics": "erases history or logs",
    "shell_spawn": "spawns a shell from another program",
    "socket_redirect": "connects a shell to a network socket",
    "eval_subst": "evaluates generated or downloaded code",
    "obfuscation": "obfuscated command words",
    "ip_literal": "literal IP address",
    "pipeline_depth": "many chained commands",
    "privilege": "runs with elevated privilege",
    "setuid_preload": "setuid bit, capabilities or LD_PRELOAD",
    "destructive": "destroys disks or the file system",
    "background_detach": "detaches into the background",
    "shell_path_arg": "hands a shell (/bin/sh…) to another program",
}

_I = re.IGNORECASE


def _words(text: str) -> frozenset[str]:
    """A set of names written as one space-separated string (easier to read and edit)."""
    return frozenset(text.split())


# Separators between simple commands. `$(`, backticks and parentheses are
# treated as separators too: their contents are commands of their own.
_SEP_RE = re.compile(r"(\|\||\|&|\||&&|;|&|\n|\$\(|`|\(|\)|\{|\})")
# Words that only wrap the real command: `sudo env nohup X` runs X.
_WRAPPERS = _words(
    "sudo doas env nohup exec time command builtin nice setsid stdbuf timeout xargs strace "
    "ltrace watch busybox torify proxychains proxychains4 unbuffer chroot ionice taskset then "
    "do else !"
)
_QUOTED_WORD_RE = re.compile(r"[A-Za-z][\\'\"]+[A-Za-z]")
_PLAIN_WORD_RE = re.compile(r"^[\w./-]+$")
# Programs that run another program given as an argument: `nice /bin/sh` under
# sudo is a root shell (GTFOBins' commonest shape).
_SPAWNERS = _words(
    "env nice ionice flock stdbuf timeout setarch busybox xargs script strace ltrace taskset "
    "chroot unshare nohup setsid time watch run-parts capsh start-stop-daemon rlwrap cpulimit "
    "nsenter logsave dmsetup multitime chrt torify unbuffer choom sg newgrp perf valgrind"
)
_SHELL_WORD_RE = re.compile(r"^/?(?:[\w.-]+/)*(?:ba|da|z|k|a|tc|fi|mk)?sh$")
# A shell's absolute path as an *argument* (after `=`, a quote, a space…), not
# as the command itself: `sudo tool --hook=/bin/sh` is how a program that may run
# as root is made to start a shell (GTFOBins' commonest shape).
_SHELL_PATH_ARG_RE = re.compile(r"[=:'\"\s{(,]/(?:usr/)?(?:local/)?bin/(?:ba|da|z|k)?sh\b")
_REDIR_RE = re.compile(r"^\d*(?:[<>]|&>)")
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_INTERP_RE = re.compile(
    r"^(?:ba|da|z|k|a|c|tc|fi|mk)?sh$|^(?:python|perl|ruby|php|node|nodejs|lua|tclsh|pwsh|"
    r"powershell|jjs|irb|rlwrap|osascript)[0-9.]*$"
)
_NET_TOOLS = _words(
    "curl wget nc ncat netcat socat telnet tftp ftp fetch aria2c lwp-download lwp-request "
    "wget2 httpie http openssl sftp rsync scp smbclient dig nslookup ssh"
)
# Net tools that move payloads (ssh/scp/rsync/dig are everyday and only count as
# "net" for the combination with execution below when they fetch over HTTP).
_FETCHERS = _words(
    "curl wget wget2 fetch aria2c lwp-download lwp-request tftp ftp nc ncat netcat socat "
    "telnet openssl"
)
_RARE = _words(
    "nc ncat netcat socat telnet mkfifo mknod msfvenom msfconsole nsenter insmod rmmod chattr "
    "setcap xterm shred srm wipe mimipenguin linpeas.sh pspy chisel ngrok gcore unshadow john "
    "hashcat hydra tcpdump tshark ettercap ptrace masscan"
)
_INLINE_RE = re.compile(
    r"(?:^|[\s/])(?:(?:ba|da|z|k)?sh|python[0-9.]*|perl|ruby|php|node|nodejs|lua|pwsh|irb)"
    r"\s+(?:-[a-zA-Z]*\s+)*-[a-zA-Z]*[cer]\b"
)
_DEV_TCP_RE = re.compile(r"/dev/(?:tcp|udp)/|/inet/(?:tcp|udp)/", _I)
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")
_HEX_RE = re.compile(
    r"(?:\\x[0-9a-fA-F]{2}){6,}|(?:0x[0-9a-fA-F]{2},?\s*){8,}|\b[0-9a-fA-F]{80,}\b"
)
_DECODE_RE = re.compile(
    r"base64\s+(?:-\w+\s+)*(?:-d|--decode|-D)\b|b64decode|xxd\s+(?:-\w+\s+)*-r|"
    r"openssl\s+(?:enc|base64)\b[^|;&\n]{0,200}\s-(?:d|a)\b|fromCharCode|uudecode|\batob\s*\(|"
    r"unhexlify|\.decode\(\s*['\"](?:base64|hex)|printf\s+['\"]?(?:\\x|\\[0-7]{3}|%b)|"
    r"echo\s+-[a-z]*e[a-z]*\s+['\"]?\\(?:x|[0-7]{3})|\|\s*rev\s*\||FromBase64String"
)
_HIDDEN_RE = re.compile(
    r"(?:^|[\s'\"=:>])(?:/tmp|/dev/shm|/var/tmp|/var/run|/run|/usr|/etc|/lib|/var|/opt|/bin)"
    r"(?:/[^\s/'\";|&]+)*/\.(?!\.?/)[^\s/'\";|&]+|/\.\.\.|/\.\s"
)
_TMP_EXEC_RE = re.compile(r"^(?:/tmp|/dev/shm|/var/tmp|/run/user/\d+|/var/crash)/")
_CHMOD_RE = re.compile(r"\bchmod\s+(?:-\w+\s+)*(?:[ugoa]*\+[rwXst]*x|0?[0-7]?[157][0-7]{2})\b")
_SENSITIVE_STRONG_RE = re.compile(
    r"/etc/(?:g?shadow|sudoers|security/opasswd|master\.passwd)|\bauthorized_keys\b|"
    r"\.ssh/id_(?:rsa|dsa|ecdsa|ed25519)\b|\.bash_history|/proc/(?:\d+|self)/(?:mem|maps|environ)|"
    r"\.aws/credentials|\.docker/config\.json|\.kube/config|\.gnupg/|\.netrc\b|\.pgpass\b|"
    r"/var/lib/sss|krb5cc|\.git-credentials|keyring|/etc/ssl/private|gnome-keyring|"
    r"\.mozilla/firefox/[^\s]{0,128}(?:logins|key[34])|\bLOGNAME\b.{0,200}passwd"
)
# Reading /etc/passwd is everyday; writing it, or a uid-0 entry, is not.
_PASSWD_WRITE_RE = re.compile(
    r"(?:>>?\s*|tee\s+(?:-a\s+)?)/etc/(?:passwd|group)\b|:0:0:|useradd\s[^|;&\n]{0,200}-o\s+-u\s*0"
)
_PERSIST_RE = re.compile(
    r"\bcrontab\s+(?!-l\b)(?!-e\b)\S|\|\s*crontab\b|/etc/cron|/var/spool/cron|"
    r"/etc/rc\.local|ld\.so\.preload|/etc/init\.d/|\.config/autostart|"
    r"(?:>>?\s*|tee\s+(?:-a\s+)?|cp\s+\S{1,128}\s+|mv\s+\S{1,128}\s+)(?:/etc|/lib|/usr/lib)/systemd/system/|"
    r"\.config/systemd/user/|/etc/profile(?:\.d)?\b|/etc/update-motd\.d|/etc/xdg/autostart|"
    r"\bat\s+(?:now|midnight|-f)\b|>>\s*\S{0,128}authorized_keys|/etc/environment|/etc/bash\.bashrc|"
    r"/etc/rc\.d/|/rc\.common\b|systemd-run\s[^|;&\n]{0,200}--on-(?:calendar|boot|active)|"
    r"/lib/security/|pam_exec|/etc/pam\.d/|\.ssh/rc\b|trap\s+['\"][^'\"]{0,200}['\"]\s+(?:DEBUG|EXIT)"
)
# Appending to a shell rc file is also how aliases are added: half the evidence.
_RC_APPEND_RE = re.compile(
    r"(?:>>?\s*|tee\s+(?:-a\s+)?)\S{0,128}\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|"
    r"bash_logout)\b|systemctl\s+(?:--\w+\s+)*link\b"
)
_ANTIFOR_RE = re.compile(
    r"history\s+-[cw]\b|unset\s+HIST|HISTFILE=|HISTSIZE=0|HISTFILESIZE=0|set\s+\+o\s+history|"
    r"\bshred\b|\bsrm\b|\bwipe\b|journalctl\s+[^|;&\n]{0,200}--(?:vacuum|rotate)|"
    r"(?:>\s*|rm\s+(?:-\w+\s+)*|cat\s+/dev/null\s*>\s*)/var/log/|truncate\s[^|;&\n]{0,200}?/var/log/|"
    r"(?:rm|shred|>|ln\s+-sf\s+/dev/null)\s+[^|;&\n]{0,200}\.bash_history|\b(?:utmpdump|wtmp)\b|"
    r"touch\s+(?:-\w+\s+)*-[a-z]*[rtd]\b|auditctl\s+-[De]|"
    r"systemctl\s+(?:stop|disable|mask)\s+(?:auditd|rsyslog|syslog|systemd-journald)|"
    r"setenforce\s+0|ufw\s+disable|iptables\s+-F|chattr\s+[-+]i|unlink\s+/var/log/|"
    r">\s*\$\{?HISTFILE|Storage=none|/etc/(?:security/)?(?:libaudit\.conf|audit)|/var/audit\b"
)
_SPAWN_RE = re.compile(
    r"-exec\s+/?(?:\S{0,64}/)?(?:ba|da|z|k)?sh\s+(?:-p\s+)?\\?;|\bos\.(?:system|exec\w*|popen|spawn\w*)\s*\(|"
    r"pty\.spawn|subprocess\.(?:call|run|Popen|check_output)|\bsystem\s*\(|\bexec\s*\(|"
    r"['\"]?!\s*/?(?:\S{0,64}/)?(?:ba|da|z|k)?sh\b|--to-command|checkpoint-action=exec|"
    r"/bin/(?:ba|da|z|k)?sh\s+-p\b|\b(?:ba|da|z|k)?sh\s+-i\b|io\.popen|os\.execute|Kernel\.exec|"
    r"child_process|\bspawn\s*\(|\bexec\s+/bin/|\bexec=/?\S{0,128}sh\b|\bpopen\s*\(|"
    r"\$\s*sh\b|:\s*!\s*\S{0,128}sh\b|\bsystem\s+['\"]|\bshell\s*=\s*True|proc_open|passthru|"
    r"\bexecve?\s*\(|Runtime\.getRuntime|`/bin/(?:ba)?sh`|-TT\s*['\"]?/?\S{0,128}sh\b|\bexec\s+['\"]/?\S{0,128}sh['\"]|"
    r"LESSOPEN|PAGER=\S{0,128}sh|-o\s*ProxyCommand=?['\"]?;|\bgdb\s[^|;&\n]{0,200}-ex\s+['\"]?!|"
    r"\bscript\s+-q\s+/dev/null|\bspawn\s+/?\S{0,128}sh\b|-e\s+['\"]?/?\S{0,128}sh\s+-c"
)
_SOCKET_RE = re.compile(
    r"/dev/(?:tcp|udp)/[^\s]{1,128}\s*(?:[0-9]?[<>]&\s*[0-9]|<|>)|[0-9]?>&\s*/dev/(?:tcp|udp)|"
    r"\bexec\s+\d+<>|\b(?:nc|ncat|netcat)\b[^|;&\n]{0,200}\s-[a-z]*[ec]\s|"
    r"\bsocat\b[^|;&\n]{0,200}\b(?:exec|system)[:']|mkfifo[^\n]{0,200}\b(?:nc|ncat|netcat|telnet|openssl)\b|"
    r"openssl\s+s_client[^\n]{0,200}\|\s*/?(?:\S{0,64}/)?(?:ba)?sh|"
    r"\btelnet\b[^\n]{0,200}\|\s*/?(?:\S{0,64}/)?(?:ba)?sh\b[^\n]{0,200}\|\s*\btelnet\b|"
    r"socket\.socket|TCPSocket|fsockopen|IO::Socket|new\s+net\.Socket|"
    r"[0-9]>&[0-9]\s*\|\s*(?:nc|ncat|netcat)\b|\|\s*(?:nc|ncat|netcat)\s+\S{1,128}\s+\d+\s*>"
)
_EVAL_RE = re.compile(
    r"\beval\b|\b(?:source|\.)\s+<\(|(?:ba)?sh\s+<\(|\$\(\s*(?:curl|wget|echo\s+[^)]{0,200}\|\s*base64)|"
    r"\b(?:ba)?sh\s+-c\s+['\"]?\$\(|\bexec\s*\(\s*(?:base64|zlib|marshal)|\bInvoke-Expression|\biex\b"
)
_OBF_RE = re.compile(
    r"\$\{?IFS\}?|\$'(?:\\x[0-9a-fA-F]{2}|\\[0-7]{3}){2,}|\|\s*rev\s*\||"
    r"\btr\s+['\"]?[A-Za-z]-[A-Za-z]{2}|\$\{\w+:\d+:\d+\}|\$\{!\w+\}|\$\{\w+//|"
    r"\$\{\w+\^\^\}|\$\{\w+,,\}|\\[a-z]\\[a-z]|\b[a-z]+(?:''|\"\")[a-z]+\b",
)
_IP_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\[[0-9a-fA-F:]{3,}\]")
_SETUID_RE = re.compile(
    r"\bchmod\s+(?:-\w+\s+)*(?:[ugoa]*\+[rwx]*s|[2467][0-7]{3})\b|\bsetcap\b|LD_PRELOAD=|"
    r"LD_LIBRARY_PATH=|cap_setuid|cap_dac|/etc/ld\.so\.preload|\bsudo\s+-u\s*#-?1|"
    r"NOPASSWD|\bchown\s+root[^|;&\n]{0,200}&&\s*chmod\s+[ugo]*\+s",
)
_DESTRUCT_RE = re.compile(
    r"\brm\s+(?:-[a-zA-Z]+\s+)*-[a-zA-Z]*[rR][a-zA-Z]*\s+(?:-[a-zA-Z-]+\s+)*"
    r"(?:/|/\*|~/?|\$HOME/?|/(?:etc|usr|var|bin|boot|home|lib)/?)(?:\s|$|;)|"
    r"\bmkfs(?:\.\w+)?\b|\bdd\s+if=/dev/(?:zero|urandom|random)\b[^|;&\n]{0,200}\bof=/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk)|"
    r":\(\)\s*\{|>\s*/dev/(?:sd|nvme|hd|vd)[a-z]|\bwipefs\b|"
    r"\bchmod\s+-R\s+(?:0?777|000)\s+/(?:\s|$)|--no-preserve-root|\bfdisk\s+/dev/|"
    r"\bcrontab\s+-r\b|\bkill\s+-9\s+-1\b",
)
_DETACH_RE = re.compile(
    r"\bnohup\b|\bsetsid\b|\bdisown\b|&\s*$|screen\s+-d?m|tmux\s+new(?:-session)?\s+-d|"
    r">\s*/dev/null\s+2>&1\s*&|\bdaemonize\b",
)
_PRIV_WORDS = frozenset({"sudo", "su", "doas", "pkexec", "runuser", "sudoedit"})


@dataclass(frozen=True, slots=True)
class Segment:
    """One simple command: the separator before it and its whitespace words."""

    sep: str
    words: tuple[str, ...]

    @property
    def command(self) -> str:
        """The command word, unwrapped from sudo/env/nohup… and de-quoted, basename only."""
        return _command_word(self.words)[1]

    @property
    def raw_command(self) -> str:
        """The command word as typed (quotes and backslashes kept)."""
        return _command_word(self.words)[0]


def _command_word(words: tuple[str, ...]) -> tuple[str, str]:
    i = 0
    n = len(words)
    while i < n:
        w = words[i]
        clean = _dequote(w)
        base = clean.rsplit("/", 1)[-1]
        if _ASSIGN_RE.match(w) or base in _WRAPPERS:
            i += 1
            # Skip a wrapper's options (`sudo -u root`, `timeout 5`): a word
            # that starts with '-' or is a bare number.
            while i < n and (words[i].startswith("-") or words[i].isdigit()):
                i += 1
            continue
        return w, base
    return "", ""


def _dequote(word: str) -> str:
    return word.replace("'", "").replace('"', "").replace("\\", "")


def segments(line: str) -> list[Segment]:
    """Split `line` into rough simple commands (never fails, bounded by MAX_CHARS)."""
    text = line[:MAX_CHARS]
    parts = _SEP_RE.split(text)
    out: list[Segment] = []
    sep = ""
    for i, part in enumerate(parts):
        if i % 2:
            sep = part
            continue
        words = tuple(part.split())
        if words:
            out.append(Segment(sep, words))
    return out


def shannon_entropy(text: str) -> float:
    """Bits per character of `text` (0.0 for the empty string)."""
    n = len(text)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _tokens(text: str) -> Iterator[str]:
    # Arguments as an attacker would pack a payload: split on whitespace and
    # quotes, so `echo 'QUJD…'` yields the blob itself.
    return (t for t in re.split(r"[\s'\"`=]+", text) if t)


def _spawner_shell(segs: list[Segment]) -> bool:
    for s in segs:
        seen_spawner = False
        for w in s.words:
            base = _dequote(w).rsplit("/", 1)[-1]
            if seen_spawner and _SHELL_WORD_RE.match(_dequote(w)):
                return True
            if base in _SPAWNERS:
                seen_spawner = True
    return False


def _is_b64_blob(tok: str) -> bool:
    if len(tok) < 32:
        return False
    has_upper = any(c.isupper() for c in tok)
    has_lower = any(c.islower() for c in tok)
    has_digit = any(c.isdigit() for c in tok)
    # Paths and URLs are long and mixed-case too, but full of separators.
    seps = tok.count("/") + tok.count("-") + tok.count("_") + tok.count(".")
    return has_upper and has_lower and has_digit and seps * 8 <= len(tok)


def _flag(pattern: re.Pattern[str], text: str) -> float:
    return 1.0 if pattern.search(text) else 0.0


def extract(line: str) -> tuple[float, ...]:
    """The feature vector of `line`, in FEATURE_NAMES order, every value in [0, 1]."""
    text = line[:MAX_CHARS]
    segs = segments(text)
    commands = [s.command for s in segs]
    cmdset = set(commands)

    longest = 0
    max_entropy = 0.0
    b64 = 0.0
    for tok in _B64_RE.findall(text):
        if _is_b64_blob(tok):
            b64 = 1.0
            break
    for tok in _tokens(text):
        ln = len(tok)
        longest = max(longest, ln)
        if ln >= 16:
            max_entropy = max(max_entropy, shannon_entropy(tok[:4096]))

    net_tool = 1.0 if cmdset & _NET_TOOLS else 0.0
    fetch = bool(cmdset & _FETCHERS) or bool(re.search(r"https?://|ftp://", text))
    pipe_to_interp = 0.0
    for s in segs:
        if s.sep in ("|", "|&") and _INTERP_RE.match(s.command):
            # `| sh`, `| python3 -`, `| bash -s`: reads its program from the pipe.
            rest = s.words[s.words.index(s.raw_command) + 1 :] if s.raw_command in s.words else ()
            if all(w.startswith("-") or _REDIR_RE.match(w) for w in rest):
                pipe_to_interp = 1.0
                break
    inline = _flag(_INLINE_RE, text)
    decode = _flag(_DECODE_RE, text)
    dev_tcp = _flag(_DEV_TCP_RE, text)
    chmod_x = _flag(_CHMOD_RE, text)
    tmp_exec = 1.0 if any(_TMP_EXEC_RE.match(_dequote(s.raw_command)) for s in segs) else 0.0
    eval_subst = _flag(_EVAL_RE, text)
    executes = pipe_to_interp or decode or chmod_x or tmp_exec or eval_subst or inline or dev_tcp
    net_exec = 1.0 if fetch and net_tool and executes else 0.0
    rare = 1.0 if cmdset & _RARE else 0.0

    sensitive = 1.0 if _SENSITIVE_STRONG_RE.search(text) else 0.0
    if not sensitive and _PASSWD_WRITE_RE.search(text):
        sensitive = 1.0

    obf = _flag(_OBF_RE, text)
    if not obf:
        for s in segs:
            raw = s.raw_command
            # Quotes or backslashes *inside* a command word (c\at, w'g'et) only
            # serve to dodge matching.
            if _QUOTED_WORD_RE.search(raw) and _PLAIN_WORD_RE.match(_dequote(raw)):
                obf = 1.0
                break

    seps = len(segs)
    privilege = (
        1.0
        if cmdset & _PRIV_WORDS
        or any(s.words and _dequote(s.words[0]).rsplit("/", 1)[-1] in _PRIV_WORDS for s in segs)
        else 0.0
    )

    vec = (
        min(len(line) / 400.0, 1.0),
        min(max_entropy / 6.0, 1.0),
        min(longest / 200.0, 1.0),
        b64,
        _flag(_HEX_RE, text),
        decode,
        net_tool,
        dev_tcp,
        pipe_to_interp,
        inline,
        net_exec,
        rare,
        _flag(_HIDDEN_RE, text),
        tmp_exec,
        chmod_x,
        sensitive,
        1.0 if _PERSIST_RE.search(text) else 0.5 if _RC_APPEND_RE.search(text) else 0.0,
        _flag(_ANTIFOR_RE, text),
        1.0 if _SPAWN_RE.search(text) or _spawner_shell(segs) else 0.0,
        _flag(_SOCKET_RE, text),
        eval_subst,
        obf,
        _flag(_IP_RE, text),
        min(max(seps - 1, 0) / 8.0, 1.0),
        privilege,
        _flag(_SETUID_RE, text),
        _flag(_DESTRUCT_RE, text),
        _flag(_DETACH_RE, text),
        (1.0 if privilege else 0.5) if _SHELL_PATH_ARG_RE.search(text) else 0.0,
    )
    return vec


def _check_names() -> None:
    # Import-time guard: the reasons table must cover every feature.
    missing = set(FEATURE_NAMES) - set(FEATURE_REASONS)
    if missing:  # pragma: no cover - a programming error caught by any test run
        raise RuntimeError(f"FEATURE_REASONS lacks {sorted(missing)}")


_check_names()
