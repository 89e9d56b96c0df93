"""The quarterly report on a hand-made program: both editions as PDF (read back with poppler), the HTML, the
JSON twin, the CLI and the web routes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from partnerkpi.access import UnknownPartnerError
from partnerkpi.clock import FixedClock
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.reports.build import build_report
from partnerkpi.reports.render import render_report, report_html, report_pdf
from tests.kpi_fixtures import RECEIVED, Fixture, iso
from tests.web_fixtures import ANALYST, sign_in

CANARY = "ZEBRA-CANARY"
PERIOD = "2026-Q3"
FOOTER = "Data as of 2026-10-01 00:00 UTC · Generated 2030-01-01 00:00 UTC"  # watermark, then the fixed clock
PARTNER_A = ("pat@a.example", "partner-pass")


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Fixture:
    """Seven partners: A..F resellers (B's name carries the canary), G a distributor.

    Q3 2026: every partner logs in (2026-08-02), deals A 250, B 100, C 200, D 300, E 400, F 500, G 50.
    Q2 2026: only A and B log in, deals A 100, C 200. A's last login is 2026-09-30, so the watermark (and
    the data's now) is 2026-10-01. A has one task due 2026-09-20 (11 days overdue at 10-01); B's task title
    carries the canary; one required policy "Code of Conduct", acknowledged by B only.
    """
    fx = Fixture(tmp_path_factory.mktemp("report"))
    for pid in "ABCDEF":
        fx.partner(pid, type="reseller", name=f"{CANARY} Ltd" if pid == "B" else None)
    fx.partner("G", type="distributor")
    for pid in "ABCDEFG":
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
    fx.event("Task Assigned", "2026-09-01", partner="B", object="tB", kind="compliance", due_at=iso("2026-09-20"),
             title=f"{CANARY} secret task")
    fx.event("Policy Published", "2026-07-05", object="pol1", required=True, title="Code of Conduct")
    fx.event("Policy Acknowledged", "2026-07-06", partner="B", user="uB", object="pol1")
    fx.event("Logged In", "2026-09-30 12:00", user="uA", partner="A")
    fx.hub()
    return fx


@pytest.fixture(scope="module")
def editions(program, tmp_path_factory) -> dict[str, object]:
    """Both models, their HTML (A4) and PDFs: internal on A4, partner A on Letter (and internal on Letter)."""
    hub = program.hub()
    out = tmp_path_factory.mktemp("pdf")
    internal, partner = build_report(hub, PERIOD, "internal"), build_report(hub, PERIOD, "partner:A")
    made: dict[str, object] = {"internal": internal, "partner": partner}
    for name, report, paper in (("internal", internal, "A4"), ("partner", partner, "Letter")):
        html = report_html(report, paper)
        made[f"{name}.html"] = html
        path = out / f"{name}.pdf"
        path.write_bytes(report_pdf(html))
        made[f"{name}.pdf"] = path
    letter = out / "internal-letter.pdf"
    letter.write_bytes(report_pdf(report_html(internal, "Letter")))
    made["internal-letter.pdf"] = letter
    return made


def pdf_text(path: Path, page: int | None = None) -> str:
    pages = [] if page is None else ["-f", str(page), "-l", str(page)]
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def pdf_info(path: Path) -> dict[str, str]:
    text = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def test_internal_pdf_page_one_tells_the_quarter(editions):
    path = editions["internal.pdf"]
    first = " ".join(pdf_text(path, 1).split())
    # Partner revenue: Q3 250+100+200+300+400+500+50 = 1,800; Q2 100+200 = 300; change +1,500.
    assert "Partner-sourced Revenue $1,800 +$1,500" in first
    # Active partner rate: Q3 7 of 7 partners active = 100.0 %; Q2 2 of 7 = 28.6 %; +71.4 points.
    assert "Active Partner Rate 100.0 % +71.4 pp" in first
    assert "Partner program review 2026-Q3" in first
    assert "What improved" in first and "What worsened" in first


def test_internal_model_improved_and_segments(editions):
    internal = editions["internal"]
    revenue = next(m for m in internal.improved if m.kpi == "partner_revenue")
    assert (revenue.before, revenue.after, revenue.change) == ("$300", "$1,800", "+$1,500")
    # By type in Q3: resellers 250+100+200+300+400+500 = 1,750; the distributor G 50.
    assert internal.segment_values == ("distributor", "reseller")
    (row,) = [s for s in internal.segments if s.kpi == "partner_revenue"]
    assert row.cells == {"distributor": "$50", "reseller": "$1,750"}
    assert "Segments by type" in pdf_text(editions["internal.pdf"])


def test_every_page_prints_filters_watermark_and_generation_time(editions):
    for name, audience in (("internal.pdf", "internal"), ("partner.pdf", "partner:A")):
        path = editions[name]
        pages = int(pdf_info(path)["Pages"])
        assert pages >= 2  # the running header and footer are checked on more than one page
        for n in range(1, pages + 1):
            text = " ".join(pdf_text(path, n).split())
            assert f"Period {PERIOD} · Audience {audience}" in text, (name, n)
            assert FOOTER in text, (name, n)
            assert f"Page {n} of {pages}" in text, (name, n)


def test_paper_sizes_and_one_png_per_page(editions, tmp_path):
    assert "(A4)" in pdf_info(editions["internal.pdf"])["Page size"]
    assert "letter" in pdf_info(editions["internal-letter.pdf"])["Page size"]
    assert "letter" in pdf_info(editions["partner.pdf"])["Page size"]
    path = editions["internal.pdf"]
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == int(pdf_info(path)["Pages"])
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_partner_pdf_holds_its_tasks_policies_and_peers(editions):
    text = " ".join(pdf_text(editions["partner.pdf"]).split())
    assert "Send the Q3 plan compliance 2026-09-20 11 days" in text
    assert "Code of Conduct 2026-07-05 88" in text  # published 07-05, 88 days before 10-01
    # A's revenue 250 against its reseller peers B..F (100, 200, 300, 400, 500): median 300, top quartile 400
    assert "$250 +$150 $300 $400 5 below" in text  # (the KPI's name and "median" wrap in their cells)
    (line,) = [p for p in editions["partner"].peers if p.kpi == "partner_revenue"]
    assert (line.display, line.peer_median, line.peer_top_quartile, line.peers_n, line.position) == (
        "$250", "$300", "$400", 5, "below median")
    partner = editions["partner"]
    # Below the peer median: overdue compliance tasks (A 1, median 0: off by 1 / max(|0|, 1) = 100 %) and revenue
    # (250 vs 300: off by 50 / 300 = 16.7 %), the farthest first, each with the catalog's levers.
    assert [(d.kpi, round(d.distance, 3)) for d in partner.decisions] == [
        ("overdue_compliance_tasks", 1.0), ("partner_revenue", 0.167)]
    assert "Suggested next steps" in text and partner.decisions[1].levers[0] in text


def test_the_canary_of_b_never_reaches_as_edition(editions):
    assert CANARY not in pdf_text(editions["partner.pdf"])
    assert CANARY not in editions["partner.html"]
    assert CANARY not in json.dumps(editions["partner"].to_json())
    assert "Partner B" not in editions["partner.html"] and "uB" not in editions["partner.html"]


def test_render_report_is_the_one_renderer(program, editions):
    hub = program.hub()
    html = render_report(hub, PERIOD, "partner:A", paper="Letter", fmt="html")
    assert html.decode() == report_html(editions["partner"], "Letter")
    with pytest.raises(UnknownPartnerError):
        render_report(hub, PERIOD, "partner:NOPE")
    with pytest.raises(UsageError):
        render_report(hub, PERIOD, "everyone")
    with pytest.raises(UsageError):
        render_report(hub, "2026-07", "internal")


def test_a_burst_shares_one_memo_and_gets_the_same_editions(program, editions):
    from partnerkpi.access import DictMemo

    hub, memo = program.hub(), DictMemo()
    first = render_report(hub, PERIOD, "partner:A", paper="Letter", memo=memo)
    per_partner = [k for k in memo.entries if k[0] == "per_partner"]
    assert len(per_partner) == 1  # the peers' rows of every partner, computed once
    rows = memo.entries[per_partner[0]]
    render_report(hub, PERIOD, "partner:C", memo=memo)
    assert memo.entries[per_partner[0]] is rows and len([k for k in memo.entries if k[0] == "per_partner"]) == 1
    assert first.decode() == editions["partner.html"]  # the memo changes nothing in the document


def test_cli_writes_html_to_stdout_and_a_pdf_needs_out(program, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from partnerkpi.cli import app

    program.hub().close()
    program._hub = None
    db = str(program.dir / "hub.duckdb")
    runner = CliRunner()
    needs_out = runner.invoke(app, ["report", "--db", db, "--period", PERIOD, "--format", "pdf"])
    assert needs_out.exit_code != 0 and "--out" in str(needs_out.exception)
    html = runner.invoke(app, ["report", "--db", db, "--period", PERIOD, "--audience", "partner:A"])
    assert html.exit_code == 0, html.output
    assert "Send the Q3 plan" in html.stdout and CANARY not in html.stdout


@pytest.fixture(scope="module")
def client(program):
    from partnerkpi.credentials import Credentials
    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app

    if program._hub is not None:
        program.hub().close()
        program._hub = None
    db = program.dir / "hub.duckdb"
    hub = Hub.open(db, clock=FixedClock(RECEIVED))
    creds = Credentials(hub.store)
    creds.add_user(*ANALYST, "analyst")
    creds.add_user(*PARTNER_A, "partner", "A")
    with TestClient(create_app(Settings(db=str(db)), hub=hub)) as c:
        yield c
    hub.close()


def test_web_pdf_json_twin_and_partner_scope(client, editions):
    assert sign_in(client, *ANALYST).status_code == 303
    pdf = client.get("/reports/document.pdf", params={"period": PERIOD, "audience": "internal"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    twin = client.get("/api/v1/reports", params={"period": PERIOD, "audience": "internal"})
    assert twin.json() == {"data_as_of": "2026-10-01T00:00:00Z", **editions["internal"].to_json()}
    page = client.get("/reports", params={"period": PERIOD, "audience": "partner:A"})
    assert page.status_code == 200 and "/reports/document?period=2026-Q3&amp;audience=partner%3AA" in page.text
    document = client.get("/reports/document", params={"period": PERIOD, "audience": "partner:A", "paper": "Letter"})
    assert document.text == editions["partner.html"]
    client.post("/signout", data={}, follow_redirects=False)
    client.cookies.clear()

    assert sign_in(client, *PARTNER_A).status_code == 303
    other = client.get("/reports/document.pdf", params={"period": PERIOD, "audience": "partner:B"})
    assert other.status_code == 404 and CANARY not in other.text
    assert client.get("/api/v1/reports", params={"period": PERIOD, "audience": "partner:B"}).status_code == 404
    assert client.get("/api/v1/reports", params={"period": PERIOD, "audience": "internal"}).status_code == 403
    own = client.get("/api/v1/reports", params={"period": PERIOD})
    assert own.status_code == 200
    assert own.json() == {"data_as_of": "2026-10-01T00:00:00Z", **editions["partner"].to_json()}
    picker = client.get("/reports", params={"period": PERIOD})
    assert 'value="partner:A"' in picker.text and 'value="internal"' not in picker.text
    assert CANARY not in picker.text


def test_the_sparklines_reach_six_quarters_back_but_not_before_1900():
    from datetime import datetime

    from partnerkpi.reports.build import history_start

    assert history_start(datetime(2026, 7, 1)) == datetime(2025, 4, 1)  # 2025-Q2 .. 2026-Q3
    assert history_start(datetime(1900, 7, 1)) == datetime(1900, 1, 1)  # not 1899-04-01
