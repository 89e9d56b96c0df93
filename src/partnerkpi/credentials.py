"""Who may do what: principals with argon2 password hashes, API tokens and Segment write keys.

Secrets are shown once, at creation, and stored only as SHA-256 hashes. A secret starts with its id
(`pk_api_…` or `pk_wk_…`), so a leaked one is recognisable and revocable by the id alone. Unknown,
revoked and expired credentials all verify to the same None.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from partnerkpi.clock import Clock, utc_now
from partnerkpi.errors import ConflictError, NotFoundError, UsageError
from partnerkpi.store import Store

Role = Literal["admin", "analyst", "partner"]
ROLES: tuple[str, ...] = ("admin", "analyst", "partner")
INTERNAL_ROLES: tuple[str, ...] = ("admin", "analyst")
TokenKind = Literal["api", "write_key"]
PREFIXES: dict[str, str] = {"api": "pk_api_", "write_key": "pk_wk_"}
ID_CHARS = 8  # random characters of the secret that also form its public id
MIN_PASSWORD = 8

@dataclass(frozen=True)
class Principal:
    """A signed-in actor: an internal user (admin, analyst) or a partner user bound to one partner."""

    email: str
    role: str
    partner_id: str | None = None

    @property
    def internal(self) -> bool:
        """True for admins and analysts (they see the whole program)."""
        return self.role in INTERNAL_ROLES


@dataclass(frozen=True)
class User:
    """A principal as listed (no hash)."""

    email: str
    role: str
    partner_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class WriteKey:
    """A Segment write key that verified: the collector stores what it sends."""

    token_id: str
    name: str


@dataclass(frozen=True)
class TokenInfo:
    """An API token or write key as listed (never the secret)."""

    token_id: str
    kind: str
    name: str | None
    email: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime) -> str:
        """active, revoked or expired at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise UsageError(f"'{email}' is not an email address", hint="give the user's email, e.g. ana@example.com")
    return email


class Credentials:
    """Users, API tokens and write keys in the hub's store (`store.credentials` holds the tables)."""

    def __init__(self, store: Store, clock: Clock = utc_now, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.tables = store.credentials
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # -- users ----------------------------------------------------------------------------------------
    def add_user(self, email: str, password: str, role: str, partner_id: str | None = None) -> Principal:
        """Add a user; a partner user needs an existing partner, internal users must not name one."""
        email = _normal_email(email)
        if role not in ROLES:
            raise UsageError(f"unknown role '{role}'", hint=f"choose one of: {', '.join(ROLES)}")
        if role == "partner":
            if not partner_id:
                raise UsageError("a partner user needs a partner", hint="pass --partner PARTNER_ID")
            if not self.tables.has_partner(partner_id):
                raise NotFoundError(f"partner '{partner_id}' does not exist", hint="import the partner first "
                                 "(a partners file or a Segment group call), or check the id")
        elif partner_id:
            raise UsageError(f"an {role} is an internal user and is not bound to a partner",
                             hint="leave out --partner, or use --role partner")
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"the password is shorter than {MIN_PASSWORD} characters",
                             hint=f"choose a password of at least {MIN_PASSWORD} characters")
        if self.tables.has_user(email):
            raise ConflictError(f"a user with email {email} exists already",
                             hint=f"remove it first (`partnerkpi users remove {email}`) or use another email")
        self.tables.add_user(email, self.hasher.hash(password), role, partner_id, self.clock())
        return Principal(email, role, partner_id)

    def list_users(self) -> list[User]:
        """Every user, by email."""
        return [User(*r) for r in self.tables.users()]

    def remove_user(self, email: str) -> None:
        """Remove a user and revoke their API tokens."""
        email = _normal_email(email)
        if not self.tables.has_user(email):
            raise NotFoundError(f"there is no user {email}", hint="list the users with `partnerkpi users list`")
        self.tables.remove_user(email, self.clock())

    def verify_password(self, email: str, password: str) -> Principal | None:
        """The principal when the password is right; None for a wrong password or an unknown email."""
        try:
            email = _normal_email(email)
        except UsageError:
            email = ""
        row = self.tables.login(email)
        if row is None and self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        stored = row[0] if row else self._dummy_hash  # same work for an unknown email
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self.hasher.check_needs_rehash(stored):
            self.tables.set_password_hash(email, self.hasher.hash(password))
        return Principal(email, row[1], row[2])

    # -- tokens and write keys ------------------------------------------------------------------------
    def _create(self, kind: TokenKind, name: str | None, email: str | None, expires_days: int | None) -> str:
        if expires_days is not None and expires_days <= 0:
            raise UsageError("--expires-days must be a positive number of days", hint="e.g. --expires-days 90")
        now = self.clock()
        expires = now + timedelta(days=expires_days) if expires_days is not None else None
        while True:
            secret = PREFIXES[kind] + secrets.token_urlsafe(32)
            token_id = secret[: len(PREFIXES[kind]) + ID_CHARS]
            if not self.tables.has_token(token_id):
                break
        self.tables.add_token(token_id, kind, name, email, _sha256(secret), now, expires)
        return secret

    def create_token(self, email: str, name: str | None = None, expires_days: int | None = None) -> str:
        """A new API token for a user; the secret is returned once and never stored."""
        email = _normal_email(email)
        if not self.tables.has_user(email):
            raise NotFoundError(f"there is no user {email}",
                                hint="add the user first with `partnerkpi users add EMAIL --role ...`")
        return self._create("api", name, email, expires_days)

    def create_write_key(self, name: str, expires_days: int | None = None) -> str:
        """A new Segment write key; the secret is returned once and never stored."""
        if not name.strip():
            raise UsageError("a write key needs a name", hint="name it after its source, e.g. partner-portal")
        return self._create("write_key", name.strip(), None, expires_days)

    def revoke(self, token_id_or_secret: str, kind: TokenKind | None = None) -> TokenInfo:
        """Revoke a token or write key (only of `kind` when given) by its id; the secret itself works too."""
        given = token_id_or_secret.strip()
        token_id = self.tables.find_token(given, _sha256(given), kind)
        if token_id is None:
            what = {"api": "API token", "write_key": "write key"}.get(kind or "", "token or write key")
            raise NotFoundError(f"no {what} has the id '{given}'",
                             hint="list them with `partnerkpi tokens list` or `partnerkpi keys list`")
        self.tables.revoke(token_id, self.clock())
        return self._info(token_id)

    def list_tokens(self, kind: TokenKind | None = None) -> list[TokenInfo]:
        """API tokens and/or write keys, oldest first."""
        return [TokenInfo(*r) for r in self.tables.tokens(kind)]

    def _info(self, token_id: str) -> TokenInfo:
        return next(t for t in self.list_tokens() if t.token_id == token_id)

    def _verify(self, kind: TokenKind, secret: str) -> tuple | None:
        if not secret.startswith(PREFIXES[kind]):
            return None
        now = self.clock()
        row = self.tables.live_token(_sha256(secret), kind, now)
        if row is None:
            return None
        self.tables.touch(row[0], now)
        return row

    def verify_api_token(self, secret: str) -> Principal | None:
        """The token's principal; None for an unknown, revoked or expired token, or a removed user."""
        row = self._verify("api", secret)
        if row is None or row[2] is None:
            return None
        return Principal(row[2], row[3], row[4])

    def verify_write_key(self, secret: str) -> WriteKey | None:
        """The write key; None for an unknown, revoked or expired one."""
        row = self._verify("write_key", secret)
        return None if row is None else WriteKey(row[0], row[1])
