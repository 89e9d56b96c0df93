"""The JSON API under /api/v1, on a tiny hand-made program (3 resellers, 1 agency)."""

from __future__ import annotations

import pytest

from tests.web_fixtures import build_program, client_for

SPEC_KEYS = ["kpi", "period", "period_start", "period_end", "segment", "value", "numerator", "denominator", "n",
             "unit", "band", "previous", "change", "status", "status_basis"]
JULY = {"from": "2026-07-01", "to": "2026-08-01"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    yield from client_for(build_program(tmp_path_factory.mktemp("api")))


def test_scorecard_rows_are_the_spec_rows_with_hand_computed_values(client):
    r = client.get("/api/v1/scorecard", params={**JULY, "by": "type", "kpi": "active_partner_rate"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"grain": "month", "from": "2026-07-01", "to": "2026-08-01", "by": "type",
                             "partial": False, "note": None}
    assert [list(row) for row in body["rows"]] == [SPEC_KEYS] * 3
    program, agency, reseller = body["rows"]
    # 3 of 4 partners active in July = 75 %; June 1 of 4 = 25 %
    assert program == {
        "kpi": "active_partner_rate", "period": "2026-07", "period_start": "2026-07-01T00:00:00Z",
        "period_end": "2026-08-01T00:00:00Z", "segment": {}, "value": 75.0, "numerator": 3,
        "denominator": 4, "n": 4, "unit": "%", "band": "strong", "previous": 25.0, "change": 50.0,
        "status": "good", "status_basis": "target",  # 75 meets the built-in target of 75
    }
    assert agency["segment"] == {"type": "agency"} and agency["value"] == 100.0
    assert reseller["value"] == pytest.approx(200 / 3, rel=1e-15) and reseller["band"] == "moderate"
    # 66.7 vs 75: 8.3 short, beyond 7.5 (10 % of the target): poor, though the band is moderate
    assert (reseller["status"], reseller["status_basis"]) == ("poor", "target")


def test_scorecard_tiles_carry_display_value_band_and_arrow(client):
    body = client.get("/api/v1/scorecard", params={**JULY, "by": "type", "kpi": "active_partner_rate"}).json()
    (category,) = body["categories"]
    (tile,) = category["tiles"]
    assert category["id"] == "adoption"
    assert tile["display"] == "75.0 %" and tile["band"] == "strong" and tile["band_color"] == "green"
    assert tile["arrow"] == "▲" and tile["improved"] is True and tile["change"] == 50.0
    assert [b["value"] for b in tile["benchmarks"]] == [75.0, 60.0]
    assert [(s["label"], s["display"], s["band"]) for s in tile["segments"]] == [
        ("type = agency", "100.0 %", "strong"), ("type = reseller", "66.7 %", "moderate"),
    ]


def test_scorecard_defaults_like_the_cli(client):
    # The data reaches 2026-07-31: the range ends with July, the last complete month, and starts 6 months back.
    body = client.get("/api/v1/scorecard", params={"kpi": "active_partner_rate"}).json()
    assert body["query"] == {"grain": "month", "from": "2026-02-01", "to": "2026-08-01", "by": None,
                             "partial": False, "note": None}
    assert [r["period"] for r in body["rows"]] == ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]
    assert [r["value"] for r in body["rows"]] == [0.0, 0.0, 0.0, 0.0, 25.0, 75.0]


def test_scorecard_by_quarter(client):
    body = client.get("/api/v1/scorecard", params={"grain": "quarter", "from": "2026-07-01", "to": "2026-10-01",
                                                  "kpi": "active_partner_rate", "partial": 1}).json()
    (row,) = body["rows"]  # the data reaches into 2026-Q3 only: asked for, it is shown and marked partial
    assert row["period"] == "2026-Q3" and row["value"] == 75.0 and row["partial"] is True


def test_every_catalog_kpi_is_listed(client):
    body = client.get("/api/v1/kpis").json()
    assert body["count"] == len(body["kpis"]) >= 30
    apr = next(k for k in body["kpis"] if k["id"] == "active_partner_rate")
    assert apr["category"] == "adoption" and apr["unit"] == "%" and apr["direction"] == "up"
    assert apr["definition"].startswith("The share of partner organisations")


def test_kpi_has_all_attributes_its_band_and_rows(client):
    r = client.get("/api/v1/kpis/active_partner_rate", params={**JULY, "by": "type"})
    assert r.status_code == 200, r.text
    body = r.json()
    kpi = body["kpi"]
    for attribute in ("definition", "business_insights", "measurement_approach", "formula", "trend_analysis",
                      "diagnostic_questions", "improvement_levers", "visualization", "risk_warnings", "tools",
                      "integration_points", "change_impact"):
        assert kpi[attribute], attribute
    assert [b["name"] for b in kpi["bands"]] == ["low", "moderate", "strong"]
    assert body["band"]["name"] == "strong" and body["band"]["color"] == "green"
    assert body["latest"]["value"] == 75.0
    assert {tuple(r["segment"].items()) for r in body["rows"]} == {(), (("type", "agency"),), (("type", "reseller"),)}


def test_unknown_kpi_is_404_with_a_hint(client):
    r = client.get("/api/v1/kpis/active_partner_rat")
    assert r.status_code == 404
    assert "active_partner_rat" in r.json()["error"] and "active_partner_rate" in r.json()["hint"]
    assert client.get("/api/v1/scorecard", params={"kpi": "nope"}).status_code == 404


@pytest.mark.parametrize(("params", "fragment"), [
    ({"grain": "fortnight"}, "unknown grain 'fortnight'"),
    ({"from": "July"}, "is not a date"),
    ({"by": "colour"}, "unknown partner trait"),
    ({"from": "2026-08-01", "to": "2026-07-01"}, "is empty"),
])
def test_bad_queries_are_400_with_how_to_fix(client, params, fragment):
    r = client.get("/api/v1/scorecard", params=params)
    assert r.status_code == 400
    assert fragment in r.json()["error"] and r.json()["hint"]


@pytest.mark.parametrize("path", ["/api/v1/scorecard", "/api/v1/partners", "/api/v1/partners/R1",
                                  "/api/v1/kpis/active_partner_rate", "/api/v1/lifecycle"])
def test_an_empty_grain_is_refused_on_every_route_that_takes_one(client, path):
    r = client.get(path, params={"grain": ""})
    assert r.status_code == 400
    assert r.json()["error"] == "unknown grain ''" and "week, month, quarter, year" in r.json()["hint"]


def test_segments_are_the_partner_traits(client):
    assert client.get("/api/v1/segments").json() == {"traits": ["type", "tier", "region"],
                                                     "data_as_of": "2026-08-01T00:00:00Z"}


def test_openapi_describes_every_api_path(client):
    doc = client.get("/openapi.json").json()
    from partnerkpi.local_server import SNAPSHOT_PATH
    from partnerkpi.web.routes import ROUTERS

    routes = [r for router in ROUTERS for r in router.routes if r.path != SNAPSHOT_PATH]  # the server's own CLI's
    probes = ("/healthz", "/readyz")  # the supervisor's health checks, documented for its operators
    served = {(route.path, method) for route in routes if route.path.startswith(("/api/", "/v1/", *probes))
              for method in route.methods}
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert served == described  # every API route (JSON twins, admin, imports, collector) and nothing else
    page_twins = {"/api/v1/scorecard", "/api/v1/kpis", "/api/v1/kpis/{kpi_id}", "/api/v1/segments", "/api/v1/data",
                  "/api/v1/rejected", "/api/v1/rejected.csv", "/api/v1/partners", "/api/v1/partners/{partner_id}",
                  "/api/v1/at-risk", "/api/v1/alerts", "/api/v1/targets", "/api/v1/impact", "/api/v1/lifecycle",
                  "/api/v1/reports"}
    assert page_twins <= {path for path, _ in described}
    scorecard = doc["paths"]["/api/v1/scorecard"]["get"]
    assert {p["name"] for p in scorecard["parameters"]} == {"grain", "from", "to", "by", "kpi", "partial", "format"}
    assert "ScorecardOut" in doc["components"]["schemas"] and "Row" in doc["components"]["schemas"]
    assert not any(p.startswith("/kpis") or p == "/" for p in doc["paths"])  # pages are not API


def test_the_openapi_document_needs_a_session_or_a_token_and_docs_are_off(client):
    from fastapi.testclient import TestClient

    with TestClient(client.app) as anonymous:
        r = anonymous.get("/openapi.json")
        assert r.status_code == 401 and "sign in" in r.json()["hint"]
        assert anonymous.get("/openapi.json", headers={"Authorization": "Bearer pk_api_nope"}).status_code == 401
        token = client.app.state.partnerkpi.credentials.create_token("ana@example.com", "openapi")
        signed = anonymous.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200 and "/api/v1/scorecard" in signed.json()["paths"]
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert anonymous.get(path, follow_redirects=False).status_code in (303, 401, 404)
    assert client.get("/openapi.json").status_code == 200  # the signed-in session
    for path in ("/docs", "/redoc"):  # off: Swagger UI and ReDoc would load their assets from a CDN
        assert client.get(path).status_code == 404
