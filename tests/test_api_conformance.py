"""The JSON API does what its OpenAPI document says (issue 11, point 4).

The proof is schemathesis' own run (`st run`, every check: response schema and status code conformance, negative
data rejection, positive data acceptance, ignored auth, unsupported methods, ...; every phase: examples,
coverage, fuzzing, stateful) over the whole document of a real `partnerkpi serve` of the tiny program, as an
admin's API token and a write key: 0 failures. The quick scale runs in `make test`, the full one in `make
reliability`; reliability/schemathesis_run.py runs it at any count and keeps the figures. The tests after it pin
the fixes one by one on the in-process app.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conformance import conformance_program, st_run
from tests.scale import scaled
from tests.web_fixtures import ADMIN

EXAMPLES = scaled(quick=2, full=60)
OPERATIONS = 36  # of the OpenAPI document: the JSON API, the collector and the two health probes


@pytest.mark.reliability
@pytest.mark.slow
def test_schemathesis_finds_no_failure_over_the_whole_document():
    figures, output = st_run(EXAMPLES)
    assert figures["operations"] == OPERATIONS, output
    assert figures["cases"] >= OPERATIONS * EXAMPLES, output
    assert figures["failures"] == 0 and figures["errors"] == 0 and figures["exit_code"] == 0, output
    assert set(figures["phases"]) == {"examples", "coverage", "fuzzing", "stateful"}, output


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The app over the tiny program, as its admin's API token."""
    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app

    program = conformance_program(tmp_path_factory.mktemp("conformance"))
    with TestClient(create_app(Settings(db=str(program.db)))) as client:
        client.headers["Authorization"] = f"Bearer {program.admin_token}"
        yield client


@pytest.fixture(scope="module")
def document(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_every_instant_in_json_says_it_is_utc(api):
    users = api.get("/api/v1/users").json()
    assert {u["email"] for u in users} >= {ADMIN[0]} and all(Z.fullmatch(u["created_at"]) for u in users)
    imports = api.get("/api/v1/data").json()["imports"]
    assert len(imports) == 3 and all(Z.fullmatch(i["started_at"]) and Z.fullmatch(i["finished_at"]) for i in imports)
    partner = api.get("/api/v1/partners/R1").json()["partner"]
    assert partner["onboarded_at"] == "2026-01-01T00:00:00Z" and partner["last_active"] == "2026-07-10T09:00:00Z"


def test_a_method_a_path_does_not_have_is_405_with_every_method_it_has(api):
    options = api.options("/api/v1/users")
    assert options.status_code == 405 and options.headers["allow"] == "GET, POST"
    assert options.json()["hint"] == "use one of: GET, POST"
    put = api.put("/api/v1/partners/R1")
    assert put.status_code == 405 and put.headers["allow"] == "GET"
    assert api.patch("/v1/track").headers["allow"] == "POST"


def test_every_operation_declares_its_auth_and_its_refusals_with_one_error_model(document):
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    assert len(operations) == OPERATIONS
    public = [(path, op["security"]) for path, _, op in operations if path in ("/healthz", "/readyz")]
    assert public == [("/healthz", []), ("/readyz", [])]  # a supervisor's probes need no sign-in
    for path, method, op in operations:
        if path in ("/healthz", "/readyz"):
            continue
        scheme = "writeKey" if path.startswith("/v1/") else "apiToken"
        assert op["security"] == [{scheme: []}], (method, path)
        assert "401" in op["responses"], (method, path)
        model = "CollectorError" if path.startswith("/v1/") else "ErrorOut"
        for status, response in op["responses"].items():
            if status.startswith("4") or status.startswith("5"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith(f"/{model}"), (method, path, status)
    assert set(document["components"]["securitySchemes"]) == {"apiToken", "writeKey"}


def test_parameters_list_the_values_the_server_takes(document):
    partners = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/partners"]["get"]["parameters"]}
    assert partners["order"]["enum"] == ["asc", "desc"]
    assert {"partner_id", "health", "type", "tier", "region"} <= set(partners["sort"]["enum"])
    assert partners["grain"]["enum"] == ["week", "month", "quarter", "year"]
    day = partners["from"]["anyOf"][0]
    assert day["format"] == "date" and re.fullmatch(day["pattern"][1:-1], "1900-01-01")
    assert not re.fullmatch(day["pattern"][1:-1], "1899-12-31") and not re.fullmatch(day["pattern"][1:-1], "2200-01-02")
    levels = document["components"]["schemas"]["NewOverride"]["properties"]["level"]["enum"]
    assert levels == ["healthy", "watch", "at_risk"]


def test_refusals_that_name_something_missing_or_conflicting_are_404_and_409(api):
    assert api.post("/api/v1/alerts/999/acknowledge").status_code == 404
    assert api.delete("/api/v1/tokens/pk_api_nothing").status_code == 404
    assert api.post("/api/v1/tokens", json={"kind": "api", "email": "nobody@example.com"}).status_code == 404
    own = api.delete(f"/api/v1/users/{ADMIN[0]}")
    assert own.status_code == 409 and own.json() == {
        "error": "you cannot remove your own account",
        "hint": "ask another admin to remove it, so there is always an admin left"}
    again = api.post("/api/v1/users", json={"email": ADMIN[0], "password": "long-enough", "role": "analyst"})
    assert again.status_code == 409 and "exists already" in again.json()["error"]
