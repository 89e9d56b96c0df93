"""The authorization matrix (tests/data/authz_matrix.csv): every route of the real app × admin, analyst, partner A,
partner B and anonymous → the outcome expected. The walk requests every route as every actor (sessions for all,
and the actor's Bearer API token as well for the JSON API) and fails on a route without a row, a row without a
route, or an outcome other than the row's. Then CSRF: every state-changing route refuses a session's request
without its CSRF token, or with a wrong one.

Outcomes: `allow` (a GET answers 2xx; another method gets past authorization to the route's own checks),
`own` (allowed, but only the actor's own partner: another partner's id answers exactly like an id that does
not exist, and no other partner's id, name or canary is in the answer), `signin` (303 to /signin?next=...),
`401`, `403`, `404`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from partnerkpi.web.auth import CSRF_HEADER, SAFE_METHODS
from tests.authz_program import (
    ACTORS,
    OTHER,
    OWN,
    PROBE,
    USERS,
    Program,
    build,
    running,
    secrets_of,
    text_of,
)
from tests.web_fixtures import form_token, sign_in

pytestmark = pytest.mark.reliability

MATRIX = Path(__file__).parent / "data" / "authz_matrix.csv"
OUTCOMES = {"allow", "own", "signin", "401", "403", "404"}
MISSING_ID = {"P-ALPHA": "P-NOONE", "P-BRAVO": "P-NOONE"}  # same length: a refusal can be byte-identical

FILL = {"{kpi_id}": "login_frequency", "{email}": "nobody@corp.example", "{token_id}": "pk_nothing",
        "{alert_id}": "999999"}
BODIES: dict[tuple[str, str], dict] = {  # bodies that pass validation, so authorization decides
    ("POST", "/api/v1/snapshot"): {"json": {"path": "/nonexistent/dir/copy.duckdb"}},
    ("POST", "/api/v1/partners/{partner_id}/health-override"): {
        "json": {"level": "no-such-level", "reason": "probe", "expires_at": "2030-01-01"}},
    ("POST", "/partners/{partner_id}/health-override"): {
        "data": {"level": "no-such-level", "reason": "probe", "expires_at": "2030-01-01"}},
    ("POST", "/partners/{partner_id}/health-override/remove"): {"data": {"override_id": "999999"}},
}
HANDLER_REFUSALS = (400, 404, 409, 422)  # a route's own answer to a probe body: authorization let it through


def matrix() -> dict[tuple[str, str], dict[str, str]]:
    """The rows of the matrix file by (method, path)."""
    with MATRIX.open(newline="") as fh:
        return {(row["method"], row["path"]): row for row in csv.DictReader(fh)}


def app_routes(program: Program) -> set[tuple[str, str]]:
    """(method, path template) of every route of the app, routers included."""
    return {(m, r.path) for r in iter_route_contexts(program.app.routes) for m in r.methods or ()}


def concrete(path: str, partner_id: str) -> str:
    """A path template with its parameters filled (`partner_id` for a partner)."""
    path = path.replace("{partner_id}", partner_id)
    if path == "/static/{name}":
        return "/static/app.css"
    for name, value in {**FILL, "{name}": "none"}.items():
        path = path.replace(name, value)
    return path


def send(program: Program, actor: str, method: str, template: str, partner_id: str, *, bearer: bool = False,
         csrf: str | None = "session"):
    """The request of `actor` to a route, with the probe body of BODIES (or an empty one). `csrf`: "session"
    sends the session's token, None none, any other value that value."""
    client, path = program.clients[actor], concrete(template, partner_id)
    token = program.csrf.get(actor) if csrf == "session" else csrf
    headers = {CSRF_HEADER: token} if token and not bearer else {}
    if bearer:
        client = TestClient(program.app)  # no session cookie: the token alone
        headers["Authorization"] = f"Bearer {program.tokens.get(actor, 'pk_api_not-a-token')}"
    if method in SAFE_METHODS:
        return client.request(method, path, headers=headers, follow_redirects=False)
    kwargs = dict(BODIES.get((method, template)) or ({"json": {}} if path.startswith(("/api/", "/v1/")) else
                                                      {"data": {}}))
    if "data" in kwargs and token:
        kwargs["data"] = {**kwargs["data"], "csrf_token": token}
    return client.request(method, path, headers=headers, follow_redirects=False, **kwargs)


def verdict(method: str, response) -> str:
    """The outcome a response shows, in the matrix's words."""
    status = response.status_code
    if status == 303 and response.headers.get("location", "").startswith("/signin?next="):
        return "signin"
    if status >= 500:
        return f"server error {status}"
    if method not in SAFE_METHODS and status in HANDLER_REFUSALS:
        return "allow"
    if status in (401, 403, 404):
        return str(status)
    if method in SAFE_METHODS and not 200 <= status < 300:
        return f"unexpected {status}"
    return "allow"


def special(program: Program, actor: str, method: str, path: str):
    """Sign-in and sign-out, on a client of their own so the actor's session lives on."""
    client = TestClient(program.app)
    if path == "/signin":  # open to anyone; the actor's cookies play no part, so a fresh client signs the probe in
        return sign_in(client, *PROBE)
    if actor != "anonymous":
        sign_in(client, *USERS[actor])
        token = form_token(client.get("/catalog").text)
        return client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    return client.post("/signout", follow_redirects=False)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    yield from running(build(tmp_path_factory.mktemp("authz-matrix")))


def test_every_route_has_a_row_and_every_row_a_route(program):
    rows, routes = matrix(), app_routes(program)
    assert len(routes) >= 60
    assert sorted(routes - rows.keys()) == [], "routes without a row in tests/data/authz_matrix.csv"
    assert sorted(rows.keys() - routes) == [], "rows naming a route the app no longer has"
    for key, row in rows.items():
        assert {row[a] for a in ACTORS} <= OUTCOMES, key
        assert row["why"].strip(), key


@pytest.mark.slow  # every route computed cold for staff: about a minute, longer on a busy machine
def test_every_route_answers_every_actor_as_the_matrix_says(program):
    rows, routes = matrix(), app_routes(program)
    wrong, checked = [], 0
    for (method, template), row in sorted(rows.items()):
        if (method, template) not in routes:
            continue
        for actor in ACTORS:
            expected = row[actor]
            if template in ("/signin", "/signout") and method == "POST":
                answers = [special(program, actor, method, template)]
            else:
                answers = [send(program, actor, method, template, OWN[actor])]
                if template.startswith("/api/") or template == "/openapi.json":
                    answers.append(send(program, actor, method, template, OWN[actor], bearer=True))
            for answer in answers:
                checked += 1
                got = verdict(method, answer)
                if got != ("allow" if expected == "own" else expected):
                    wrong.append((method, template, actor, expected, got, answer.text[:200]))
                elif expected == "own":
                    wrong += own_only(program, actor, method, template, answer)
    assert wrong == []
    assert checked >= 5 * len(rows) - 10


def own_only(program: Program, actor: str, method: str, template: str, answer) -> list[tuple]:
    """The problems of an `own` answer: another partner's data in it, or another partner's id answering
    differently from an id that does not exist."""
    other = OTHER[actor]
    problems = [(method, template, actor, "shows", s) for s in secrets_of(other) if s.lower() in
                text_of(answer).lower()]
    if "{partner_id}" in template:
        theirs = send(program, actor, method, template, other)
        nobody = send(program, actor, method, template, MISSING_ID[other])
        if theirs.status_code != 404 or theirs.content.replace(other.encode(), b"X") != nobody.content.replace(
                MISSING_ID[other].encode(), b"X"):
            problems.append((method, template, actor, "another partner", theirs.status_code, nobody.status_code))
    return problems


# -- CSRF -------------------------------------------------------------------------------------------------
COOKIELESS = ("/v1/", "/api/v1/snapshot")  # the collector (write keys) and snapshots (a local secret) ignore sessions


def unsafe_routes(program: Program) -> list[tuple[str, str]]:
    """Every state-changing (method, path) of the app, sign-in and sign-out aside (tested on their own)."""
    return sorted((m, p) for m, p in app_routes(program)
                  if m not in SAFE_METHODS and p not in ("/signin", "/signout"))


@pytest.mark.parametrize("csrf", [None, "forged-token"])
def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(program, csrf):
    routes = unsafe_routes(program)
    assert len(routes) >= 20
    for method, template in routes:
        for actor in ("admin", "analyst"):
            answer = send(program, actor, method, template, OWN[actor], csrf=csrf)
            if template.startswith(COOKIELESS):
                assert answer.status_code in (401, 403), (method, template, answer.status_code)
                continue
            assert answer.status_code == 403, (method, template, actor, answer.status_code, answer.text[:200])
            assert "CSRF" in answer.text, (method, template)
            # the same request with the session's token gets past the check: the token was what was missing
            assert send(program, actor, method, template, OWN[actor]).status_code not in (401, 403) or \
                matrix()[(method, template)][actor] == "403"


def test_a_refused_form_changes_nothing(program):
    client = program.clients["admin"]
    form = {"email": "mallory@corp.example", "password": "long-enough-1", "role": "admin", "partner_id": ""}
    for token in (None, "forged-token"):
        answer = client.post("/admin/users", data={**form, **({"csrf_token": token} if token else {})},
                             follow_redirects=False)
        assert answer.status_code == 403
    emails = [u["email"] for u in client.get("/api/v1/users").json()]
    assert "mallory@corp.example" not in emails and USERS["admin"][0] in emails


def test_sign_in_and_sign_out_refuse_a_missing_or_wrong_csrf_token(program):
    fresh = TestClient(program.app)
    fresh.get("/signin")  # sets the pre-session CSRF cookie
    for token in ("", "forged-token"):
        answer = fresh.post("/signin", data={"email": PROBE[0], "password": PROBE[1], "csrf_token": token},
                            follow_redirects=False)
        assert answer.status_code == 403 and "pk_session" not in answer.headers.get("set-cookie", "")
    client = TestClient(program.app)
    sign_in(client, *USERS["analyst"])
    for data in ({}, {"csrf_token": "forged-token"}):
        assert client.post("/signout", data=data, follow_redirects=False).status_code == 403
    assert client.get("/catalog", follow_redirects=False).status_code == 200  # still signed in
