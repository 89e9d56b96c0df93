"""Credentials: argon2 passwords, hashed API tokens and write keys, one failure for every bad credential."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials, Principal, WriteKey
from partnerkpi.errors import UsageError


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 7, 1, 9))


@pytest.fixture
def creds(store, clock) -> Credentials:
    store.con.execute("INSERT INTO partners (partner_id, name, onboarded_at) VALUES ('p1', 'Acme', '2026-01-01')")
    return Credentials(store, clock=clock)


def test_password_is_stored_as_an_argon2_hash_and_verifies(creds, store):
    creds.add_user("Ana@Example.com", "correct horse", "admin")
    [(stored,)] = store.con.execute("SELECT password_hash FROM principals").fetchall()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert creds.verify_password("ana@example.com", "correct horse") == Principal("ana@example.com", "admin")
    assert creds.verify_password("ana@example.com", "wrong horse") is None
    assert creds.verify_password("nobody@example.com", "correct horse") is None


def test_a_tokens_last_use_is_written_once_a_minute_not_on_every_request(creds, clock):
    creds.add_user("ana@example.com", "password1", "analyst")
    secret = creds.create_token("ana@example.com", "ci")
    first = clock()
    for seconds in (0, 20, 59):
        clock.now = first + timedelta(seconds=seconds)
        assert creds.verify_api_token(secret) is not None
    assert creds.list_tokens("api")[0].last_used_at == first  # a busy client makes no write per request
    clock.now = first + timedelta(seconds=61)
    assert creds.verify_api_token(secret) is not None
    assert creds.list_tokens("api")[0].last_used_at == first + timedelta(seconds=61)


def test_roles_and_partner_binding(creds):
    assert creds.add_user("pat@acme.example", "password1", "partner", "p1") == Principal(
        "pat@acme.example", "partner", "p1")
    with pytest.raises(UsageError, match="needs a partner"):
        creds.add_user("x@acme.example", "password1", "partner")
    with pytest.raises(UsageError, match="partner 'p9' does not exist"):
        creds.add_user("x@acme.example", "password1", "partner", "p9")
    with pytest.raises(UsageError, match="internal user"):
        creds.add_user("x@acme.example", "password1", "analyst", "p1")
    with pytest.raises(UsageError, match="unknown role 'owner'") as info:
        creds.add_user("x@acme.example", "password1", "owner")
    assert info.value.hint == "choose one of: admin, analyst, partner"
    with pytest.raises(UsageError, match="exists already"):
        creds.add_user("PAT@acme.example", "password2", "analyst")
    with pytest.raises(UsageError, match="shorter than 8"):
        creds.add_user("y@acme.example", "short", "analyst")
    assert [(u.email, u.role, u.partner_id) for u in creds.list_users()] == [("pat@acme.example", "partner", "p1")]


def test_api_token_is_stored_hashed_verifies_and_revokes(creds, store, clock):
    creds.add_user("ana@example.com", "password1", "analyst")
    secret = creds.create_token("ana@example.com", "ci")
    assert secret.startswith("pk_api_") and len(secret) > 40
    assert secret not in str(store.con.execute("SELECT * FROM credentials").fetchall())
    assert creds.verify_api_token(secret) == Principal("ana@example.com", "analyst")
    [info] = creds.list_tokens("api")
    assert (info.name, info.email, info.last_used_at, info.status(clock())) == ("ci", "ana@example.com",
                                                                               clock(), "active")
    assert secret.startswith(info.token_id)
    creds.revoke(info.token_id)
    assert creds.verify_api_token(secret) is None
    assert creds.list_tokens("api")[0].status(clock()) == "revoked"


def test_expired_revoked_and_unknown_credentials_fail_alike(creds, clock):
    creds.add_user("ana@example.com", "password1", "admin")
    expiring = creds.create_token("ana@example.com", "short-lived", expires_days=30)
    revoked = creds.create_token("ana@example.com", "gone")
    creds.revoke(revoked)  # by the secret itself
    clock.now += timedelta(days=30) - timedelta(seconds=1)
    assert creds.verify_api_token(expiring) == Principal("ana@example.com", "admin")
    clock.now += timedelta(seconds=1)
    unknown = "pk_api_" + "x" * 43
    assert {creds.verify_api_token(s) for s in (expiring, revoked, unknown, "", "garbage")} == {None}


def test_removing_a_user_revokes_their_tokens(creds):
    creds.add_user("ana@example.com", "password1", "admin")
    secret = creds.create_token("ana@example.com")
    creds.remove_user("ana@example.com")
    assert creds.verify_api_token(secret) is None
    assert creds.verify_password("ana@example.com", "password1") is None
    with pytest.raises(UsageError, match="there is no user"):
        creds.remove_user("ana@example.com")
    with pytest.raises(UsageError, match="there is no user"):
        creds.create_token("ana@example.com")


def test_write_keys_are_not_api_tokens(creds):
    creds.add_user("ana@example.com", "password1", "admin")
    key = creds.create_write_key("portal")
    token = creds.create_token("ana@example.com")
    assert key.startswith("pk_wk_")
    assert creds.verify_write_key(key) == WriteKey(key[:14], "portal")
    assert creds.verify_write_key(token) is None and creds.verify_api_token(key) is None
    creds.revoke(key[:14])
    assert creds.verify_write_key(key) is None
    with pytest.raises(UsageError, match="no token or write key"):
        creds.revoke("pk_wk_nothere")
    with pytest.raises(UsageError, match="no write key has the id"):
        creds.revoke(token[:15], "write_key")
    assert creds.verify_api_token(token) is not None


def _cli(db, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "partnerkpi.cli", *args, "--db", str(db)], input=input,
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_users_tokens_and_keys(db_path):
    added = _cli(db_path, "users", "add", "ana@example.com", "--role", "admin", input="password1\npassword1\n")
    assert added.returncode == 0, added.stderr
    assert "password1" not in added.stdout and "added ana@example.com (admin)" in added.stdout
    bad = _cli(db_path, "users", "add", "pat@example.com", "--role", "partner", "--password", "password1")
    assert bad.returncode == 2 and "a partner user needs a partner" in bad.stderr
    assert "ana@example.com" in _cli(db_path, "users", "list").stdout

    created = _cli(db_path, "tokens", "create", "ana@example.com", "--name", "ci", "--expires-days", "7")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("pk_api_")
    listed = _cli(db_path, "tokens", "list").stdout
    assert secret[:15] in listed and secret not in listed and "active" in listed
    assert _cli(db_path, "tokens", "revoke", secret[:15]).returncode == 0
    assert "revoked" in _cli(db_path, "tokens", "list").stdout

    key = _cli(db_path, "keys", "create", "portal").stdout.strip().splitlines()[-1]
    assert key.startswith("pk_wk_") and key[:14] in _cli(db_path, "keys", "list").stdout
    assert _cli(db_path, "keys", "revoke", key[:14]).returncode == 0
    assert _cli(db_path, "users", "remove", "ana@example.com").returncode == 0
    assert "0 users" in _cli(db_path, "users", "list").stdout
