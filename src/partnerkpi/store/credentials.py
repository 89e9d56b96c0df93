"""`principals` (users with argon2 hashes) and `credentials` (API tokens and write keys, as SHA-256 hashes)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, ClassVar

import duckdb

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS principals (email VARCHAR PRIMARY KEY, password_hash VARCHAR NOT NULL, "
    "role VARCHAR NOT NULL, partner_id VARCHAR, created_at TIMESTAMP NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credentials (token_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, "
    "name VARCHAR, email VARCHAR, secret_sha256 VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL, "
    "expires_at TIMESTAMP, revoked_at TIMESTAMP, last_used_at TIMESTAMP)",
)
TOUCH_EVERY = timedelta(minutes=1)
TOKEN_COLUMNS = "token_id, kind, name, email, created_at, expires_at, revoked_at, last_used_at"


class CredentialTables:
    """Users and tokens as rows; each call takes a cursor of its own (pages verify tokens from any thread)."""

    _touch_lock = threading.Lock()
    # When each token's last use was written (by this process): a use within TOUCH_EVERY of it is not written
    # again, so a busy API client does not make a write of every read (last use is shown to the minute).
    _touched: ClassVar[dict[str, datetime]] = {}

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create both tables when missing."""
        with self.con.cursor() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)

    def _rows(self, sql: str, params: list[object] | None = None) -> list[tuple]:
        with self.con.cursor() as cur:
            return cur.execute(sql, params or []).fetchall()

    def _run(self, sql: str, params: list[object]) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql, params)

    # -- users ----------------------------------------------------------------------------------------
    def has_partner(self, partner_id: str) -> bool:
        """True when the partner exists (a partner user must belong to one)."""
        return bool(self._rows("SELECT 1 FROM partners WHERE partner_id = ?", [partner_id]))

    def has_user(self, email: str) -> bool:
        """True when a user with this email exists."""
        return bool(self._rows("SELECT 1 FROM principals WHERE email = ?", [email]))

    def add_user(self, email: str, password_hash: str, role: str, partner_id: str | None, at: datetime) -> None:
        """Store a user."""
        self._run("INSERT INTO principals VALUES (?, ?, ?, ?, ?)", [email, password_hash, role, partner_id, at])

    def users(self) -> list[tuple[str, str, str | None, datetime]]:
        """(email, role, partner id, created at) of every user, by email."""
        return self._rows("SELECT email, role, partner_id, created_at FROM principals ORDER BY email")

    def remove_user(self, email: str, at: datetime) -> None:
        """Revoke the user's tokens and remove the user, in one transaction."""
        with self.con.cursor() as cur:
            cur.begin()
            cur.execute("UPDATE credentials SET revoked_at = ? WHERE email = ? AND revoked_at IS NULL", [at, email])
            cur.execute("DELETE FROM principals WHERE email = ?", [email])
            cur.commit()

    def login(self, email: str) -> tuple[str, str, str | None] | None:
        """(password hash, role, partner id) of a user, or None."""
        rows = self._rows("SELECT password_hash, role, partner_id FROM principals WHERE email = ?", [email])
        return rows[0] if rows else None

    def set_password_hash(self, email: str, password_hash: str) -> None:
        """Replace a user's password hash (a rehash with newer parameters)."""
        self._run("UPDATE principals SET password_hash = ? WHERE email = ?", [password_hash, email])

    # -- tokens and write keys ------------------------------------------------------------------------
    def has_token(self, token_id: str) -> bool:
        """True when a token or write key has this id."""
        return bool(self._rows("SELECT 1 FROM credentials WHERE token_id = ?", [token_id]))

    def add_token(self, token_id: str, kind: str, name: str | None, email: str | None, secret_sha256: str,
                  created_at: datetime, expires_at: datetime | None) -> None:
        """Store a token or write key (its hash only)."""
        self._run("INSERT INTO credentials (token_id, kind, name, email, secret_sha256, created_at, expires_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", [token_id, kind, name, email, secret_sha256, created_at, expires_at])

    def find_token(self, given: str, secret_sha256: str, kind: str | None) -> str | None:
        """The id of the token (of `kind` when given) whose id is `given` or whose secret hashes to the hash."""
        rows = self._rows("SELECT token_id FROM credentials WHERE (token_id = ? OR secret_sha256 = ?) "
                          "AND kind = COALESCE(?, kind)", [given, secret_sha256, kind])
        return rows[0][0] if rows else None

    def revoke(self, token_id: str, at: datetime) -> None:
        """Revoke a token (an earlier revocation stays)."""
        self._run("UPDATE credentials SET revoked_at = COALESCE(revoked_at, ?) WHERE token_id = ?", [at, token_id])

    def tokens(self, kind: str | None = None) -> list[tuple[Any, ...]]:
        """Tokens and/or write keys in the order of `TOKEN_COLUMNS`, oldest first."""
        where = "WHERE kind = ?" if kind else ""
        return self._rows(f"SELECT {TOKEN_COLUMNS} FROM credentials {where} ORDER BY created_at, token_id",
                          [kind] if kind else [])

    def live_token(self, secret_sha256: str, kind: str, now: datetime) -> tuple[Any, ...] | None:
        """(token id, name, email, role, partner id) of an unrevoked, unexpired token; the user columns are
        None for a write key or a removed user."""
        rows = self._rows(
            "SELECT c.token_id, c.name, p.email, p.role, p.partner_id FROM credentials c "
            "LEFT JOIN principals p ON p.email = c.email WHERE c.secret_sha256 = ? AND c.kind = ? "
            "AND c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > ?)",
            [secret_sha256, kind, now])
        return rows[0] if rows else None

    def touch(self, token_id: str, now: datetime) -> None:
        """Note the token's last use, best effort, at most once per TOUCH_EVERY."""
        with self._touch_lock:
            last = self._touched.get(token_id)
            if last is not None and timedelta(0) <= now - last < TOUCH_EVERY:
                return
            with self.con.cursor() as cur:
                try:
                    cur.execute("UPDATE credentials SET last_used_at = ? WHERE token_id = ?", [now, token_id])
                except duckdb.TransactionException:  # a concurrent use updates it anyway
                    return
            self._touched[token_id] = now
