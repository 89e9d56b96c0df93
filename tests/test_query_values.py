"""Out-of-range query values on every GET route answer 400/422 with {error, hint} (or the error page), never 500."""

from __future__ import annotations

import pytest

from tests.web_fixtures import build_program, client_for

DATES = ["x", "2026-02-30", "0001-01-01", "9999-12-31"]
NUMBERS = ["-1", "0", "99999999999999999999", "x"]
WORDS = ["nope", "\x00", "é" * 2000]
BAD = {
    **dict.fromkeys(("from", "to", "around", "on", "expires_at"), DATES),
    **dict.fromkeys(("offset", "limit", "page", "import_id", "days", "periods"), NUMBERS),
    **dict.fromkeys(("grain", "by", "peers_by", "kpi", "sort", "order", "status", "quarter", "kind", "field", "q",
                     "next", "done", "user", "revoked"), WORDS),
}
PATHS = {"{kpi_id}": "active_partner_rate", "{partner_id}": "R1", "{email}": "ana@example.com",
         "{name}": "nope.css"}


def get_routes():
    from partnerkpi.web.routes import ROUTERS

    return [r for router in ROUTERS for r in router.routes
            if "GET" in getattr(r, "methods", ())]


def query_names(route) -> set[str]:
    names = set()
    for p in route.dependant.query_params:
        fields = getattr(p.field_info.annotation, "model_fields", None)
        names |= set(fields) if fields else {p.alias or p.name}
    return names


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = build_program(tmp_path_factory.mktemp("q"))
    yield from client_for(db)


def test_every_route_answers_bad_values_with_a_clear_error(client):
    routes = get_routes()
    assert len(routes) > 30
    asked = 0
    for route in routes:
        path = route.path
        for key, value in PATHS.items():
            path = path.replace(key, value)
        for name in sorted(query_names(route) | {"offset", "limit", "from", "to"}):
            for value in BAD.get(name, WORDS[:2]):
                accept = "application/json" if path.startswith("/api/") else "text/html"
                r = client.get(path, params={name: value}, headers={"Accept": accept})
                asked += 1
                assert r.status_code < 500, (route.path, name, value, r.status_code, r.text[:300])
                if r.status_code in (400, 422) and path.startswith("/api/"):
                    body = r.json()
                    assert body["error"] and body["hint"], (route.path, name, value, body)
    assert asked > 400


def test_offset_and_far_dates_name_the_problem(client):
    r = client.get("/api/v1/rejected", params={"offset": "-1"})
    assert r.status_code == 422
    assert r.json() == {"error": "invalid value: offset '-1': input should be greater than or equal to 0",
                        "hint": "fix the values named and send the request again"}
    r = client.get("/api/v1/scorecard", params={"to": "9999-12-31"})
    assert (r.status_code, r.json()["error"]) == (400, "to 9999-12-31 is outside the dates partnerkpi handles "
                                                       "(1900-01-01 .. 2200-01-01)")
    r = client.get("/api/v1/scorecard", params={"from": "1900-01-01", "to": "2100-01-01", "grain": "week"})
    assert r.status_code == 400 and "more than 1000 weeks" in r.json()["error"]
    page = client.get("/data", params={"offset": "-1"}, headers={"Accept": "text/html"})
    assert page.status_code == 422 and "offset" in page.text and "text/html" in page.headers["content-type"]


def test_the_library_refuses_a_negative_offset(tmp_path):
    from partnerkpi.errors import UsageError
    from partnerkpi.hub import Hub

    with Hub.open(tmp_path / "h.duckdb") as hub, pytest.raises(UsageError, match="offset 0 or later"):
        hub.rejected(offset=-1)
