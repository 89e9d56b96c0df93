"""At-risk and inactive lists (insights/risk.py) and the health commands, on the hand-made program of
test_health."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import typer
from typer.testing import CliRunner

from partnerkpi.insights.risk import at_risk, inactive
from tests.test_health import AS_OF, CONFIG, build, config


@pytest.fixture
def fx(tmp_path):
    return build(tmp_path)


def test_inactive_lists_never_active_first_then_longest_idle(fx):
    hub = fx.hub()
    found = inactive(hub, AS_OF, days=30, config=config())
    # A was active on Jun 21 (10 days before); C never; B last on Jan 15; D is not in the program
    assert [(e.partner_id, e.days_inactive) for e in found] == [("C", None), ("B", pytest.approx(167.0))]
    assert found[1].last_active == datetime(2026, 1, 15)
    assert found[1].traits == {"type": "reseller", "tier": "gold", "region": "emea"}
    assert [e.partner_id for e in inactive(hub, AS_OF, days=10, config=config())] == ["C", "B"]  # Jun 21 = edge
    assert [e.partner_id for e in inactive(hub, AS_OF, days=9, config=config())] == ["C", "B", "A"]


def test_at_risk_with_reasons_trend_and_levers(fx):
    hub = fx.hub()
    found = at_risk(hub, AS_OF, config())
    assert [e.partner_id for e in found] == ["B"]
    b = found[0]
    assert (b.score, b.level) == (pytest.approx(35.0), "at_risk")
    assert b.reasons == ("no activity for 167 days",)
    # every 30 days up to July 1: recency is 0 from 40 days on, everything else is neutral or perfect
    assert b.trend == (("2026-05-02", pytest.approx(35.0)), ("2026-06-01", pytest.approx(35.0)),
                       ("2026-07-01", pytest.approx(35.0)))
    # only recency hurts: the levers of its KPI, active_partner_rate
    assert b.levers == hub.kpi("active_partner_rate").improvement_levers
    assert json.loads(json.dumps(b.to_dict()))["trend"][0] == {"as_of": "2026-05-02", "score": pytest.approx(35.0)}


def test_levers_follow_the_hurting_components_worst_first(fx):
    from partnerkpi.insights.health import health_scores
    from partnerkpi.insights.risk import suggested_levers

    hub = fx.hub()
    a = next(h for h in health_scores(hub, AS_OF, config()) if h.partner_id == "A")
    expected = [*hub.kpi("login_frequency").improvement_levers, *hub.kpi("task_completion_rate").improvement_levers,
                *hub.kpi("overdue_compliance_tasks").improvement_levers]
    assert list(suggested_levers(hub.catalog, a)) == list(dict.fromkeys(expected))


def test_the_trend_shows_a_falling_score(fx):
    hub = fx.hub()
    cfg = config(CONFIG.replace("{name: watch, min: 40}", "{name: watch, min: 49}"))  # A (48) becomes at risk
    (a,) = [e for e in at_risk(hub, AS_OF, cfg) if e.partner_id == "A"]
    assert [day for day, _ in a.trend] == ["2026-05-02", "2026-06-01", "2026-07-01"]
    assert a.trend[-1][1] == pytest.approx(48.0)
    assert a.trend[0][1] > a.trend[-1][1]  # May 2: logins not yet down, no overdue compliance task


def cli() -> typer.Typer:
    from partnerkpi.cli.health import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_health_at_risk_inactive_and_overrides(fx, tmp_path):
    db = str(fx.hub().store.path)
    fx.hub().close()
    cfg = tmp_path / "health.yaml"
    cfg.write_text(CONFIG)
    run = CliRunner().invoke
    app = cli()
    result = run(app, ["health", "--db", db, "--as-of", "2026-07-01", "--config", str(cfg), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["partner_id"]: r for r in json.loads(result.output)}
    assert rows["A"]["score"] == pytest.approx(48.0) and rows["A"]["level"] == "watch"
    assert rows["A"]["components"][1]["contribution"] == pytest.approx(5.0)
    result = run(app, ["health", "--db", db, "--as-of", "2026-07-01", "--config", str(cfg), "--partner", "A"],
                 env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 overdue compliance tasks" in result.output and "48.0" in result.output
    result = run(app, ["at-risk", "--db", db, "--as-of", "2026-07-01", "--config", str(cfg), "--format", "json"])
    assert [r["partner_id"] for r in json.loads(result.output)] == ["B"]
    result = run(app, ["inactive", "--db", db, "--as-of", "2026-07-01", "--config", str(cfg), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert [line.split(",")[0] for line in result.output.splitlines()] == ["partner_id", "C", "B"]

    result = run(app, ["override", "add", "B", "--level", "healthy", "--reason", "renewal signed",
                       "--expires", "2099-01-01", "--db", db, "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "override 1: B shows level healthy until 2099-01-01" in result.output
    result = run(app, ["at-risk", "--db", db, "--as-of", "2026-07-01", "--config", str(cfg), "--format", "json"])
    assert json.loads(result.output) == []  # B is overridden to healthy
    result = run(app, ["override", "list", "--db", db, "--format", "json"])
    assert [(o["partner_id"], o["reason"], o["in_force"]) for o in json.loads(result.output)] == [
        ("B", "renewal signed", True)]
    assert run(app, ["override", "remove", "1", "--db", db]).exit_code == 0
    result = run(app, ["override", "remove", "1", "--db", db])
    assert result.exit_code != 0 and "no override 1" in str(result.exception)
    result = run(app, ["health", "--db", db, "--as-of", "2026-07-01", "--partner", "D"])
    assert result.exit_code != 0 and "not in the program" in str(result.exception)


def test_no_partner_on_the_inactive_list_reads_healthy_with_the_built_in_caps(fx):
    """The built-in health.yaml caps a partner idle for 30 days (the list's default) at watch."""
    hub = fx.hub()
    found = {e.partner_id: e for e in inactive(hub, AS_OF, days=30)}
    assert sorted(found) == ["B", "C"]
    assert all(e.level != "healthy" for e in found.values())
    # C joined June 20 and has done nothing: 11 days, scored well on recency alone, but capped
    assert found["C"].reasons[0] == "level capped at watch: no activity at all in 11 days"
    assert found["C"].score >= 70 and found["C"].level == "watch"
    assert "no activity for 167 days" in found["B"].reasons[0]
