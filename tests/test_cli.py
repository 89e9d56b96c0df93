"""The command line as other tools use it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.kpi_fixtures import Fixture
from tests.web_fixtures import build_program

ROOT = Path(__file__).resolve().parents[1]
SPEC_KEYS = [
    "kpi", "period", "period_start", "period_end", "segment", "value", "numerator", "denominator", "n",
    "unit", "band", "previous", "change", "status", "status_basis",
]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PARTNERKPI_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "partnerkpi.cli", *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def program(tmp_path):
    """Three resellers and one agency; in July 2026 two resellers and the agency are active."""
    return build_program(tmp_path)


def test_scorecard_json_follows_the_spec_row_shape(program):
    result = run("scorecard", "--db", str(program), "--grain", "month", "--from", "2026-07-01",
                 "--to", "2026-08-01", "--by", "type", "--kpi", "active_partner_rate", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(r) for r in rows] == [SPEC_KEYS] * 3  # program, agency, reseller
    program_row, agency, reseller = rows
    # program: 3 of 4 partners active in July = 75 %; June: 1 of 4 = 25 %
    assert program_row == {
        "kpi": "active_partner_rate", "period": "2026-07", "period_start": "2026-07-01T00:00:00Z",
        "period_end": "2026-08-01T00:00:00Z", "segment": {}, "value": 75.0, "numerator": 3,
        "denominator": 4, "n": 4, "unit": "%", "band": "strong", "previous": 25.0, "change": 50.0,
        "status": "good", "status_basis": "target",  # 75 meets the built-in target of 75 (from 2026-01-01)
    }
    assert agency["segment"] == {"type": "agency"} and agency["value"] == 100.0
    # resellers: 2 of 3 = 66.666...% (not rounded), moderate; June 1 of 3
    assert reseller["segment"] == {"type": "reseller"}
    assert reseller["value"] == pytest.approx(200 / 3, rel=1e-15) and reseller["band"] == "moderate"
    assert reseller["change"] == pytest.approx(100 / 3, rel=1e-12)


def test_scorecard_csv_has_the_same_columns(program):
    result = run("scorecard", "--db", str(program), "--from", "2026-07-01", "--to", "2026-08-01",
                 "--kpi", "active_partner_rate", "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, line = result.stdout.strip().splitlines()
    assert header.split(",") == SPEC_KEYS
    assert line == ("active_partner_rate,2026-07,2026-07-01T00:00:00Z,2026-08-01T00:00:00Z,,75.0,3,4,4,%,strong,"
                    "25.0,50.0,good,target")


def test_table_shows_every_requested_kpi_with_its_value(program):
    result = run("scorecard", "--db", str(program), "--from", "2026-07-01", "--to", "2026-08-01",
                 "--kpi", "active_partner_rate", "--kpi", "login_frequency")
    assert result.returncode == 0, result.stderr
    assert "Active Partner Rate" in result.stdout and "75.0 %" in result.stdout
    assert "Login Frequency" in result.stdout and "Partner Churn" not in result.stdout


def test_unknown_kpi_says_what_and_suggests_the_right_id(program):
    result = run("scorecard", "--db", str(program), "--from", "2026-07-01", "--to", "2026-08-01",
                 "--kpi", "active_partner_rat")
    assert result.returncode == 2
    assert "active_partner_rat" in result.stderr and "active_partner_rate" in result.stderr


def test_bad_dates_and_unknown_trait_are_usage_errors(program):
    bad_date = run("scorecard", "--db", str(program), "--from", "July", "--to", "2026-08-01")
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
    bad_trait = run("scorecard", "--db", str(program), "--from", "2026-07-01", "--to", "2026-08-01",
                    "--by", "colour")
    assert bad_trait.returncode == 2 and "colour" in bad_trait.stderr and "type" in bad_trait.stderr


def test_explain_prints_all_twelve_attributes_and_the_latest_value(program):
    result = run("explain", "portal_usage_rate", "--db", str(program))
    assert result.returncode == 0, result.stderr
    for title in ("Definition", "Business insights", "Measurement approach", "Standard formula",
                  "Trend analysis", "Diagnostic questions", "Improvement levers", "Visualization",
                  "Risk warnings", "Tools and technologies", "Integration points", "Change impact"):
        assert title in result.stdout
    # latest month with data is July 2026: 3 active users / 4 partners = 75 %
    assert re.search(r"75\.0 % in 2026-07 \(band: strong\)", result.stdout)


def test_readme_starts_with_the_two_commands_and_names_every_cli_command():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
    from partnerkpi.cli import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert names >= {"import", "scorecard", "kpis", "explain", "demo", "serve", "review", "trends"}
    groups = {g.name for g in app.registered_groups}
    assert groups >= {"users", "tokens", "keys"}
    names |= groups
    for name in names:
        assert f"partnerkpi {name}" in readme


USER_KPI = """
- id: webinar_signups
  name: Webinar Sign-ups per Partner
  category: engagement
  unit: per partner
  direction: up
  compute: {kind: per_partner, events: [Webinar Signed Up]}
  definition: Webinar Signed Up events in the period per partner in the period.
  business_insights: Shows appetite for enablement.
  measurement_approach: Count the custom event from the hub's webinar tool.
  formula: Webinar Signed Up in P / partners in P
  trend_analysis: Should rise after each enablement campaign.
  diagnostic_questions: ["Are invitations reaching the right contacts?"]
  improvement_levers: [Announce webinars on the hub home page.]
  visualization: Monthly bars per partner type.
  risk_warnings: [A drop after a campaign means invitations failed.]
  tools: [The webinar tool's export.]
  integration_points: [Enablement calendar.]
  change_impact: More sign-ups usually precede higher task completion.
  related: [{kpi: task_completion_rate, effect: trained partners finish tasks on time more often}]
"""


def test_a_users_own_kpi_is_validated_loaded_and_computed(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-01-01")
    fx.partner("B", onboarded="2026-01-01")
    fx.user("ua", "A")
    fx.event("Webinar Signed Up", "2026-07-02 10:00", user="ua")
    fx.event("Webinar Signed Up", "2026-07-09 10:00", user="ua")
    fx.event("Webinar Signed Up", "2026-07-16 10:00", user="ua")
    fx.event("Data Checkpoint", "2026-07-31 12:00")  # the data covers July
    fx.hub().close()
    catalog = tmp_path / "ours.yaml"
    catalog.write_text(USER_KPI)
    result = run("scorecard", "--db", str(tmp_path / "hub.duckdb"), "--catalog", str(catalog), "--from",
                 "2026-07-01", "--to", "2026-08-01", "--kpi", "webinar_signups", "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    # 3 sign-ups / 2 partners in July
    assert (row["value"], row["numerator"], row["denominator"], row["unit"]) == (1.5, 3, 2, "per partner")

    catalog.write_text(USER_KPI.replace("kind: per_partner", "kind: stickiness").replace(
        "kpi: task_completion_rate", "kpi: no_such_kpi"))
    broken = run("kpis", "--catalog", str(catalog))
    assert broken.returncode == 4
    assert "stickiness" in broken.stderr and "no_such_kpi" in broken.stderr and str(catalog) in broken.stderr


def test_a_taken_port_is_reported_before_any_work_with_a_free_one(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("demo", "--db", str(tmp_path / "demo.duckdb"), "--port", str(port), "--via-make",
                     "--out", str(tmp_path / "demo-data"))
        plain = run("serve", "--db", str(tmp_path / "demo.duckdb"), "--port", str(port))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    suggested = int(re.search(rf"port {port} is in use on 127\.0\.0\.1; run `make demo PORT=(\d+)`", message)[1])
    assert suggested > port
    assert "partnerkpi serve --port" in " ".join(plain.stderr.split()) and plain.returncode == 2
    assert list(tmp_path.iterdir()) == []  # no data generated, no database made


def test_the_templates_load_as_they_are_and_out_never_overwrites(tmp_path, program):
    targets = run("targets", "init")
    assert targets.returncode == 0 and targets.stdout.startswith("# partnerkpi targets")
    assert "judgment" in targets.stdout
    rules = tmp_path / "alerts.yaml"
    assert run("alerts", "init", "--out", str(rules)).returncode == 0
    again = run("alerts", "init", "--out", str(rules))
    assert again.returncode == 2 and "exists already" in again.stderr and "--force" in again.stderr
    from partnerkpi.hub import Hub
    from partnerkpi.insights.alerts import load_rules
    from partnerkpi.insights.targets import TargetBook

    (tmp_path / "targets.yaml").write_text(targets.stdout)
    with Hub.open(program, read_only=True) as hub:
        def entries(book: TargetBook) -> list[tuple]:
            return [(t.kpi, t.effective_from, t.value) for t in book.targets]

        # the template restates the defaults: loading it changes nothing
        assert entries(TargetBook.load(tmp_path / "targets.yaml", catalog=hub.catalog)) == entries(
            TargetBook.load(None, catalog=hub.catalog)) == [
            ("active_partner_rate", date(2026, 1, 1), 75), ("portal_usage_rate", date(2026, 1, 1), 75)]
        assert [r.id for r in load_rules(rules, hub).rules] == [r.id for r in load_rules(None, hub).rules]
