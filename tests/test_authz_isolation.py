"""Tenant isolation under attack: partner A asks for partner B's ids in paths, queries, bodies, filters, exports
and reports (a seeded generator of requests), and every answer is a refusal byte-identical to the answer for an
id that does not exist; then a canary planted in B's data is looked for in everything A can fetch, the report
mail of a real subscription over real SMTP included.
"""

from __future__ import annotations

import inspect
import random
import re
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes, policy
from urllib.parse import urlencode

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from partnerkpi.delivery.runs import open_subscriptions
from partnerkpi.web.auth import CSRF_HEADER
from tests.authz_program import CANARY, PARTNER_B, A, B, Program, build, canary_in, running, secrets_of, text_of
from tests.scale import scaled
from tests.test_delivery import every_text, smtp  # noqa: F401 (smtp: the real SMTP server fixture)

pytestmark = pytest.mark.reliability

REQUESTS = scaled(quick=1000, full=10000)
SEED = 11
THEIR_EMAIL, NO_EMAIL = PARTNER_B[0], "nobody-9xyz@bravo.example"  # same length
NO_PARTNER = "P-NOONE"  # as long as P-BRAVO
assert len(THEIR_EMAIL) == len(NO_EMAIL) and len(B) == len(NO_PARTNER)
IGNORED_HEADERS = {"date", "x-request-id"}  # differ between any two requests
KPI_ROUTES = scaled(quick=3, full=1000)  # KPIs asked for on the KPI routes (refused to partners): all at full scale


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    yield from running(build(tmp_path_factory.mktemp("authz-isolation")))


# -- id swapping ------------------------------------------------------------------------------------------
Case = tuple[str, str, dict, str]  # method, URL with {id}, request kwargs (may hold {id}), which id kind


def _pick(rng: random.Random, *options):
    return options[rng.randrange(len(options))]


def _query(rng: random.Random, **fixed: str) -> str:
    extra = {"grain": _pick(rng, "week", "month", "quarter"), "from": "2026-07-01", "to": "2026-10-01"}
    chosen = {k: v for k, v in extra.items() if rng.random() < 0.4}
    return urlencode({**chosen, **fixed}, safe="{}:")


def generated(rng: random.Random) -> Case:
    """One request of partner A that names B (as `{id}`: a partner id, or B's user's email)."""
    fmt = _pick(rng, "csv", "xlsx", "parquet")
    peers = _pick(rng, "type", "tier", "region")
    by = _pick(rng, "partner_id", peers)  # partner_id is no trait: a 400 before the scope's 403, the same for both
    makers: list[Callable[[], Case]] = [
        lambda: ("GET", "/api/v1/partners/{id}?" + _query(rng, peers_by=peers), {}, "partner"),
        lambda: ("GET", "/partners/{id}?" + _query(rng, kpi="login_frequency"), {}, "partner"),
        lambda: ("GET", "/partners/{id}", {"headers": {"accept": "text/html"}}, "partner"),
        lambda: ("GET", "/api/v1/partners?" + _query(rng, q="{id}"), {}, "partner"),
        lambda: ("GET", "/api/v1/partners?" + _query(rng, q="{id}", format=fmt), {}, "partner"),
        lambda: ("GET", "/partners?" + _query(rng, q="{id}"), {}, "partner"),
        lambda: ("GET", "/api/v1/partners?partner={id}&partner_id={id}", {}, "partner"),
        lambda: ("GET", "/api/v1/scorecard?" + _query(rng, by=by, partner="{id}"), {}, "partner"),
        lambda: ("GET", "/api/v1/kpis/login_frequency?" + _query(rng, by=peers, segment=f"{peers}:{{id}}",
                                                                  format=fmt), {}, "partner"),
        lambda: ("GET", "/kpis/login_frequency?partner={id}", {}, "partner"),
        lambda: ("GET", "/api/v1/lifecycle?" + _query(rng, by=by, partner="{id}"), {}, "partner"),
        lambda: ("GET", "/lifecycle?partner={id}", {}, "partner"),
        lambda: ("GET", f"/api/v1/at-risk?partner={{id}}&format={fmt}", {}, "partner"),
        lambda: ("GET", "/at-risk?partner={id}", {}, "partner"),
        lambda: ("GET", "/api/v1/alerts?status=all&partner={id}&format=" + fmt, {}, "partner"),
        lambda: ("GET", "/alerts?partner={id}", {}, "partner"),
        lambda: ("GET", "/api/v1/rejected?text={id}", {}, "partner"),
        lambda: ("GET", "/data?text={id}", {}, "partner"),
        lambda: ("GET", "/reports?" + _query(rng, audience="partner:{id}"), {}, "partner"),
        lambda: ("GET", "/reports/document?audience=partner:{id}&period=2026-Q3", {}, "partner"),
        lambda: ("GET", "/reports/document.pdf?audience=partner:{id}&paper=" + _pick(rng, "A4", "Letter"), {},
                 "partner"),
        lambda: ("GET", "/api/v1/reports?audience=partner:{id}", {}, "partner"),
        lambda: ("POST", "/api/v1/partners/{id}/health-override",
                 {"json": {"level": "at risk", "reason": "{id}", "expires_at": "2030-01-01"}}, "partner"),
        lambda: ("POST", "/partners/{id}/health-override",
                 {"data": {"level": "at risk", "reason": "x", "expires_at": "2030-01-01"}}, "partner"),
        lambda: ("POST", "/partners/{id}/health-override/remove", {"data": {"override_id": "1"}}, "partner"),
        lambda: ("POST", "/api/v1/users", {"json": {"email": "x@alpha.example", "password": "long-enough",
                                                    "role": "partner", "partner_id": "{id}"}}, "partner"),
        lambda: ("DELETE", "/api/v1/users/{id}", {}, "email"),
        lambda: ("POST", "/api/v1/tokens", {"json": {"kind": "api", "email": "{id}"}}, "email"),
        lambda: ("GET", "/admin/users?user={id}", {}, "email"),
    ]
    return makers[rng.randrange(len(makers))]()


def _filled(value, name: str):
    if isinstance(value, str):
        return value.replace("{id}", name)
    if isinstance(value, dict):
        return {k: _filled(v, name) for k, v in value.items()}
    return value


def ask(program: Program, case: Case, name: str, bearer: bool):
    """Partner A's request of `case` naming `name`, with its session (and CSRF token) or its API token."""
    method, url, kwargs, _ = case
    kwargs = _filled(kwargs, name)
    headers = dict(kwargs.pop("headers", {}))
    client = program.clients["partner_a"]
    if bearer:
        client = TestClient(program.app)
        headers["Authorization"] = f"Bearer {program.tokens['partner_a']}"
    else:
        headers[CSRF_HEADER] = program.csrf["partner_a"]
        if "data" in kwargs:
            kwargs["data"] = {**kwargs["data"], "csrf_token": program.csrf["partner_a"]}
    return client.request(method, _filled(url, name), headers=headers, follow_redirects=False, **kwargs)


def comparable(response, name: str) -> tuple:
    """Status, headers and body of an answer with the id asked for written as X (an XLSX's creation instant,
    the one part that changes from second to second, and so its length, left out)."""
    body, ignored = response.content.replace(name.encode(), b"X"), IGNORED_HEADERS
    if "spreadsheetml" in response.headers.get("content-type", ""):  # the instant also changes the zip's length
        body = re.sub(r"<dcterms:(created|modified)[^<]*</dcterms:\w+>", "", text_of(response)).replace(name, "X")
        ignored = {*ignored, "content-length"}
    headers = sorted((k, v.replace(name, "X")) for k, v in response.headers.items() if k not in ignored)
    return response.status_code, headers, body


@pytest.mark.slow  # 2 x 1000 requests at the quick scale
def test_partner_a_asking_for_b_gets_exactly_what_a_missing_id_gets(program):
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    routes: Counter[tuple[str, str, int]] = Counter()
    for n in range(REQUESTS):
        case = generated(rng)
        theirs, missing = (B, NO_PARTNER) if case[3] == "partner" else (THEIR_EMAIL, NO_EMAIL)
        bearer = case[1].startswith("/api/") and rng.random() < 0.5
        asked, nobody = ask(program, case, theirs, bearer), ask(program, case, missing, bearer)
        where = (n, case[0], _filled(case[1], theirs), "token" if bearer else "session")
        assert asked.status_code in (200, 400, 403, 404), (*where, asked.status_code, asked.text[:300])
        assert comparable(asked, theirs) == comparable(nobody, missing), where
        text = text_of(asked)
        for secret in secrets_of(B)[1:]:  # B's name and canary (its id may be echoed: A sent it)
            assert secret.lower() not in text.lower(), (*where, secret)
        if asked.status_code == 200:  # a filter that finds nothing of B's: A's own answer, at most
            assert THEIR_EMAIL not in text
        outcomes[str(asked.status_code)] += 1
        routes[(case[0], case[1].partition("?")[0], asked.status_code)] += 1
    assert sum(outcomes.values()) == REQUESTS
    assert outcomes["403"] and outcomes["404"] and outcomes["200"]  # every kind of refusal was tried
    print(f"id-swap requests={REQUESTS} pairs={2 * REQUESTS} outcomes={dict(outcomes)}")
    print("\n".join(f"  {n:5d} {method} {path} -> {status}" for (method, path, status), n in sorted(routes.items())))


# -- the canary -------------------------------------------------------------------------------------------
HTML, JSON = "text/html", "application/json"


def reachable(program: Program) -> list[tuple[str, tuple[str, ...]]]:
    """(URL, Accept headers) of every GET partner A can name: each route filled with A's id, each KPI, each grain
    and export format a route takes, its own report edition, and answers that are errors (B's id, nonsense
    values), these as HTML and as JSON."""
    kpis = [k["id"] for k in program.clients["partner_a"].get("/api/v1/kpis").json()["kpis"]]
    urls = []
    for route in iter_route_contexts(program.app.routes):
        if "GET" not in (route.methods or ()) or route.path.startswith("/static/"):
            continue
        takes = set(inspect.signature(route.endpoint).parameters) if route.endpoint else set()
        base = route.path.replace("{partner_id}", A)
        for kpi in kpis[:KPI_ROUTES] if "{kpi_id}" in base else [None]:
            url = base.replace("{kpi_id}", kpi) if kpi else base
            urls.append(url)
            if "format" in takes:
                urls += [f"{url}?format={fmt}" for fmt in ("csv", "xlsx", "parquet")]
            if "grain" in takes:
                urls += [f"{url}?grain={g}" for g in ("week", "quarter", "year")]
    urls += [f"/partners/{A}?kpi={k}" for k in ("login_frequency", "partner_revenue", "overdue_compliance_tasks")]
    urls += [f"/api/v1/partners/{A}?peers_by={t}" for t in ("type", "tier", "region", "")]
    urls += [f"/reports/document.pdf?audience=partner:{A}&period=2026-Q2", f"/reports?audience=partner:{A}"]
    plain = [(url, (JSON,) if url.startswith("/api/") or ".pdf" in url else (HTML,)) for url in urls]
    errors = [f"/api/v1/partners/{B}", f"/partners/{B}", f"/reports?audience=partner:{B}", "/api/v1/partners?q=Hold",
              f"/api/v1/partners/{A}?grain=decade", f"/api/v1/partners/{A}?from=yesterday", "/api/v1/partners?page=99",
              f"/partners/{A}?grain=decade", f"/api/v1/partners/{A}?peers_by=name", "/no/such/page", "/api/v1/nope"]
    return plain + [(url, (HTML, JSON)) for url in errors]


@pytest.mark.slow  # hundreds of pages, exports and PDFs
def test_the_canary_never_reaches_anything_partner_a_can_fetch(program):
    urls = reachable(program)
    assert len(urls) >= 120
    fetched = Counter()
    for url, accepts in urls:
        for accept in accepts:
            for bearer in (False, True) if url.startswith("/api/") else (False,):
                client = TestClient(program.app) if bearer else program.clients["partner_a"]
                headers = {"accept": accept, **({"Authorization": f"Bearer {program.tokens['partner_a']}"}
                                                if bearer else {})}
                answer = client.get(url, headers=headers, follow_redirects=False)
                assert answer.status_code < 500, (url, answer.status_code, answer.text[:300])
                assert not canary_in(text_of(answer)), (url, accept, bearer)
                assert not canary_in(str(answer.headers)), url
                fetched[answer.status_code] += 1
    assert fetched[200] >= 50  # most of it was really served, not refused
    print(f"canary: urls={len(urls)} answers={sum(fetched.values())} by status={dict(sorted(fetched.items()))}")


def test_the_canary_is_really_there_for_b_and_for_staff(program):
    """The proof above means something only if B's answers do carry the canary."""
    own = program.clients["partner_b"].get(f"/partners/{B}")
    assert canary_in(own.text)
    assert canary_in(program.clients["analyst"].get("/api/v1/partners").text)
    assert canary_in(text_of(program.clients["partner_b"].get("/reports/document.pdf")))


def test_a_partner_subscription_mails_a_its_edition_without_the_canary(program, smtp):  # noqa: F811
    boxes, mail = smtp
    subs = open_subscriptions(program.hub, mail)
    subs.add("isolation", "0 7 * * 1", tz="UTC", period="last-quarter", audience="partners", segment="tier=silver")
    with program.app.state.partnerkpi.write_lock:  # as the app's resend does: the app's threads share the file
        summary = subs.run_once("isolation")
    assert summary.counts == {"sent": 2}
    texts = {address: every_text(raws[0]) for address, raws in boxes.received.items()}
    their = f"{CANARY.lower()}-user@example.com"
    assert set(texts) == {"u-p-alpha@example.com", their}
    assert canary_in(texts[their])  # B's edition carries it ...
    assert not canary_in(texts["u-p-alpha@example.com"])  # ... A's does not
    assert "Alpha Systems" in texts["u-p-alpha@example.com"]
    msg = message_from_bytes(boxes.received["u-p-alpha@example.com"][0], policy=policy.default)
    assert msg["To"] == "u-p-alpha@example.com"
