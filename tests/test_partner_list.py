"""/partners and /api/v1/partners: 50 a page, server-side search and sort, and each partner's health level."""

from __future__ import annotations

import re

import pytest

from tests.kpi_fixtures import Fixture
from tests.web_fixtures import PARTNER_R1, client_for

IDS = [f"P{i:02d}" for i in range(1, 56)]  # 55 partners: a full page of 50 and a page of 5


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """55 partners; P01-P10 log in every week of June and July 2026, the others never."""
    fx = Fixture(tmp_path_factory.mktemp("list"))
    for i, pid in enumerate(IDS):
        fx.partner(pid, type="agency" if i % 5 == 0 else "reseller")
        fx.user(f"u{pid}", pid)
    for pid in IDS[:10]:
        for day in ("06-02", "06-09", "06-16", "06-23", "06-30", "07-07", "07-14", "07-21", "07-28"):
            fx.event("Logged In", f"2026-{day} 09:00", user=f"u{pid}")
    fx.hub().close()
    return fx.dir / "hub.duckdb"


@pytest.fixture(scope="module")
def client(db):
    yield from client_for(db)


def ids(body: dict) -> list[str]:
    return [p["partner_id"] for p in body["partners"]]


def test_fifty_a_page_with_total_page_and_pages(client):
    first = client.get("/api/v1/partners").json()
    assert (first["total"], first["page"], first["pages"], first["page_size"]) == (55, 1, 2, 50)
    assert ids(first) == IDS[:50]
    second = client.get("/api/v1/partners", params={"page": 2}).json()
    assert ids(second) == IDS[50:] and second["page"] == 2


def test_search_and_sort_apply_before_paging(client):
    found = client.get("/api/v1/partners", params={"q": "p5", "sort": "partner_id", "order": "desc"}).json()
    assert ids(found) == ["P55", "P54", "P53", "P52", "P51", "P50"]  # "p5" is not in "P05"
    assert (found["total"], found["pages"]) == (6, 1)
    last = client.get("/api/v1/partners", params={"order": "desc", "page": 2}).json()
    assert ids(last) == ["P05", "P04", "P03", "P02", "P01"]


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "100001"])
def test_a_page_number_that_is_not_a_page_answers_422(client, page):
    assert client.get("/api/v1/partners", params={"page": page}).status_code == 422
    assert client.get("/partners", params={"page": page}, headers={"accept": "text/html"}).status_code == 422


def test_a_page_past_the_last_answers_404_naming_the_last(client):
    r = client.get("/api/v1/partners", params={"page": 3})
    assert r.status_code == 404 and "past the last page (2)" in r.json()["error"]
    assert "from 1 to 2" in r.json()["hint"]
    assert client.get("/api/v1/partners", params={"page": 2, "q": "P01"}).status_code == 404


def test_health_level_of_every_partner_matches_its_score_and_sorts_worst_first(client):
    body = client.get("/api/v1/partners", params={"sort": "health"}).json()
    levels = body["health_levels"]
    assert levels[0] == "healthy" and len(levels) >= 2
    every = body["partners"] + client.get("/api/v1/partners", params={"sort": "health", "page": 2}).json()["partners"]
    assert all(p["health"] in levels for p in every)
    rank = [(-levels.index(p["health"]), p["health_score"]) for p in every]
    assert rank == sorted(rank)  # worst level first, then the lowest score
    for pid in ("P01", "P30"):
        health = client.get(f"/api/v1/partners/{pid}").json()["health"]
        listed = next(p for p in every if p["partner_id"] == pid)
        assert (listed["health"], listed["health_score"]) == (health["level"], health["score"])
    active, silent = (next(p for p in every if p["partner_id"] == pid) for pid in ("P01", "P30"))
    assert levels.index(active["health"]) < levels.index(silent["health"])  # weekly logins beat none


def test_the_page_shows_health_and_links_to_the_next_page_keeping_sort_and_search(client):
    html = client.get("/partners", params={"sort": "name", "order": "desc"}).text
    assert re.search(r'<td class="health health-[\w-]+" title="score [\d.]+">(healthy|watch|at risk)</td>', html)
    assert 'rel="next"' in html and "sort=name&amp;order=desc&amp;page=2" in html and 'rel="prev"' not in html
    assert "55 matching, page 1 of 2" in html
    second = client.get("/partners", params={"sort": "name", "order": "desc", "page": 2}).text
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert second.count('<tr data-partner="') == 5


def test_partner_users_see_no_health_and_cannot_sort_by_it(db):
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    with Hub.open(db) as hub:
        Credentials(hub.store).add_user(PARTNER_R1[0], PARTNER_R1[1], "partner", "P07")
    for c in client_for(db, PARTNER_R1):
        body = c.get("/api/v1/partners").json()
        assert ids(body) == ["P07"] and body["health_levels"] is None and body["partners"][0]["health"] is None
        assert (body["total"], body["pages"]) == (1, 1)
        r = c.get("/api/v1/partners", params={"sort": "health"})
        assert r.status_code == 400 and "health" not in r.json()["hint"]
        assert "Health" not in c.get("/partners").text
