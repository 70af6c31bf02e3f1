"""The per-user trust store: command lines the user answered `[t]rust` to.

Owns the SQLite file under `attyguard.paths.data_dir()` (``trust.sqlite3``),
its safety checks, and the redacted previews kept beside each entry. A line is
keyed by the SHA-256 of its UTF-8 bytes; the line itself is never stored, only
a preview with secrets (tokens, URL passwords, Authorization headers,
password options, AWS-style keys…) redacted, so `trust list` and `trust
export` never print a secret the user once typed.

Many shells of one user share the file: it runs in WAL mode (readers never
wait for a writer), every write is one short `BEGIN IMMEDIATE` transaction
(no read-to-write upgrade, which is the case where SQLite returns BUSY without
calling the busy handler), and a busy timeout absorbs the rest.

A store that is corrupt, owned by someone else, a symlink, or writable by
group/others is never used: `open_trust_store` moves it aside (renamed, never
deleted, so nothing the user stored is lost) and returns one warning line;
the caller then decides as if nothing were trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attyguard.textsafe import visible

__all__ = [
    "STORE_NAME",
    "TrustEntry",
    "TrustError",
    "TrustStore",
    "default_store_path",
    "iso_time",
    "line_key",
    "open_trust_store",
    "redact",
    "visible",
]

STORE_NAME = "trust.sqlite3"
SCHEMA_VERSION = 2  # 2: `verified` (imported entries whose line could not be checked)
PREVIEW_MAX = 300  # characters of redacted preview kept per entry
BUSY_TIMEOUT_S = 5.0  # how long a write waits for another shell's transaction
EXPORT_FORMAT = "attyguard-trust"
QUICK_CHECK_MAX = 2 << 20  # bytes of store file checked page by page at open

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trust (
    sha256    TEXT PRIMARY KEY,
    preview   TEXT NOT NULL,
    rule_ids  TEXT NOT NULL DEFAULT '[]',
    created   REAL NOT NULL,
    last_used REAL NOT NULL,
    use_count INTEGER NOT NULL DEFAULT 0,
    verified  INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID
"""
_COLUMNS = ("sha256", "preview", "rule_ids", "created", "last_used", "use_count", "verified")
_COLUMNS_V1 = _COLUMNS[:-1]
# Schema 1 -> 2: entries made before were trusted by the user here, so verified.
_MIGRATE_1_2 = "ALTER TABLE trust ADD COLUMN verified INTEGER NOT NULL DEFAULT 1"


class TrustError(Exception):
    """A trust-store operation failed; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TrustEntry:
    sha256: str
    preview: str  # the line with secrets redacted, possibly shortened
    rule_ids: tuple[str, ...]  # the rules this trust overrode when it was given
    created: float  # Unix time
    last_used: float
    use_count: int
    # False for an imported entry whose preview could not be checked against its
    # hash (redacted or shortened): the shell asks once before trusting it.
    verified: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "preview": self.preview,
            "rule_ids": list(self.rule_ids),
            "created": iso_time(self.created),
            "last_used": iso_time(self.last_used),
            "use_count": self.use_count,
            "verified": self.verified,
        }


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _parse_time(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} is not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{what} has no time zone: {value[:40]!r}")
        return parsed.timestamp()
    raise ValueError(f"{what} must be an ISO 8601 string or a number")


def line_key(line: str) -> str:
    """SHA-256 (hex) of the line's bytes, as bash would receive them.

    A line decoded from argv with surrogateescape hashes to its original
    bytes; any other lone surrogate (impossible from a terminal) still hashes
    deterministically instead of raising.
    """
    try:
        data = line.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = line.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Redaction. Hand-written rather than a secret scanner (detect-secrets & co.
# scan files and report findings; none rewrites a shell command line in place
# and knows option forms such as `--password X` or `mysql -pX`).

_R = "***"
# A shell word-ish value: quoted strings or a run of non-space, non-operator chars.
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s'";|&<>()])+"""
_SECRET_NAME = (
    r"(?:PASS(?:WORD|WD|PHRASE)?|TOKEN|SECRET|CREDENTIALS?|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY)"
)
# Patterns below are written to run in linear time on any line (possessive
# quantifiers, look-behind anchors at the start of a run): a preview is made
# for whatever the user trusts, heredocs and pasted blobs included.
_REDACT_MAX = 1 << 16  # characters of a line looked at; the preview is far shorter

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private key blocks (pasted inline or in a heredoc).
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
                   re.S),
        "-----BEGIN PRIVATE KEY-----" + _R + "-----END PRIVATE KEY-----",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)(?<![\w.+-])([a-z][a-z0-9+.-]*+://[^\s:/@'\"]*+:)[^\s@/'\"]++@"),
     r"\1" + _R + "@"),
    # HTTP headers carrying credentials: -H 'Authorization: Bearer x', Cookie, X-Api-Key…
    (
        re.compile(
            r"(?i)(?<![\w-])((?:(?:proxy-)?authorization|cookie|set-cookie|api-?key)(?![\w-])|"
            r"x-(?=[\w-]*?(?:token|key|secret|auth))[\w-]*+)(\s*:\s*)[^'\"\n]+"
        ),
        r"\1\2" + _R,
    ),
    # Bare bearer/basic tokens (e.g. in a variable or a config string).
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2" + _R),
    # Long options naming a secret: --password X, --password=X, --api-key X, --token=X …
    (
        re.compile(
            r"(?i)((?<![\w-])--?(?:[a-z0-9]+-)*(?:password|passwd|pass|passin|passout|token|"
            r"secret|api-?key|access-?key|secret-?key|private-?key|auth-?key|credentials?))"
            r"(=|\s+)(" + _VALUE + ")"
        ),
        r"\1\2" + _R,
    ),
    # curl/wget-style -u user:password / --user user:password / --proxy-user.
    (
        re.compile(r"((?:^|\s)(?:-u|--user|--proxy-user|-U)(?:=|\s*)['\"]?[^\s:'\"-][^\s:'\"]*:)"
                   r"[^\s'\"]+"),
        r"\1" + _R,
    ),
    # NAME=value where NAME looks like a secret (PGPASSWORD=, GITHUB_TOKEN=, AWS_SECRET_…)
    (re.compile(r"(?i)(?<!\w)((?=\w*?" + _SECRET_NAME + r")\w++)(=)(" + _VALUE + ")"),
     r"\1\2" + _R),
    # key=value in URLs / query strings
    (
        re.compile(r"(?i)([?&;](?:access_token|token|api_?key|key|password|passwd|secret|sig|"
                   r"signature|auth|client_secret|X-Amz-Signature|X-Amz-Credential)=)[^&\s'\"#]+"),
        r"\1" + _R,
    ),
    # Well-known token shapes anywhere in the line.
    (re.compile(r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{4})[A-Z0-9]{12}\b"), r"\1" + _R),
    (re.compile(r"\b(gh[pousr]_|github_pat_|glpat-|xox[abposr]-|sk_live_|rk_live_|sk-(?:proj-)?)"
                r"[A-Za-z0-9_-]{10,}"), r"\1" + _R),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), "AIza" + _R),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "eyJ" + _R),
    # A 40-char base64 run (the AWS secret access key shape) standing alone.
    # (mixed case and a digit required, so 40-hex git hashes stay readable).
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
                r"(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), _R),
)


# mysql-family -pSECRET (attached form only: `-p 22`, `mkdir -p` stay intact) and
# sshpass -p SECRET: only inside a simple command naming that program. Segments
# are split on | ; & and newlines outside quotes.
_SEGMENT = re.compile(r"""(?:'[^']*+'?|"(?:[^"\\]|\\.)*+"?|[^|;&\n'"])++""")
_MYSQL = re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|"
                    r"mariadb-dump)\b")
_SSHPASS = re.compile(r"\bsshpass\b")
_ATTACHED_P = re.compile(r"(\s-p)(?!\s)" + _VALUE)
_SSHPASS_P = re.compile(r"(\s-p)(\s*)" + _VALUE)


def _redact_segment(match: re.Match[str]) -> str:
    segment = match.group(0)
    if _MYSQL.search(segment):
        segment = _ATTACHED_P.sub(r"\1" + _R, segment)
    if _SSHPASS.search(segment):
        segment = _SSHPASS_P.sub(r"\1\2" + _R, segment)
    return segment


def redact(line: str, limit: int = PREVIEW_MAX) -> str:
    """The line with secrets replaced by ***, control characters made visible, shortened."""
    text = line[:_REDACT_MAX]
    text = _SEGMENT.sub(_redact_segment, text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    # A preview is printed on terminals: never carry escape sequences or NULs there.
    text = "".join(visible(ch) for ch in text[: limit + 1])
    if len(text) > limit or len(line) > _REDACT_MAX:
        text = text[: limit - 1] + "…"
    return text


# ---------------------------------------------------------------------------
# Opening safely.


def default_store_path() -> Path:
    from attyguard.paths import data_dir

    return data_dir() / STORE_NAME


def _ensure_private_dir(directory: Path) -> str | None:
    """Create the data directory 0700; a problem with it as one line, else None."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(directory)
    except OSError as exc:
        return f"cannot create {directory}: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    if st.st_uid != os.geteuid():
        return f"{directory} is owned by uid {st.st_uid}, not by you"
    if st.st_mode & 0o077:
        # Our own directory with loose bits (an old umask, a copy): tighten it.
        try:
            os.chmod(directory, 0o700)
        except OSError as exc:
            return f"cannot make {directory} private: {exc.strerror}"
    return None


def _file_problem(path: Path) -> str | None:
    """Why an existing store file (or its -wal/-shm) must not be used, else None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot inspect: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by you"
    if st.st_mode & 0o022:
        who = "group" if st.st_mode & 0o020 else "others"
        return f"is writable by {who} (mode {st.st_mode & 0o777:o})"
    return None


def _companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _move_aside(path: Path, reason: str) -> str:
    """Rename the store (and its WAL/SHM, which hold part of its data) aside."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    suffix = f".{reason}-{stamp}-{os.getpid()}"
    moved: Path | None = None
    failure: str | None = None
    for part in _companions(path):
        if not os.path.lexists(part):
            continue
        target = part.with_name(path.name + suffix + part.name[len(path.name):])
        try:
            os.rename(part, target)
        except FileNotFoundError:
            # Another shell saw the same bad file at the same moment and moved it.
            continue
        except OSError as exc:
            failure = f"could not move it aside: {exc.strerror}"
            break
        if part == path:
            moved = target
    if failure:
        return failure
    return f"moved aside to {moved}" if moved else "moved aside"


def open_trust_store(
    path: Path | None = None, *, create: bool = True
) -> tuple[TrustStore | None, str | None]:
    """The user's trust store, or None and a one-line warning when it is unusable.

    Never raises. An unusable file is renamed aside (never deleted); the next
    open starts an empty store in its place. With `create=False` a store
    that does not exist yet is (None, None): a read-only question such as
    `attyguard check` leaves no files behind.
    """
    path = default_store_path() if path is None else Path(path)
    if not create and not os.path.lexists(path):
        return None, None
    problem = _ensure_private_dir(path.parent)
    if problem:
        return None, f"attyguard: trust store not used: {problem}"
    for part in _companions(path):
        problem = _file_problem(part)
        if problem:
            where = _move_aside(path, "unsafe")
            return None, (f"attyguard: trust store not used: {part} {problem}; {where}; "
                          "nothing is trusted this session")
    try:
        # Created 0600 by us, before SQLite sees it: SQLite would create it (and
        # then its -wal/-shm, which copy the file's mode) with the umask's mode.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        return None, f"attyguard: trust store not used: cannot create {path}: {exc.strerror}"
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & 0o077:  # readable by others: ours, so just tighten
            os.chmod(path, 0o600)
    try:
        store = TrustStore._connect(path)
    except _Corrupt as exc:
        where = _move_aside(path, "corrupt")
        return None, (f"attyguard: trust store {path} is unreadable ({exc}); {where}; "
                      "nothing is trusted this session")
    except _Newer as exc:
        return None, f"attyguard: trust store not used: {path} is {exc}"
    except sqlite3.Error as exc:
        return None, f"attyguard: trust store not used: {path}: {_one_line(exc)}"
    return store, None


class _Corrupt(Exception):
    pass


class _Newer(Exception):
    pass


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_CORRUPTION_MARKERS = ("not a database", "malformed", "corrupt", "encrypted", "schema")


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(m in text for m in _CORRUPTION_MARKERS)


class TrustStore:
    """One open connection to the store; use `open_trust_store` to get one.

    `lookup` runs before every command, so the connection stays open and a
    lookup is one primary-key SELECT (plus one UPDATE on a hit). Not
    thread-safe: one store per thread.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.warning: str | None = None  # set once if the store breaks mid-session

    @classmethod
    def _connect(cls, path: Path) -> TrustStore:
        uri = "file:" + _uri_path(path) + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            conn.execute("PRAGMA trusted_schema=OFF")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if version == 0 and not tables:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Re-read under the write lock: another shell may have won the race.
                    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                        conn.execute(_SCHEMA)
                        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            else:
                if version > SCHEMA_VERSION:
                    # Written by a newer attyguard: not ours to move, just not used.
                    raise _Newer(f"written by a newer attyguard (schema {version})")
                if version == 1:
                    _migrate_1_2(conn)
                    version = SCHEMA_VERSION
                if version != SCHEMA_VERSION:
                    raise _Corrupt("not an attyguard trust store")
                columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(trust)"))
                if columns != _COLUMNS:
                    raise _Corrupt("not an attyguard trust store")
                # quick_check is O(file size) and runs at every shell start: a
                # few ms up to QUICK_CHECK_MAX (thousands of entries). Beyond
                # that, damage is caught when a query meets it (lookup then
                # answers False and `warning` is set).
                if os.path.getsize(path) <= QUICK_CHECK_MAX:
                    check = conn.execute("PRAGMA quick_check(1)").fetchone()
                    if not check or check[0] != "ok":
                        raise _Corrupt(f"integrity check: {check[0] if check else 'no answer'}")
            if mode is None or str(mode[0]).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode})")
        except (_Corrupt, _Newer):
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            if _is_corruption(exc):
                raise _Corrupt(_one_line(exc)) from exc
            raise
        return cls(conn, path)

    # -- reads ---------------------------------------------------------------

    def lookup(self, line: str) -> bool:
        """True if exactly this line was trusted (and verified); counts the use. Never raises.

        An unverified entry (imported, its line unknown) is not a hit: see `unverified`.
        """
        if self.warning is not None:
            return False
        key = line_key(line)
        try:
            row = self._conn.execute("SELECT verified FROM trust WHERE sha256 = ?",
                                     (key,)).fetchone()
        except sqlite3.Error as exc:
            self._broken(exc)
            return False
        if row is None or not row[0]:
            return False
        # A hit stays a hit even if the bookkeeping cannot be written (another
        # shell holding the lock past the timeout, a full disk).
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute(
                "UPDATE trust SET last_used = ?, use_count = use_count + 1 WHERE sha256 = ?",
                (time.time(), key),
            )
        return True

    def unverified(self, line: str) -> TrustEntry | None:
        """The entry for this line if it was imported unverified (the shell asks once)."""
        entry = self.get(line)
        return entry if entry is not None and not entry.verified else None

    def get(self, line: str) -> TrustEntry | None:
        """The entry for this line without counting a use (for `attyguard check`)."""
        return self.get_hash(line_key(line))

    def get_hash(self, sha256: str) -> TrustEntry | None:
        try:
            row = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM trust WHERE sha256 = ?", (sha256.lower(),)
            ).fetchone()
        except sqlite3.Error as exc:
            self._broken(exc)
            return None
        return _entry(row) if row else None

    def entries(self) -> list[TrustEntry]:
        rows = self._read(f"SELECT {', '.join(_COLUMNS)} FROM trust ORDER BY created, sha256")
        return [_entry(r) for r in rows]

    def find_prefix(self, prefix: str) -> list[TrustEntry]:
        """Entries whose hash starts with `prefix` (hex), for `trust remove --sha256`."""
        prefix = prefix.lower()
        if not re.fullmatch(r"[0-9a-f]{1,64}", prefix):
            return []
        rows = self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM trust WHERE sha256 >= ? AND sha256 < ? "
            "ORDER BY sha256",
            (prefix, prefix + "g"),
        )
        return [_entry(r) for r in rows]

    def export_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries()]

    # -- writes --------------------------------------------------------------

    def add(self, line: str, rule_ids: tuple[str, ...] | list[str] = (), *,
            preview: str | None = None) -> None:
        """Trust this line; re-trusting keeps the first date and merges rule ids.

        The user saw the line itself, so the entry is verified and its preview
        is remade from the line (an imported preview is replaced). `preview`:
        what to show instead of the line (a file's name for `add --file`).
        Raises TrustError (one line) if the store cannot be written.
        """
        now = time.time()
        with self._write() as conn:
            self._merge(conn, line_key(line), preview if preview is not None else redact(line),
                        tuple(rule_ids), now, now, 0, verified=True)

    def remove(self, line: str) -> bool:
        return self.remove_hash(line_key(line))

    def remove_hash(self, sha256: str) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM trust WHERE sha256 = ?", (sha256.lower(),))
            return cur.rowcount > 0

    def clear(self) -> int:
        with self._write() as conn:
            return conn.execute("DELETE FROM trust").rowcount

    def import_json(self, rows: Iterable[Any]) -> int:
        """Merge exported rows (all or nothing); returns how many were merged.

        A row needs `sha256` (64 hex) or `cmd` (the full line, hashed here);
        `preview`, `rule_ids`, `created`, `last_used`, `use_count` are
        optional. What can be verified is: a `cmd`, or a preview with nothing
        redacted or shortened, must hash to `sha256` (else the row is
        rejected); the others are kept unverified (the shell asks once).
        Raises TrustError naming the first bad row.
        """
        parsed = [_parse_row(i, row) for i, row in enumerate(rows)]
        with self._write() as conn:
            for key, preview, rule_ids, created, last_used, count, verified in parsed:
                self._merge(conn, key, preview, rule_ids, created, last_used, count,
                            verified=verified)
        return len(parsed)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _merge(conn: sqlite3.Connection, key: str, preview: str, rule_ids: tuple[str, ...],
               created: float, last_used: float, count: int, *, verified: bool) -> None:
        row = conn.execute("SELECT rule_ids, verified FROM trust WHERE sha256 = ?",
                           (key,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO trust (sha256, preview, rule_ids, created, last_used, use_count, "
                "verified) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, preview, json.dumps(sorted(set(rule_ids))), created, last_used, count,
                 int(verified)),
            )
            return
        merged = sorted(set(_load_ids(row[0])) | set(rule_ids))
        # max(), not sum, for the count: importing one export twice must not double it.
        # A verified preview replaces an unverified one; never the other way round.
        replace_preview = verified and not row[1]
        conn.execute(
            "UPDATE trust SET rule_ids = ?, created = min(created, ?), "
            "last_used = max(last_used, ?), use_count = max(use_count, ?), "
            "verified = max(verified, ?), preview = CASE WHEN ? THEN ? ELSE preview END "
            "WHERE sha256 = ?",
            (json.dumps(merged), created, last_used, count, int(verified),
             int(replace_preview), preview, key),
        )

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            self._broken(exc)
            raise TrustError(f"trust store {self.path}: {_one_line(exc)}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.warning is not None:
            raise TrustError(self.warning)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TrustError(f"trust store {self.path} is busy or unwritable: "
                             f"{_one_line(exc)}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                self._broken(exc)
                raise TrustError(f"trust store {self.path}: {_one_line(exc)}") from exc
            raise

    def _broken(self, exc: sqlite3.Error) -> None:
        if _is_corruption(exc) and self.warning is None:
            self.warning = (f"attyguard: trust store {self.path} became unreadable "
                            f"({_one_line(exc)}); nothing is trusted until it is reopened")


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.absolute()))


def _load_ids(text: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _entry(row: tuple[Any, ...]) -> TrustEntry:
    return TrustEntry(
        sha256=str(row[0]), preview=str(row[1]), rule_ids=_load_ids(str(row[2])),
        created=float(row[3]), last_used=float(row[4]), use_count=int(row[5]),
        verified=bool(row[6]),
    )


def _migrate_1_2(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2 in place, once, under the write lock (other shells may race us)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 1:
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(trust)"))
            if columns != _COLUMNS_V1:
                raise _Corrupt("not an attyguard trust store")
            conn.execute(_MIGRATE_1_2)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# What redact() leaves in a preview when it changed or shortened the line.
_PREVIEW_MARKS = re.compile(r"\*\*\*|…|\\[ntxu]")


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _parse_row(index: int, row: Any
               ) -> tuple[str, str, tuple[str, ...], float, float, int, bool]:
    def bad(message: str) -> TrustError:
        return TrustError(f"entry {index}: {message}")

    if not isinstance(row, dict):
        raise bad("must be a JSON object")
    now = time.time()
    verified = False
    cmd = row.get("cmd")
    if cmd is not None:
        if not isinstance(cmd, str) or not cmd or "\x00" in cmd:
            raise bad("cmd must be a non-empty string without NUL")
        key = line_key(cmd)
        if "sha256" in row and str(row["sha256"]).lower() != key:
            raise bad("sha256 does not match cmd")
        preview = redact(cmd)
    else:
        key = str(row.get("sha256", "")).lower()
        if not _HEX64.fullmatch(key):
            raise bad("needs sha256 (64 hex digits) or cmd")
        preview = row.get("preview", "")
        if not isinstance(preview, str):
            raise bad("preview must be a string")
        verified = bool(preview) and line_key(preview) == key
        if preview and not verified and not _PREVIEW_MARKS.search(preview):
            # Nothing was redacted or shortened, so the preview is the whole line:
            # it must be the line the hash is of (else it shows one line, trusts another).
            raise bad("preview does not hash to sha256 (nothing in it is redacted, "
                      "so it must be the trusted line itself)")
        preview = redact(preview)  # previews from elsewhere are redacted again
    ids = row.get("rule_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad("rule_ids must be a list of strings")
    try:
        created = _parse_time(row.get("created", now), "created")
        last_used = _parse_time(row.get("last_used", created), "last_used")
    except ValueError as exc:
        raise bad(str(exc)) from None
    count = row.get("use_count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad("use_count must be a non-negative integer")
    return key, preview, tuple(ids), created, last_used, count, cmd is not None or verified
