"""The service's store: users, their context items and every version of their summary.

SQLite in WAL mode; every write is one transaction, so a process killed mid-write leaves
either the whole new version or none of it. Tokens are kept only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS context_items (
    item_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    item        TEXT NOT NULL,          -- one context item as JSON (pair, conversation or text)
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS summary_versions (
    user_id     TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    author      TEXT NOT NULL CHECK (author IN ('model', 'user')),
    note        TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    PRIMARY KEY (user_id, version)
);
"""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SummaryVersion:
    version: int
    text: str
    author: str
    note: str
    created_at: float


class NotFound(LookupError):
    pass


class QuotaExceeded(RuntimeError):
    """A write would take a user past one of their quotas; nothing was written."""


@dataclass(frozen=True)
class Quotas:
    """What one user may keep in the store."""

    max_context_items: int = 1_000
    max_context_bytes: int = 2_000_000
    """UTF-8 bytes of all of a user's context items together."""
    max_summary_versions: int = 1_000


class Store:
    """Thread-safe access to one SQLite file (one connection per thread)."""

    def __init__(self, path: str | Path, quotas: Quotas | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.quotas = quotas or Quotas()
        self._local = threading.local()
        # Writers queue here in arrival order instead of in SQLite's busy handler, whose
        # growing back-off sleeps gave a p99 of seconds under 50 concurrent writers.
        self._write_lock = threading.Lock()
        self._connection().executescript(SCHEMA)  # idempotent; executescript commits on its own

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed version survives power loss too
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self):
        db = self._connection()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- users and tokens -------------------------------------------------------------------

    def create_user(self, name: str) -> tuple[str, str]:
        """A new user and their bearer token (shown once; only its hash is stored)."""
        user_id, token = uuid.uuid4().hex[:12], secrets.token_urlsafe(24)
        with self._transaction() as db:
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (user_id, name, hash_token(token), time.time()))
        return user_id, token

    def user_for_token(self, token: str) -> str | None:
        row = self._connection().execute("SELECT user_id, token_hash FROM users WHERE token_hash = ?",
                                         (hash_token(token),)).fetchone()
        if row and hmac.compare_digest(row["token_hash"], hash_token(token)):
            return row["user_id"]
        return None

    def rotate_token(self, user_id: str) -> str:
        """A new token for the user; the old one stops working at once."""
        token = secrets.token_urlsafe(24)
        with self._transaction() as db:
            if db.execute("UPDATE users SET token_hash = ? WHERE user_id = ?", (hash_token(token), user_id)).rowcount != 1:
                raise NotFound(f"no user {user_id!r}")
        return token

    def delete_user(self, user_id: str) -> None:
        """The user and every row of theirs (context, summaries, token), in one transaction."""
        with self._transaction() as db:
            db.execute("DELETE FROM context_items WHERE user_id = ?", (user_id,))
            db.execute("DELETE FROM summary_versions WHERE user_id = ?", (user_id,))
            if db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount != 1:
                raise NotFound(f"no user {user_id!r}")

    def export(self, user_id: str) -> dict:
        """All of a user's data as one JSON-ready document (read in one snapshot)."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            return {"user": self.user(user_id), "context": self.context(user_id, limit=None),
                    "summary_versions": [asdict(v) for v in self.history(user_id, limit=None)]}
        finally:
            db.execute("COMMIT")

    def user(self, user_id: str) -> dict:
        row = self._connection().execute("SELECT user_id, name, created_at FROM users WHERE user_id = ?",
                                         (user_id,)).fetchone()
        if row is None:
            raise NotFound(f"no user {user_id!r}")
        return dict(row)

    def users(self) -> list[dict]:
        return [dict(r) for r in self._connection().execute("SELECT user_id, name, created_at FROM users ORDER BY created_at")]

    # -- context ------------------------------------------------------------------------------

    def add_context(self, user_id: str, items: list[dict]) -> int:
        self.user(user_id)
        now = time.time()
        rows = [(user_id, json.dumps(item, ensure_ascii=False), now) for item in items]
        with self._transaction() as db:
            count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(item AS BLOB))), 0) "
                                     "FROM context_items WHERE user_id = ?", (user_id,)).fetchone()
            added = sum(len(row[1].encode()) for row in rows)
            if count + len(rows) > self.quotas.max_context_items:
                raise QuotaExceeded(f"context is limited to {self.quotas.max_context_items} items per user "
                                    f"({count} stored); delete some first")
            if size + added > self.quotas.max_context_bytes:
                raise QuotaExceeded(f"context is limited to {self.quotas.max_context_bytes} bytes per user "
                                    f"({size} stored, {added} sent); delete some first")
            db.executemany("INSERT INTO context_items (user_id, item, created_at) VALUES (?, ?, ?)", rows)
            return count + len(rows)

    def context(self, user_id: str, offset: int = 0, limit: int | None = None) -> list[dict]:
        """Context items, oldest first; `limit=None` returns them all."""
        self.user(user_id)
        rows = self._connection().execute(
            "SELECT item FROM context_items WHERE user_id = ? ORDER BY item_id LIMIT ? OFFSET ?",
            (user_id, -1 if limit is None else limit, offset))
        return [json.loads(r["item"]) for r in rows]

    def count_context(self, user_id: str) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM context_items WHERE user_id = ?", (user_id,)).fetchone()[0]

    def newest_context(self, user_id: str, max_bytes: int) -> list[dict]:
        """The newest items whose stored size adds up to at most max_bytes (at least one), oldest first."""
        items, size = [], 0
        for row in self._connection().execute(
                "SELECT item FROM context_items WHERE user_id = ? ORDER BY item_id DESC", (user_id,)):
            size += len(row["item"].encode())
            if items and size > max_bytes:
                break
            items.append(json.loads(row["item"]))
        return items[::-1]

    def clear_context(self, user_id: str, drop_model_summaries: bool = False) -> int:
        """Delete the user's context, and if asked the model-written summaries derived from it.
        Returns the number of summary versions dropped."""
        with self._transaction() as db:
            db.execute("DELETE FROM context_items WHERE user_id = ?", (user_id,))
            if not drop_model_summaries:
                return 0
            return db.execute("DELETE FROM summary_versions WHERE user_id = ? AND author = 'model'",
                              (user_id,)).rowcount

    # -- summary versions --------------------------------------------------------------------

    def add_summary(self, user_id: str, text: str, author: str, note: str = "") -> SummaryVersion:
        self.user(user_id)
        with self._transaction() as db:
            latest, count = db.execute("SELECT COALESCE(MAX(version), 0), COUNT(*) FROM summary_versions "
                                       "WHERE user_id = ?", (user_id,)).fetchone()
            if count >= self.quotas.max_summary_versions:
                raise QuotaExceeded(f"summary history is limited to {self.quotas.max_summary_versions} versions; "
                                    f"drop old ones with DELETE .../summary/history?keep=N")
            version = SummaryVersion(latest + 1, text, author, note, time.time())
            db.execute("INSERT INTO summary_versions VALUES (?, ?, ?, ?, ?, ?)",
                       (user_id, version.version, text, author, note, version.created_at))
        return version

    def summary(self, user_id: str) -> SummaryVersion | None:
        history = self.history(user_id, limit=1)
        return history[0] if history else None

    def history(self, user_id: str, offset: int = 0, limit: int | None = None) -> list[SummaryVersion]:
        """Newest first; `limit=None` returns every version."""
        self.user(user_id)
        rows = self._connection().execute(
            "SELECT version, text, author, note, created_at FROM summary_versions WHERE user_id = ? "
            "ORDER BY version DESC LIMIT ? OFFSET ?", (user_id, -1 if limit is None else limit, offset))
        return [SummaryVersion(**dict(r)) for r in rows]

    def prune_history(self, user_id: str, keep: int) -> int:
        """Drop all but the newest `keep` (≥ 1) versions, so new numbers go on from the newest; returns how many went."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM summary_versions WHERE user_id = ? AND version NOT IN "
                "(SELECT version FROM summary_versions WHERE user_id = ? ORDER BY version DESC LIMIT ?)",
                (user_id, user_id, keep)).rowcount

    def revert(self, user_id: str, version: int) -> SummaryVersion:
        """A new version whose text is that of an older one: history is never rewritten."""
        row = self._connection().execute(
            "SELECT text, author FROM summary_versions WHERE user_id = ? AND version = ?", (user_id, version)).fetchone()
        if row is None:
            raise NotFound(f"user {user_id!r} has no summary version {version}")
        return self.add_summary(user_id, row["text"], "user", note=f"revert to version {version}")
