"""The server-rendered pages show the same numbers as their JSON twins (tiny hand-made program)."""

from __future__ import annotations

import json
import re

import pytest
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema.core import load_schema

from tests.web_fixtures import build_program, client_for

JULY = {"from": "2026-07-01", "to": "2026-08-01"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    yield from client_for(build_program(tmp_path_factory.mktemp("pages")))


def _tile(html: str, kpi: str) -> str:
    match = re.search(rf'<article class="tile [^"]*" data-kpi="{kpi}"[^>]*>(.*?)</article>', html, re.S)
    assert match, f"no tile for {kpi}"
    return match.group(0)


def test_scorecard_tile_shows_value_band_arrow_and_benchmark(client):
    r = client.get("/", params=JULY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    tile = _tile(r.text, "active_partner_rate")
    assert "band-green" in tile and "75.0 %" in tile and ">strong<" in tile
    assert 'class="arrow better"' in tile and "▲ +50.0" in tile
    assert 'class="bench-mark"' in tile and "Top quartile, technology" in tile
    assert 'data-spec="spark-active_partner_rate"' in tile


def test_scorecard_has_every_kpi_grouped_by_category_and_timing_marked(client):
    html = client.get("/", params=JULY).text
    catalog = client.get("/api/v1/kpis").json()["kpis"]
    for kpi in catalog:
        assert f'data-kpi="{kpi["id"]}"' in html
    assert [m for m in re.findall(r'<section class="category" id="cat-(\w+)">', html)] == list(
        dict.fromkeys(k["category"] for k in catalog)
    )
    timed = [k for k in catalog if k["timing"]]
    assert timed and all(f"timing-{k['timing']}" in _tile(html, k["id"]) for k in timed)


def _spec(html: str, script_id: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{script_id}">(.*?)</script>', html, re.S)
    assert found, f"no chart {script_id}"
    spec = json.loads(found.group(1))
    validate_jsonschema(spec, load_schema())  # the pages write their specs unchecked (web/charts.py)
    return spec


def test_scorecard_sparkline_specs_are_valid_vega_lite(client):
    spec = _spec(client.get("/", params=JULY).text, "spark-active_partner_rate")
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert [p["value"] for p in spec["data"]["values"]] == [75.0]
    other = _spec(client.get("/", params={"from": "2026-06-01", "to": "2026-08-01"}).text, "spark-active_partner_rate")
    assert [p["period"] for p in other["data"]["values"]] == ["2026-06", "2026-07"]  # its own points, one frame


def test_the_kpi_and_partner_charts_are_valid_vega_lite_with_the_rows_shown(client):
    kpi = _spec(client.get("/kpis/active_partner_rate", params={**JULY, "by": "type"}).text, "spec-kpi")
    assert any(p.get("value") == 75.0 for layer in kpi["layer"] for p in layer.get("data", {}).get("values", []))
    partner = client.get("/partners/R1", params=JULY).text
    assert _spec(partner, "spec-partner")["layer"]
    assert re.findall(r'id="(spark-[a-z_]+)"', partner) and all(
        _spec(partner, spark)["mark"]["type"] == "line" for spark in re.findall(r'id="(spark-[a-z_]+)"', partner))


def test_scorecard_pickers_reflect_the_query(client):
    html = client.get("/", params={**JULY, "by": "type", "grain": "quarter", "partial": 1}).text
    assert '<option value="quarter" selected>' in html and '<option value="type" selected>' in html
    tile = _tile(html, "active_partner_rate")
    assert "type = agency" in tile and "100.0 %" in tile and "type = reseller" in tile and "66.7 %" in tile
    assert "2026-Q3 (partial)" in tile  # the data reaches July only


def test_the_page_and_its_json_twin_agree(client):
    html = client.get("/", params=JULY).text
    twin = client.get("/api/v1/scorecard", params=JULY).json()
    for category in twin["categories"]:
        for tile in category["tiles"]:
            assert tile["display"] in _tile(html, tile["kpi"])
    assert 'href="/api/v1/scorecard?grain=month&amp;from=2026-07-01&amp;to=2026-08-01"' in html


def test_kpi_page_shows_all_12_attributes_beside_the_live_value(client):
    r = client.get("/kpis/active_partner_rate", params={**JULY, "by": "type"})
    assert r.status_code == 200
    html = r.text
    kpi = client.get("/api/v1/kpis/active_partner_rate").json()["kpi"]
    ids = re.findall(r'<dt id="attr-(\w+)">', html)
    assert len(ids) == 12 and all(kpi[i] for i in ids)
    assert "75.0 %" in html and "band: strong" in html and "Gartner" in html
    spec = json.loads(re.search(r'<script type="application/json" id="spec-kpi">(.*?)</script>', html, re.S).group(1))
    assert {layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
            for layer in spec["layer"]} == {"rect", "rule", "text", "line"}
    series = {p["series"] for layer in spec["layer"] if "values" in layer.get("data", {})
              for p in layer["data"]["values"] if "series" in p}
    assert series == {"Whole program", "type = agency", "type = reseller"}


def test_kpi_page_in_a_red_band_shows_where_to_look(client):
    html = client.get("/kpis/active_partner_rate", params={"from": "2026-06-01", "to": "2026-07-01"}).text
    assert "In the low band" in html and "Diagnostic questions" in html


def test_unknown_kpi_page_is_404(client):
    assert client.get("/kpis/nope").status_code == 404


def test_catalog_lists_every_kpi_with_its_definition(client):
    html = client.get("/catalog").text
    for kpi in client.get("/api/v1/kpis").json()["kpis"]:
        assert f'id="kpi-{kpi["id"]}"' in html and kpi["name"] in html
    assert "The share of partner organisations" in html


def test_the_chart_bundle_is_served_by_the_app(client):
    r = client.get("/static/vega.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "window.vegaEmbed" in r.text
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/charts.js").text.count("vegaEmbed") >= 1
    assert client.get("/static/missing.css").status_code == 404


@pytest.mark.parametrize("path", ["/", "/kpis/active_partner_rate", "/kpis/portal_usage_rate", "/partners",
                                  "/partners/R1", "/at-risk", "/impact", "/lifecycle", "/targets", "/data"])
def test_no_page_shows_negative_zero_nan_or_a_share_above_100(client, path):
    html = client.get(path, params={"grain": "month"} if path != "/data" else {}).text
    text = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    assert not re.search(r"-0(\.0+)?(?![.\d])", text), re.search(r".{40}-0(\.0+)?(?![.\d]).{20}", text)
    assert not re.search(r"\b(nan|NaN|inf)\b", text)
    shares = [float(v.replace(",", "")) for v in re.findall(r"([\d,]+\.\d) %", text)]
    assert all(v <= 100 for v in shares), shares


def test_a_pages_chart_is_made_once_per_data_version_for_every_read(client, monkeypatch):
    import partnerkpi.web.routes.kpis as kpi_routes
    import partnerkpi.web.routes.partners as partner_routes

    made: list[str] = []
    for module, name in ((kpi_routes, "kpi_chart"), (partner_routes, "partner_chart")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name, **k: (made.append(_name), _real(*a, **k))[1])
    span = {"from": "2026-05-01", "to": "2026-08-01"}  # a range no other test asks for
    pages = [client.get("/kpis/active_partner_rate", params=span).text for _ in range(2)]
    pages += [client.get("/partners/R1", params=span).text for _ in range(2)]
    assert made == ["kpi_chart", "partner_chart"]
    assert pages[0] == pages[1] and _spec(pages[2], "spec-partner") == _spec(pages[3], "spec-partner")
