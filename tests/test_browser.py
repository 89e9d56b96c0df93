"""The pages in a real browser (Debian chromium), signed in as an analyst and as a partner user: tiles,
rendered charts, pickers, the partner view and its limits; writes the README screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import BROWSER_ADMIN, BROWSER_ANALYST, BROWSER_PARTNER, serve, sign_in

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
ALL_RENDERED = """() => {
  const charts = document.querySelectorAll('[data-spec]');
  return charts.length > 0 && [...charts].every((el) => el.dataset.rendered);
}"""


@pytest.fixture
def errors(page) -> list[str]:
    """JavaScript errors of the page (there must be none)."""
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


@pytest.fixture
def analyst(page, live_server):
    """The page of a browser signed in as an analyst."""
    sign_in(page, live_server, BROWSER_ANALYST)
    return page


@pytest.fixture
def partner_user(page, live_server):
    """The page of a browser signed in as the demo partner's user."""
    sign_in(page, live_server, BROWSER_PARTNER)
    return page


def _wait_for_charts(page) -> None:
    page.wait_for_function(ALL_RENDERED, timeout=30_000)
    failed = page.locator('[data-rendered="error"]')
    assert failed.count() == 0, failed.first.text_content()


def test_scorecard_shows_tiles_and_sparklines(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/")
    _wait_for_charts(page)
    tiles = page.locator("article.tile")
    assert tiles.count() >= 30
    assert page.locator("section.category").count() == 7
    tile = page.locator('article.tile[data-kpi="active_partner_rate"]')
    assert tile.locator(".number").text_content().strip().endswith("%")
    assert tile.locator(".bench-mark").count() == 1
    sparks = page.locator(".spark svg")
    assert sparks.count() == tiles.count()
    assert page.locator(".spark svg .mark-line path").count() >= 30  # each line drawn as an SVG path
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "scorecard.png"), full_page=True)
    assert errors == []


def test_kpi_page_draws_the_chart_with_bands_and_benchmarks(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/kpis/active_partner_rate?by=type")
    _wait_for_charts(page)
    chart = page.locator("#kpi-chart svg")
    assert chart.count() == 1
    assert chart.locator(".mark-line.role-mark path").count() >= 2  # the program and the partner types
    assert chart.locator(".mark-rect.role-mark path").count() == 3  # low, moderate, strong
    assert chart.locator(".mark-rule.role-mark line").count() == 2  # two benchmarks
    assert page.locator("dt[id^=attr-]").count() == 12
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kpi.png"), full_page=True)
    assert errors == []


def test_switching_segment_and_grain_with_the_form(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/")
    _wait_for_charts(page)
    page.select_option("select[name=by]", "type")
    page.select_option("select[name=grain]", "quarter")
    page.fill("input[name=from]", "")  # let the range follow the new grain
    page.click("form.pickers button[type=submit]")
    page.wait_for_url("**/?*by=type*")
    _wait_for_charts(page)
    assert "grain=quarter" in page.url
    assert page.locator("select[name=grain]").input_value() == "quarter"
    assert page.locator("select[name=by]").input_value() == "type"
    tile = page.locator('article.tile[data-kpi="active_partner_rate"]')
    assert "-Q" in tile.locator(".period").text_content()
    assert tile.locator(".segments li").count() >= 2
    assert tile.locator(".segments li").first.text_content().startswith("type = ")
    assert errors == []


def test_partners_list_searches_and_sorts(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/partners")
    rows = page.locator("table.partners tbody tr")
    assert rows.count() == 40
    page.fill("input[name=q]", "reseller")
    page.click("form.pickers button[type=submit]")
    page.wait_for_url("**/partners?*q=reseller*")
    shown = page.locator("table.partners tbody tr")
    assert 0 < shown.count() < 40
    assert all("reseller" in t for t in shown.all_inner_texts())
    page.click("table.partners th a:has-text('Login Frequency')")  # sort by it, ascending
    page.wait_for_url("**sort=login_frequency*")
    column = [h.strip() for h in page.locator("table.partners thead th").all_inner_texts()].index("Login Frequency ▲")
    values = [r.locator("td").nth(column).inner_text() for r in page.locator("table.partners tbody tr").all()]
    numbers = [float(v) for v in values if v != "–"]
    assert numbers == sorted(numbers) and values[len(numbers):] == ["–"] * (len(values) - len(numbers))
    assert errors == []


def test_internal_partner_page_compares_with_peers(analyst, live_server, demo_partner, errors):
    page = analyst
    page.goto(live_server + "/partners")
    page.click(f"table.partners a[href='/partners/{demo_partner}']")
    page.wait_for_url(f"**/partners/{demo_partner}")
    _wait_for_charts(page)
    assert page.locator("article.tile[data-kpi=cost_to_serve]").count() == 1  # internal KPIs shown to staff
    assert page.locator("#partner-chart svg .mark-line.role-mark path").count() >= 2
    assert errors == []


def test_partner_user_sees_their_own_partner_against_anonymous_peers(partner_user, live_server, demo_partner,
                                                                    errors):
    page = partner_user
    assert page.url.endswith(f"/partners/{demo_partner}")  # landed on their own page
    _wait_for_charts(page)
    assert page.locator("article.tile").count() >= 10
    assert page.locator("article.tile[data-kpi=cost_to_serve]").count() == 0  # internal-only KPIs hidden
    assert page.locator("article.tile .peers").count() >= 10
    chart = page.locator("#partner-chart svg")
    assert chart.locator(".mark-line.role-mark path").count() >= 1
    legend = chart.locator(".role-legend").first.text_content()
    assert "This partner" in legend and "Peer median" in legend
    assert page.locator("table.tasks").count() == 1 and page.locator("table.policies").count() == 1
    assert page.locator("#health").count() == 0  # the health score is the program team's, not shown to partners
    nav = page.locator("header.top nav").inner_text()
    assert "Partners" not in nav and "Data" not in nav and "Scorecard" not in nav
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "partner.png"), full_page=True)

    page.select_option("select[name=grain]", "quarter")
    page.fill("input[name=from]", "")
    page.click("form.pickers button[type=submit]")
    page.wait_for_url("**grain=quarter*")
    _wait_for_charts(page)
    assert re.search(r"\d{4}-Q\d", page.locator("article.tile .period").first.inner_text())
    assert errors == []


def test_partner_user_cannot_open_other_pages(partner_user, live_server, demo_partner):
    page = partner_user
    for path, status in (("/", 403), ("/data", 403), ("/kpis/portal_usage_rate", 403), ("/partners/p-9999", 404)):
        response = page.goto(live_server + path)
        assert response.status == status, path
        assert page.locator("h1").count() == 1  # an error page, not JSON
    other = page.goto(live_server + ("/partners/p-0001" if demo_partner != "p-0001" else "/partners/p-0002"))
    assert other.status == 404
    assert page.goto(live_server + "/partners").status == 200
    assert page.locator("table.partners tbody tr").count() == 1


def test_catalog_and_data_pages_as_analyst(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/catalog")
    assert page.locator("table.catalog tbody tr").count() == 33
    page.click("header.top nav a:has-text('Data')")
    page.wait_for_url("**/data")
    assert "events" in page.locator("section.counts").inner_text()
    assert page.locator("table.coverage tbody tr").count() >= 30
    assert page.locator("header.top nav a:has-text('Admin')").count() == 0  # analysts do not manage users
    assert errors == []


def test_admin_adds_a_user_in_the_browser(page, live_server, errors):
    sign_in(page, live_server, BROWSER_ADMIN)
    page.click("header.top nav a:has-text('Admin')")
    page.wait_for_url("**/admin/users")
    before = page.locator("table.users tbody tr").count()
    page.fill("form.add-user input[name=email]", "new.analyst@demo.test")
    page.select_option("form.add-user select[name=role]", "analyst")
    page.fill("form.add-user input[name=password]", "a-long-password")
    page.click("form.add-user button[type=submit]")
    page.wait_for_url("**/admin/users?*")
    assert page.locator("table.users tbody tr").count() == before + 1
    assert "new.analyst@demo.test" in page.locator("table.users").inner_text()
    page.click("header.top form.who button")
    page.wait_for_url("**/signin")
    sign_in(page, live_server, ("new.analyst@demo.test", "a-long-password"))
    assert page.locator("article.tile").count() >= 30  # the new analyst lands on the scorecard
    assert errors == []


def _api(page, base: str, path: str) -> dict:
    """The JSON twin, fetched with the browser's own session."""
    response = page.request.get(base + path)
    assert response.ok, response.text()
    return response.json()


def test_at_risk_alerts_and_targets_pages(analyst, live_server, errors):
    page = analyst
    page.click("header.top nav a:has-text('At risk')")
    page.wait_for_url("**/at-risk")
    twin = _api(page, live_server, "/api/v1/at-risk")
    assert page.locator("#at-risk tbody tr[data-partner]").count() == len(twin["at_risk"])
    assert page.locator("#inactive tbody tr[data-partner]").count() == len(twin["inactive"])
    if twin["inactive"]:
        first = twin["inactive"][0]
        row = page.locator(f"#inactive tr[data-partner='{first['partner_id']}']")
        assert first["reasons"][0] in row.inner_text()

    assert page.locator("#backtest table tbody tr").count() == 2  # the score and the naive rule

    page.click("header.top nav a:has-text('Alerts')")
    page.wait_for_url("**/alerts")
    alerts = _api(page, live_server, "/api/v1/alerts")["alerts"]
    assert alerts, "the demo's import fires alerts"
    assert page.locator("#alerts tbody tr[data-alert]").count() == len(alerts)
    newest = alerts[0]
    page.locator(f"tr[data-alert='{newest['alert_id']}'] form button").click()
    page.wait_for_url("**/alerts")
    assert "seen by ana@demo.test" in page.locator(f"tr[data-alert='{newest['alert_id']}']").inner_text()

    page.click("header.top nav a:has-text('Targets')")
    page.wait_for_url("**/targets")
    review = _api(page, live_server, "/api/v1/targets")["review"]
    assert review["quarter"] in page.locator("h2").first.inner_text()
    checks = len(review["targets_met"]) + len(review["targets_missed"]) + len(review["targets_without_value"])
    assert page.locator("#target-checks tbody tr").count() == checks
    assert page.locator("#targets tbody tr").count() >= 2  # the built-in usage-rate targets
    assert errors == []


def test_impact_page_draws_before_after_and_risers(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/impact")
    page.fill("input[name=around]", "2026-08-01")
    page.click("form.pickers button[type=submit]")
    page.wait_for_url("**around=2026-08-01*")
    _wait_for_charts(page)
    assert page.locator("#before-after-chart svg .mark-line.role-mark path").count() == 1
    assert page.locator("#before-after-chart svg .mark-rect.role-mark path").count() >= 4  # one bar a month
    assert page.locator("#risers-chart svg .mark-rect.role-mark path").count() == 2  # risers, fallers
    twin = _api(page, live_server, "/api/v1/impact?around=2026-08-01")
    change = twin["before_after"][0]["relative_change"]
    assert f"{100 * change:+.1f} %" in page.locator(".before-after").first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "impact.png"), full_page=True)
    assert errors == []


def test_kpi_page_draws_the_target_and_shows_trends(analyst, live_server, errors):
    page = analyst
    page.goto(live_server + "/kpis/active_partner_rate")
    _wait_for_charts(page)
    twin = _api(page, live_server, "/api/v1/kpis/active_partner_rate")
    assert twin["targets"] and {t["value"] for t in twin["targets"]} == {75.0}
    chart = page.locator("#kpi-chart svg")
    assert chart.locator(".mark-line.role-mark path").count() == 2  # the program and the target
    assert page.locator("#trends tbody tr").count() == len(twin["trends"]) == 6
    assert page.locator(".moves-with li a").count() == len(twin["moves_with"]) > 0
    assert errors == []


def test_staff_see_the_health_score_on_the_partner_page(analyst, live_server, demo_partner, errors):
    page = analyst
    page.goto(live_server + f"/partners/{demo_partner}")
    twin = _api(page, live_server, f"/api/v1/partners/{demo_partner}")
    health = page.locator("#health")
    assert f"{twin['health']['score']:.0f}" in health.locator("h2").inner_text()
    # a row per component (7) and per cap (3: overdue compliance, unacknowledged policy, inactivity)
    rows = len(twin["health"]["components"]) + len(twin["health"]["caps"])
    assert health.locator("tbody tr").count() == rows == 10
    assert errors == []


def test_lifecycle_page_charts(analyst, live_server, errors):
    page = analyst
    page.click("header.top nav a:has-text('Lifecycle')")
    page.wait_for_url("**/lifecycle")
    _wait_for_charts(page)
    twin = _api(page, live_server, "/api/v1/lifecycle")
    months = [r for r in twin["lifecycle"]["rows"] if not r["segment"]]
    bars = page.locator("#lifecycle-chart svg .mark-rect.role-mark path").count()
    assert bars == sum(1 for r in months for s in ("new", "returning", "resurrecting", "dormant") if r[s])
    assert page.locator("#stickiness-chart svg .mark-rect.role-mark path").count() == twin["stickiness"]["n"] + 1
    assert errors == []


def test_every_kpi_tile_is_coloured_by_its_status(analyst, live_server, errors):
    from partnerkpi.catalog import load_catalog

    page = analyst
    page.goto(live_server + "/")
    tiles = page.locator("article.tile")
    judged = page.locator("article.tile.status-good, article.tile.status-watch, article.tile.status-poor")
    assert judged.count() == tiles.count() == len(load_catalog())  # no tile left grey
    assert page.locator("article.tile.status-none").count() == 0
    titles = [judged.nth(i).get_attribute("title") for i in range(judged.count())]
    assert all(t.startswith(("vs target ", "band ", "vs baseline ")) for t in titles), titles
    tile = page.locator('article.tile[data-kpi="active_partner_rate"]')
    assert tile.locator(".basis").text_content().strip() == tile.get_attribute("title")
    assert page.locator(".status-legend").count() == 1
    border = tile.evaluate("el => getComputedStyle(el).borderLeftColor")
    assert border in {"rgb(46, 158, 91)", "rgb(224, 161, 0)", "rgb(214, 69, 65)"}  # green, amber, red
    assert errors == []


@pytest.fixture
def empty_server(tmp_path):
    """The app over a database that holds only an analyst, served on a free loopback port."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    db = tmp_path / "empty.duckdb"
    with Hub.open(db) as hub:
        Credentials(hub.store).add_user(*BROWSER_ANALYST, "analyst")
    with serve(db) as base:
        yield base, db


def test_signing_in_on_an_empty_database_shows_the_import_prompt(page, empty_server, errors):
    base, db = empty_server
    sign_in(page, base, BROWSER_ANALYST)
    prompt = page.locator("#import-prompt")
    assert prompt.is_visible()
    text = prompt.inner_text()
    assert "Import your data" in text and "There are no partners and no events" in text
    assert f"partnerkpi import --db {db} partners.csv users.csv events.parquet" in text
    assert f"partnerkpi import --server {base} --token TOKEN" in text and f"{base}/v1/batch" in text
    page.click("nav a:has-text('Partners')")
    page.wait_for_url("**/partners")
    assert page.locator("#import-prompt").is_visible() and page.locator("table.partners").count() == 0
    assert errors == []
