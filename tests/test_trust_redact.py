"""Previews in the trust store never keep a secret, and keep ordinary words."""

from __future__ import annotations

import pytest

from attyguard.trust import line_key, redact


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        ("curl -H 'Authorization: Bearer tok_abcdefgh1234' https://api.example",
         "tok_abcdefgh1234", "curl -H 'Authorization: ***' https://api.example"),
        ("curl -H \"X-Api-Key: 9f8e7d6c5b\" https://h", "9f8e7d6c5b", "X-Api-Key: ***"),
        ("git clone https://deploy:pa55word@git.example.org/team/repo.git", "pa55word",
         "https://deploy:***@git.example.org/team/repo.git"),
        ("psql postgresql://app:hunter22@db:5432/prod", "hunter22", "postgresql://app:***@db"),
        ("mysqldump -uroot -pTopSecret1 shop > shop.sql", "TopSecret1", "-p*** shop"),
        ("sshpass -p 'long pass phrase' ssh admin@host", "long pass phrase", "sshpass -p ***"),
        ("vault login --password=Zebra99 -method=userpass", "Zebra99", "--password=***"),
        ("tool --api-key k-1234567 run", "k-1234567", "--api-key *** run"),
        ("openssl rsa -passin pass:swordfish -in key.pem", "swordfish", "-passin ***"),
        ("curl -u alice:wonderland https://files", "wonderland", "-u alice:***"),
        ("PGPASSWORD=letmein123 psql -h db", "letmein123", "PGPASSWORD=*** psql"),
        ("export GITLAB_TOKEN=abcdef123456", "abcdef123456", "GITLAB_TOKEN=***"),
        ("AWS_SECRET_ACCESS_KEY=Abcd1234Efgh5678Ijkl9012Mnop3456Qrst7890 aws s3 ls",
         "Abcd1234Efgh5678Ijkl9012Mnop3456Qrst7890", "aws s3 ls"),
        ("aws s3 ls --profile x # AKIAQWERTYUIOPASDFGH", "QWERTYUIOPASDFGH"[4:], "AKIAQWER***"),
        ("echo Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7z | base64", "Zx9yW8vU7tS6rQ5pO4nM3lK2",
         "| base64"),
        ("echo ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 | gh auth login --with-token",
         "A1b2C3d4E5f6", "echo ghp_*** | gh"),
        ("curl 'https://h/api?user=x&access_token=deadbeef42&page=2'", "deadbeef42",
         "access_token=***&page=2"),
        ("http https://h Authorization:'Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz", "https://h"),
        ("jwt decode eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJzdWIiOiIxIn0",
         "jwt decode eyJ***"),
    ],
)
def test_secrets_are_redacted(line: str, secret: str, kept: str) -> None:
    preview = redact(line)
    assert secret not in preview
    assert kept in preview


@pytest.mark.parametrize(
    "line",
    [
        "mkdir -p build/out",
        "ssh -p 2222 deploy@host",
        "docker run -p 8080:80 nginx",
        "git checkout 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "tar -czf backup.tgz --exclude=node_modules .",
        "grep -r password_reset src/",
        "ls -la ~/projects",
    ],
)
def test_ordinary_lines_are_unchanged(line: str) -> None:
    assert redact(line) == line


def test_controls_are_made_visible_and_long_lines_shortened() -> None:
    assert redact("printf '\x1b]0;x\x07'\nrm x") == "printf '\\x1b]0;x\\x07'\\nrm x"
    assert redact("a\udcffb") == "a\\xffb"  # a byte that was not UTF-8
    long = redact("echo " + "y" * 1000)
    assert len(long) == 300 and long.endswith("…")


def test_key_is_sha256_of_the_bytes_bash_receives() -> None:
    import hashlib

    assert line_key("ls -la") == hashlib.sha256(b"ls -la").hexdigest()
    raw = b"echo \xff"
    assert line_key(raw.decode("utf-8", "surrogateescape")) == hashlib.sha256(raw).hexdigest()
    assert len(line_key("\ud800")) == 64  # lone surrogates hash, never raise


@pytest.mark.timeout(60)  # a hang guard: these took minutes with backtracking patterns
@pytest.mark.parametrize(
    "line",
    ["mysql " * 10000, "sshpass " * 10000, "a." * 30000, "x-token-" * 10000, "PASSWORD" * 8000,
     "a://b:" * 10000, "'" * 60000, '"\\' * 30000, "--a-" * 15000, "x" * 500000],
)
def test_pathological_lines_are_handled(line: str) -> None:
    preview = redact(line)
    assert 0 < len(preview) <= 300
