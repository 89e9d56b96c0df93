"""The pages in a real browser (Debian chromium): tiles, rendered charts, pickers; writes the README screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _wait_for_charts(page) -> None:
    page.wait_for_function(ALL_RENDERED, timeout=30_000)
    failed = page.locator('[data-rendered="error"]')
    assert failed.count() == 0, failed.first.text_content()


def test_scorecard_shows_tiles_and_sparklines(page, live_server, errors):
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


def test_kpi_page_draws_the_chart_with_bands_and_benchmarks(page, live_server, errors):
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


def test_switching_segment_and_grain_with_the_form(page, live_server, errors):
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
