"""On a database with no partners or no events, every data page and JSON twin shows how to import data."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import Fixture
from tests.web_fixtures import client_for

DATA_PAGES = ("/", "/kpis/portal_usage_rate", "/partners", "/partners/R1", "/at-risk", "/alerts", "/targets",
              "/impact", "/lifecycle")
DATA_APIS = ("/api/v1/scorecard", "/api/v1/kpis/portal_usage_rate", "/api/v1/partners", "/api/v1/partners/R1",
             "/api/v1/at-risk", "/api/v1/alerts", "/api/v1/targets", "/api/v1/impact", "/api/v1/lifecycle")
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory):
    """A database that was opened once and holds nothing."""
    from partnerkpi.hub import Hub

    db = tmp_path_factory.mktemp("empty") / "hub.duckdb"
    Hub.open(db).close()
    return db


@pytest.fixture(scope="module")
def client(empty_db):
    yield from client_for(empty_db)


@pytest.mark.parametrize("path", DATA_PAGES)
def test_every_data_page_shows_the_import_prompt_with_the_commands(client, empty_db, path):
    r = client.get(path, headers=HTML)
    assert r.status_code == 200, r.text
    html = r.text
    assert 'id="import-prompt"' in html and "There are no partners and no events in this database yet" in html
    assert f"partnerkpi import --db {empty_db} partners.csv users.csv events.parquet" in html
    assert "partnerkpi import --server http://testserver --token TOKEN partners.csv" in html
    assert "http://testserver/v1/batch" in html and "/admin/tokens" in html
    assert "–" not in html.split('id="import-prompt"')[1]  # no dashes in place of numbers


@pytest.mark.parametrize("path", DATA_APIS)
def test_every_json_twin_answers_empty_with_the_same_commands(client, empty_db, path):
    r = client.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["empty"] is True and body["partners"] == 0 and body["events"] == 0
    commands = [c["command"] for c in body["commands"]]
    assert f"partnerkpi import --db {empty_db} partners.csv users.csv events.parquet" in commands
    assert "http://testserver/v1/batch" in commands


def test_catalog_and_data_pages_still_answer_as_usual(client):
    assert 'id="import-prompt"' not in client.get("/catalog", headers=HTML).text
    assert client.get("/api/v1/kpis").json()["count"] > 30
    data = client.get("/api/v1/data").json()
    assert data["counts"]["events"] == 0 and "empty" not in data


def test_the_data_page_shows_the_prompt_above_its_tables(client):
    html = client.get("/data", headers=HTML).text
    assert 'id="import-prompt"' in html and "Rejected rows" in html


def test_partners_without_events_name_only_the_events(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("R1", onboarded="2026-01-01", type="reseller")
    fx.user("uR1", "R1")
    fx.hub().close()
    for c in client_for(tmp_path / "hub.duckdb"):
        body = c.get("/api/v1/scorecard").json()
        assert body["empty"] is True and body["partners"] == 1 and body["events"] == 0
        assert body["message"] == "there are no events in this database yet"
        assert "partners: 1, events: 0" in c.get("/", headers=HTML).text
