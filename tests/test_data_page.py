"""The data page and its JSON twins: imports, counts, rejected rows (filtered, downloadable), coverage."""

from __future__ import annotations

import csv
import io

import pytest

from tests.kpi_fixtures import Fixture
from tests.web_fixtures import client_for


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Two partners, one user; four events of which two are rejected (a bad time, an unknown partner)."""
    root = tmp_path_factory.mktemp("data")
    fx = Fixture(root)
    fx.partner("A", onboarded="2026-01-01")
    fx.partner("B", onboarded="2026-01-01")
    fx.user("ua", "A")
    fx.event("Logged In", "2026-07-01 09:00", user="ua")
    fx.event("Logged In", "2026-07-02 09:00", user="ua")
    fx.event("Logged In", "yesterday", user="ua", id="bad-ts")
    fx.event("Support Requested", "2026-07-03 09:00", partner="Z", id="bad-partner", topic="billing")
    fx.hub().close()
    yield from client_for(root / "hub.duckdb")


def test_data_json_counts_imports_and_coverage(client):
    body = client.get("/api/v1/data").json()
    assert {k: body["counts"][k] for k in ("partners", "users", "events", "rejected_rows")} == {
        "partners": 2, "users": 1, "events": 2, "rejected_rows": 2}
    events_import = next(i for i in body["imports"] if i["kind"] == "events")
    assert (events_import["rows_read"], events_import["accepted"], events_import["rejected"]) == (4, 2, 2)
    coverage = {c["event"]: c for c in body["coverage"]}
    assert coverage["Logged In"]["count"] == 2 and coverage["Logged In"]["first_seen"] == "2026-07-01T09:00:00Z"
    assert coverage["Support Requested"]["count"] == 0  # its only row was rejected
    assert "Support Requested" in body["never_seen"] and "Logged In" not in body["never_seen"]
    assert len(body["coverage"]) == 34  # every plan event, and no custom ones here


def test_rejected_rows_filter_by_field_and_text(client):
    by_field = client.get("/api/v1/rejected", params={"field": "ts"}).json()
    assert by_field["total"] == 1 and by_field["rows"][0]["field"] == "ts"
    assert '"bad-ts"' in by_field["rows"][0]["raw"]
    by_text = client.get("/api/v1/rejected", params={"q": "'Z'"}).json()
    assert by_text["total"] == 1 and by_text["rows"][0]["field"] == "partner_id"
    assert client.get("/api/v1/rejected", params={"kind": "users"}).json()["total"] == 0


def test_rejected_rows_download_as_csv_with_their_reasons(client):
    r = client.get("/api/v1/rejected.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["field"] for row in rows) == ["partner_id", "ts"]
    assert all(row["reason"] and row["source"].endswith("events.jsonl") for row in rows)


def test_data_page_shows_the_same(client):
    html = client.get("/data", params={"field": "ts"}).text
    assert "1 matching" in html and "bad-ts" in html and "bad-partner" not in html
    assert "Support Requested" in html and "never" in html
    assert client.get("/openapi.json").json()["paths"].keys() >= {
        "/api/v1/data", "/api/v1/rejected", "/api/v1/rejected.csv"}
