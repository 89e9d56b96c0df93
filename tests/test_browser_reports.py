"""The Reports page and the download buttons in a real browser (Debian chromium), over a small hand-made
program: both editions previewed in the page's frame, the PDF download, a partner user's limits, the
scorecard's CSV and XLSX downloads read back against the JSON twin, and the partner list's download with its
search and sort; writes docs/screenshots/reports.png."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import BROWSER_ANALYST, serve, sign_in
from tests.kpi_fixtures import RECEIVED, Fixture, iso

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PERIOD = "2026-Q3"
PARTNER_A = ("pat@acme.example", "partner-pass")
NAMES = {"A": "Acme Channel", "B": "Borealis Supply", "C": "Cobalt Systems", "D": "Delta Partners",
         "E": "Ember IT", "F": "Fjord Solutions", "G": "Granite Distribution"}


@pytest.fixture(scope="module")
def program_db(tmp_path_factory) -> Path:
    """Seven partners with names: A..F resellers, G a distributor; an analyst and a partner user of A.

    Q3 2026: every partner logs in (2026-08-02), deals A 250, B 100, C 200, D 300, E 400, F 500, G 50 (1,800).
    Q2 2026: only A and B log in, deals A 100, C 200 (300). A's last login 2026-09-30 puts the watermark at
    2026-10-01, so 2026-Q3 is the last quarter the data covers completely. A has one compliance task.
    """
    from partnerkpi.credentials import Credentials

    fx = Fixture(tmp_path_factory.mktemp("reports"))
    for pid, name in NAMES.items():
        fx.partner(pid, type="distributor" if pid == "G" else "reseller", name=name)
        fx.user(f"u{pid}", pid)
        fx.event("Logged In", "2026-08-02 09:00", user=f"u{pid}", partner=pid)
    for pid in "AB":
        fx.event("Logged In", "2026-05-02 09:00", user=f"u{pid}", partner=pid)
    for pid, amount in {"A": 250, "B": 100, "C": 200, "D": 300, "E": 400, "F": 500, "G": 50}.items():
        fx.event("Deal Closed", "2026-08-15", partner=pid, user=f"u{pid}", object=f"d{pid}", amount=amount)
    for pid, amount in {"A": 100, "C": 200}.items():
        fx.event("Deal Closed", "2026-05-15", partner=pid, user=f"u{pid}", object=f"q{pid}", amount=amount)
    fx.event("Task Assigned", "2026-09-01", partner="A", object="tA", kind="compliance", due_at=iso("2026-09-20"),
             title="Send the Q3 plan")
    fx.event("Logged In", "2026-09-30 12:00", user="uA", partner="A")
    hub = fx.hub()
    creds = Credentials(hub.store)
    creds.add_user(*BROWSER_ANALYST, "analyst")
    creds.add_user(*PARTNER_A, "partner", "A")
    hub.close()
    return fx.dir / "hub.duckdb"


@pytest.fixture(scope="module")
def reports_server(program_db: Path) -> Iterator[str]:
    """The app over the program, its hub on the fixtures' fixed clock (so "Generated" is 2030-01-01)."""
    from partnerkpi.clock import FixedClock
    from partnerkpi.hub import Hub

    hub = Hub.open(program_db, clock=FixedClock(RECEIVED))
    try:
        with serve(program_db, hub=hub) as base:
            yield base
    finally:
        hub.close()


@pytest.fixture
def errors(page) -> list[str]:
    """JavaScript errors of the page (there must be none)."""
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def _frame_text(page) -> str:
    """The report frame's visible text, whitespace collapsed, once its document has loaded."""
    frame = page.frame_locator("iframe.report-frame")
    frame.locator("h1").wait_for()
    return " ".join(frame.locator("body").inner_text().split())


def _frame_html(page) -> str:
    (frame,) = [f for f in page.frames if "/reports/document" in f.url]
    return frame.content()


def _download(page, selector: str) -> tuple[str, bytes]:
    """Click a download link; the file's suggested name and bytes."""
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True)
    return " ".join(out.stdout.split())


def _show(page, period: str, audience: str) -> None:
    """Pick a period and an edition on the Reports page and submit."""
    page.select_option("form.pickers select[name=period]", period)
    page.select_option("form.pickers select[name=audience]", audience)
    page.click("form.pickers button[type=submit]")
    page.wait_for_url(f"**/reports?*audience={audience.replace(':', '%3A')}*")


def test_analyst_previews_both_editions_and_downloads_the_pdf(page, reports_server, tmp_path, errors):
    sign_in(page, reports_server, BROWSER_ANALYST)
    page.click("header.top nav a:has-text('Reports')")
    page.wait_for_url("**/reports")
    offered = page.locator("select[name=audience] option").evaluate_all("os => os.map(o => o.value)")
    assert offered == ["internal", *(f"partner:{p}" for p in NAMES)]
    assert PERIOD in page.locator("select[name=period] option").all_inner_texts()

    _show(page, PERIOD, "internal")
    text = _frame_text(page)
    assert "Partner program review 2026-Q3" in text
    # Revenue: Q3 250+100+200+300+400+500+50 = 1,800 against Q2 100+200 = 300; 7 of 7 partners active in Q3
    # against 2 of 7 (28.6 %) in Q2.
    assert "Partner-sourced Revenue $1,800 +$1,500" in text
    assert "Active Partner Rate 100.0 % +71.4 pp" in text
    assert "Data as of 2026-10-01 00:00 UTC · Generated 2030-01-01 00:00 UTC" in text
    assert "Segments by type" in text
    frame = page.locator("iframe.report-frame").bounding_box()
    assert frame["width"] >= 1200 and frame["height"] >= 700  # 80 % of the 900 px viewport, not the bare 300x150
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reports.png"), full_page=True)

    _show(page, PERIOD, "partner:A")
    assert page.locator("select[name=audience]").input_value() == "partner:A"
    text = _frame_text(page)
    assert "Acme Channel: partner review 2026-Q3" in text
    assert "Your KPIs against your peers, 2026-Q3" in text
    # A's revenue 250 (Q2 100, so +150) against its five reseller peers 100..500: median 300, top quartile 400.
    assert "Partner-sourced Revenue $250 +$150 $300 $400 5 below median" in text
    assert "Send the Q3 plan" in text
    html = _frame_html(page)
    for pid, name in NAMES.items():
        if pid != "A":
            assert name not in text and name not in html, name

    href = page.locator("a:has-text('Download PDF')").get_attribute("href")
    assert href == "/reports/document.pdf?period=2026-Q3&audience=partner%3AA&paper=A4"
    name, pdf = _download(page, "a:has-text('Download PDF')")
    assert name == "partnerkpi-2026-Q3-partner-A.pdf"
    assert pdf.startswith(b"%PDF")
    printed = _pdf_text(pdf, tmp_path)
    assert "Acme Channel: partner review 2026-Q3" in printed and f"Period {PERIOD}" in printed
    assert not any(n in printed for pid, n in NAMES.items() if pid != "A")
    assert errors == []


def test_partner_user_is_offered_only_its_own_edition(page, reports_server, errors):
    sign_in(page, reports_server, PARTNER_A)
    assert page.url.endswith("/partners/A")
    page.click("header.top nav a:has-text('Reports')")
    page.wait_for_url("**/reports")
    offered = page.locator("select[name=audience] option").evaluate_all("os => os.map(o => o.value)")
    assert offered == ["partner:A"]
    picker = page.locator("form.pickers").inner_text()
    assert not any(n in picker for pid, n in NAMES.items() if pid != "A")
    text = _frame_text(page)
    assert "Acme Channel: partner review 2026-Q3" in text

    for path in ("/reports/document", "/reports/document.pdf", "/reports"):
        response = page.goto(f"{reports_server}{path}?period={PERIOD}&audience=partner%3AB")
        assert response.status == 404, path
        assert NAMES["B"] not in page.content()
    internal = page.request.get(f"{reports_server}/reports/document?period={PERIOD}&audience=internal")
    assert internal.status == 403
    assert errors == []


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def _cell(value: Any) -> str:
    """A JSON value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_scorecard_downloads_equal_the_json_twin(page, reports_server, errors):
    import openpyxl

    sign_in(page, reports_server, BROWSER_ANALYST)
    filters = "grain=quarter&by=type&from=2026-04-01&to=2026-10-01"
    page.goto(f"{reports_server}/?{filters}")
    links = page.locator("form.pickers .download a")
    assert links.all_inner_texts() == ["CSV", "XLSX", "PARQUET"]
    for link in links.all():
        href = link.get_attribute("href")
        assert "grain=quarter" in href and "by=type" in href and "from=2026-04-01" in href, href

    twin = page.request.get(f"{reports_server}/api/v1/scorecard?{filters}")
    assert twin.ok, twin.text()
    rows = twin.json()["rows"]

    name, data = _download(page, "form.pickers .download a:has-text('CSV')")
    assert name == "scorecard.csv"
    table = _csv_rows(data)
    assert len(table) == len(rows) > 0
    for got, want in zip(table, rows, strict=True):
        assert got["kpi"] == want["kpi"] and got["period"] == want["period"]
        assert got.get("segment.type", "") == want["segment"].get("type", "")
        assert got["value"] == _cell(want["value"]) and got["status"] == _cell(want["status"])
    # Revenue by type in Q3: the resellers 250+100+200+300+400+500 = 1,750, the distributor 50.
    revenue = {r.get("segment.type", ""): r["value"] for r in table
               if r["kpi"] == "partner_revenue" and r["period"] == PERIOD}
    assert {k: float(v) for k, v in revenue.items()} == {"": 1800.0, "reseller": 1750.0, "distributor": 50.0}

    name, data = _download(page, "form.pickers .download a:has-text('XLSX')")
    assert name == "scorecard.xlsx" and data.startswith(b"PK")
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(table[0].keys())
    assert len(cells) == len(rows)
    col = {c: i for i, c in enumerate(header)}
    for got, want in zip(cells, rows, strict=True):
        assert got[col["kpi"]] == want["kpi"] and got[col["period"]] == want["period"]
        assert (got[col["segment.type"]] or "") == want["segment"].get("type", "")
        # a spreadsheet number keeps 15 significant digits (Excel's precision), so 200/7 differs in the last bit
        assert got[col["value"]] == (None if want["value"] is None else pytest.approx(want["value"], rel=1e-15))
    assert errors == []


def test_partners_download_carries_the_search_and_a_partner_gets_only_its_own(page, reports_server, errors):
    sign_in(page, reports_server, BROWSER_ANALYST)
    page.goto(f"{reports_server}/partners")
    page.fill("input[name=q]", "reseller")
    page.click("form.pickers button[type=submit]")
    page.wait_for_url("**/partners?*q=reseller*")
    page.click("table.partners th a:has-text('Name')")  # sort by name, ascending
    page.wait_for_url("**sort=name*")
    page.click("table.partners th a:has-text('Name')")  # and again: descending
    page.wait_for_url("**order=desc*")
    name, data = _download(page, "h1 .download a:has-text('CSV')")
    assert name == "partners.csv"
    # The six resellers by name, Z to A; the distributor G is left out by the search.
    assert [r["name"] for r in _csv_rows(data)] == sorted((NAMES[p] for p in "ABCDEF"), reverse=True)
    page.click("header.top form.who button")
    page.wait_for_url("**/signin")

    sign_in(page, reports_server, PARTNER_A)
    page.goto(f"{reports_server}/partners")
    assert page.locator("table.partners tbody tr").count() == 1
    name, data = _download(page, "h1 .download a:has-text('CSV')")
    assert [(r["partner_id"], r["name"]) for r in _csv_rows(data)] == [("A", NAMES["A"])]
    assert errors == []
