"""The KPI catalog: the 33 built-in KPIs of KPI-SPEC §5, user KPI files, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from partnerkpi.catalog import Catalog, load_catalog
from partnerkpi.catalog.docs import render_markdown
from partnerkpi.catalog.kind_specs import KINDS, REGULAR_KINDS, SPECIAL_KINDS, params_of
from partnerkpi.catalog.model import KPI
from partnerkpi.errors import CatalogError, UnknownKPIError

ROOT = Path(__file__).resolve().parents[1]

# KPI-SPEC §5, written out by hand: category -> ids in table order.
SPEC_IDS = {
    "adoption": [
        "portal_usage_rate",
        "active_users_per_partner",
        "active_partner_rate",
        "login_frequency",
        "first_login_rate",
        "time_to_first_action",
        "stickiness",
    ],
    "engagement": [
        "task_completion_rate",
        "document_access_frequency",
        "announcement_reach",
        "avg_session_minutes",
    ],
    "efficiency": [
        "manual_touches_per_partner",
        "onboarding_days",
        "approval_cycle_days",
        "reminders_per_task",
    ],
    "experience": [
        "task_abandonment_rate",
        "resubmission_rate",
        "support_requests_per_partner",
        "repeat_question_rate",
    ],
    "access": [
        "inactive_partners_with_access",
        "access_review_completion_rate",
        "time_to_revoke_hours",
        "orphaned_grants",
        "access_incidents",
    ],
    "compliance": ["policy_ack_rate", "submission_accuracy", "overdue_compliance_tasks", "audit_findings"],
    "outcomes": ["partner_churn_rate", "partner_nps", "cost_to_serve", "partner_revenue", "escalations"],
}

# id -> (unit, direction, timing), from the spec table.
SPEC_META = {
    "portal_usage_rate": ("%", "up", None),
    "active_users_per_partner": ("users per partner", "up", None),
    "active_partner_rate": ("%", "up", None),
    "login_frequency": ("logins per user", "up", "leading"),
    "first_login_rate": ("%", "up", None),
    "time_to_first_action": ("days", "down", None),
    "stickiness": ("%", "up", None),
    "task_completion_rate": ("%", "up", "leading"),
    "document_access_frequency": ("per active partner", "up", None),
    "announcement_reach": ("%", "up", None),
    "avg_session_minutes": ("minutes", "up", None),
    "manual_touches_per_partner": ("per partner", "down", None),
    "onboarding_days": ("days", "down", None),
    "approval_cycle_days": ("days", "down", None),
    "reminders_per_task": ("per task", "down", None),
    "task_abandonment_rate": ("%", "down", None),
    "resubmission_rate": ("%", "down", None),
    "support_requests_per_partner": ("per partner", "down", "leading"),
    "repeat_question_rate": ("%", "down", None),
    "inactive_partners_with_access": ("partners", "down", None),
    "access_review_completion_rate": ("%", "up", None),
    "time_to_revoke_hours": ("hours", "down", None),
    "orphaned_grants": ("grants", "down", None),
    "access_incidents": ("incidents", "down", "lagging"),
    "policy_ack_rate": ("%", "up", None),
    "submission_accuracy": ("%", "up", None),
    "overdue_compliance_tasks": ("tasks", "down", "leading"),
    "audit_findings": ("findings", "down", "lagging"),
    "partner_churn_rate": ("%", "down", "lagging"),
    "partner_nps": ("NPS", "up", "lagging"),
    "cost_to_serve": ("currency", "down", "lagging"),  # the Outcomes section is lagging as a whole
    "partner_revenue": ("currency", "up", "lagging"),
    "escalations": ("count", "down", "lagging"),
}

# id -> compute mapping, exactly as the engine expects it.
SPEC_COMPUTE = {
    "portal_usage_rate": {"kind": "user_share", "events": "activity"},
    "active_users_per_partner": {"kind": "users_per_partner", "events": "activity"},
    "active_partner_rate": {"kind": "partner_share", "events": "activity"},
    "login_frequency": {"kind": "per_actor", "event": "Logged In"},
    "first_login_rate": {"kind": "first_login_rate"},
    "time_to_first_action": {"kind": "median_since_onboarding", "event": "activity", "clip_at_zero": True},
    "stickiness": {"kind": "stickiness"},
    "task_completion_rate": {"kind": "task_completion_rate"},
    "document_access_frequency": {
        "kind": "per_active_partner",
        "events": ["Document Viewed", "Document Downloaded"],
    },
    "announcement_reach": {"kind": "partner_share", "events": ["Announcement Viewed"]},
    "avg_session_minutes": {"kind": "session_minutes", "gap_minutes": 30},
    "manual_touches_per_partner": {"kind": "per_partner", "events": ["Coordination Logged"]},
    "onboarding_days": {
        "kind": "median_since_onboarding",
        "event": "Onboarding Completed",
        "clip_at_zero": False,
    },
    "approval_cycle_days": {
        "kind": "object_cycle",
        "start": "Approval Requested",
        "end": "Approval Decided",
        "unit": "days",
    },
    "reminders_per_task": {"kind": "reminders_per_task"},
    "task_abandonment_rate": {"kind": "task_abandonment_rate", "window_days": 30},
    "resubmission_rate": {
        "kind": "event_ratio",
        "numerator": {"event": "Task Rejected"},
        "denominator": {"event": "Task Submitted"},
    },
    "support_requests_per_partner": {"kind": "per_partner", "events": ["Support Requested"]},
    "repeat_question_rate": {"kind": "repeat_question_rate", "window_days": 90},
    "inactive_partners_with_access": {"kind": "inactive_partners_with_access", "inactive_days": 90},
    "access_review_completion_rate": {"kind": "access_review_completion_rate"},
    "time_to_revoke_hours": {"kind": "time_to_revoke"},
    "orphaned_grants": {"kind": "orphaned_grants"},
    "access_incidents": {
        "kind": "event_count",
        "event": "Security Incident Reported",
        "where": {"category": "access"},
    },
    "policy_ack_rate": {"kind": "policy_ack_rate"},
    "submission_accuracy": {
        "kind": "event_ratio",
        "numerator": {"event": "Compliance Document Reviewed", "where": {"outcome": "accepted"}},
        "denominator": {"event": "Compliance Document Reviewed"},
    },
    "overdue_compliance_tasks": {"kind": "overdue_tasks", "task_kind": "compliance"},
    "audit_findings": {
        "kind": "event_count",
        "event": "Audit Finding Recorded",
        "where": {"area": "partner_access"},
    },
    "partner_churn_rate": {"kind": "churn_rate"},
    "partner_nps": {"kind": "nps"},
    "cost_to_serve": {"kind": "per_partner", "events": ["Cost Recorded"], "sum": "amount"},
    "partner_revenue": {"kind": "event_sum", "event": "Deal Closed", "sum": "amount"},
    "escalations": {"kind": "event_count", "event": "Escalation Raised"},
}

TEXT_ATTRIBUTES = (
    "definition",
    "business_insights",
    "measurement_approach",
    "formula",
    "trend_analysis",
    "visualization",
    "change_impact",
)
LIST_ATTRIBUTES = (
    "diagnostic_questions",
    "improvement_levers",
    "risk_warnings",
    "tools",
    "integration_points",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_builtin_catalog_has_the_33_spec_kpis_in_their_categories(catalog):
    assert len(catalog) == 33
    assert {c: [k.id for k in kpis] for c, kpis in catalog.by_category().items()} == SPEC_IDS
    assert list(catalog.ids) == [i for ids in SPEC_IDS.values() for i in ids]
    assert all(kpi.source == "built-in" for kpi in catalog)


@pytest.mark.parametrize("kpi_id", list(SPEC_META))
def test_unit_direction_and_timing_follow_the_spec(catalog, kpi_id):
    kpi = catalog.get(kpi_id)
    assert (kpi.unit, kpi.direction, kpi.timing) == SPEC_META[kpi_id]


@pytest.mark.parametrize("kpi_id", list(SPEC_COMPUTE))
def test_compute_is_exactly_what_the_engine_implements(catalog, kpi_id):
    compute = catalog.get(kpi_id).compute
    assert {"kind": compute.kind, **compute.params} == SPEC_COMPUTE[kpi_id]


@pytest.mark.parametrize("kpi_id", ["portal_usage_rate", "active_partner_rate"])
def test_band_edges_of_the_usage_kpis(catalog, kpi_id):
    kpi = catalog.get(kpi_id)
    assert [b.name for b in kpi.bands] == ["low", "moderate", "strong"]
    assert [b.color for b in kpi.bands] == ["red", "amber", "green"]
    assert kpi.band_of(0) == "low"
    assert kpi.band_of(49.999) == "low"
    assert kpi.band_of(50) == "moderate"
    assert kpi.band_of(60) == "moderate"
    assert kpi.band_of(70) == "moderate"
    assert kpi.band_of(70.0001) == "strong"
    assert kpi.band_of(100) == "strong"  # both are shares (v2): 100 is the top
    assert kpi.band_of(None) is None
    assert [(b.value, b.source) for b in kpi.benchmarks] == [
        (75, "Gartner, as cited by the KPI seed"),
        (60, "Forrester, as cited by the KPI seed"),
    ]


def test_no_other_kpi_has_invented_bands_or_benchmarks(catalog):
    banded = {k.id for k in catalog if k.bands or k.benchmarks}
    assert banded == {"portal_usage_rate", "active_partner_rate"}
    assert catalog.get("stickiness").band_of(99.0) is None


@pytest.mark.parametrize("kpi_id", list(SPEC_META))
def test_every_kpi_has_all_12_attributes_filled(catalog, kpi_id):
    kpi = catalog.get(kpi_id)
    for name in TEXT_ATTRIBUTES:
        assert len(getattr(kpi, name).strip()) >= 40, name
    for name in LIST_ATTRIBUTES:
        items = getattr(kpi, name)
        assert len(items) >= (
            3 if name in ("diagnostic_questions", "improvement_levers", "risk_warnings") else 1
        )
        assert all(item.strip() for item in items), name
    assert len(kpi.related) >= 2
    for related in kpi.related:
        assert related.kpi in catalog and related.kpi != kpi.id
        assert related.effect.strip()


def test_kinds_table_is_the_closed_set():
    assert set(REGULAR_KINDS) == {
        "event_count",
        "event_sum",
        "per_partner",
        "per_active_partner",
        "event_ratio",
        "partner_share",
        "user_share",
        "users_per_partner",
        "per_actor",
        "median_since_onboarding",
        "object_cycle",
    }
    assert set(SPECIAL_KINDS) == {
        "first_login_rate",
        "stickiness",
        "task_completion_rate",
        "session_minutes",
        "reminders_per_task",
        "task_abandonment_rate",
        "repeat_question_rate",
        "inactive_partners_with_access",
        "access_review_completion_rate",
        "time_to_revoke",
        "orphaned_grants",
        "policy_ack_rate",
        "overdue_tasks",
        "churn_rate",
        "nps",
    }
    assert set(KINDS) == set(REGULAR_KINDS) | set(SPECIAL_KINDS)


def test_params_of_fills_in_defaults(catalog):
    assert params_of(catalog.get("escalations").compute) == {"event": "Escalation Raised", "where": None}
    assert params_of(catalog.get("manual_touches_per_partner").compute)["sum"] is None


def test_get_unknown_kpi_suggests_close_ids(catalog):
    with pytest.raises(UnknownKPIError) as info:
        catalog.get("portal_usage")
    assert "portal_usage_rate" in str(info.value)
    assert info.value.exit_code == 2


def _user_kpi(kpi_id: str, **changes) -> dict:
    entry = {
        "id": kpi_id,
        "name": "Webinar Attendance",
        "category": "engagement",
        "unit": "per partner",
        "direction": "up",
        "compute": {"kind": "per_partner", "events": ["Webinar Attended"]},
        "definition": "Webinar Attended events in P per partner in P.",
        "business_insights": "Shows interest in enablement.",
        "measurement_approach": "Count the custom event.",
        "formula": "Webinar Attended in P / partners in P",
        "trend_analysis": "Peaks after launches.",
        "diagnostic_questions": ["Which topics draw partners?"],
        "improvement_levers": ["Record sessions."],
        "visualization": "Line chart.",
        "risk_warnings": ["Counts registrations, not attention."],
        "tools": ["Webinar platform"],
        "integration_points": ["Enablement calendar"],
        "change_impact": "More attendance tends to lift task completion.",
        "related": [{"kpi": "task_completion_rate", "effect": "trained partners complete more tasks"}],
    }
    entry.update(changes)
    return entry


def _write(path: Path, data) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_user_kpis_load_beside_the_builtin_ones(tmp_path):
    as_list = _write(tmp_path / "mine.yaml", [_user_kpi("webinar_attendance")])
    as_mapping = _write(
        tmp_path / "more.yaml",
        {
            "kpis": [
                _user_kpi(
                    "accepted_reviews",
                    category="compliance",
                    unit="count",
                    compute={
                        "kind": "event_count",
                        "event": "Compliance Document Reviewed",
                        "where": {"outcome": "accepted"},
                    },
                )
            ]
        },
    )
    catalog = load_catalog([as_list, as_mapping])
    assert len(catalog) == 35  # 33 built-in + 2 of the user
    mine = catalog.get("webinar_attendance")
    assert isinstance(mine, KPI) and mine.source == str(as_list)
    assert catalog.by_category()["engagement"][-1].id == "webinar_attendance"  # after the built-ins
    assert catalog.by_category()["compliance"][-1].id == "accepted_reviews"
    assert catalog.ids.index("accepted_reviews") < catalog.ids.index("partner_churn_rate")  # category order


def test_a_directory_loads_all_its_yaml_files(tmp_path):
    _write(tmp_path / "a.yaml", [_user_kpi("kpi_a")])
    _write(tmp_path / "b.yml", [_user_kpi("kpi_b")])
    assert {"kpi_a", "kpi_b"} <= set(load_catalog([tmp_path]).ids)


def test_a_broken_user_file_reports_every_problem_at_once(tmp_path):
    entries = [
        _user_kpi("stickiness"),  # duplicates a built-in id
        _user_kpi("bad_kind", compute={"kind": "event_cuont", "event": "Logged In"}),
        _user_kpi("no_formula", formula=None),
        _user_kpi(
            "bad_params",
            compute={
                "kind": "event_ratio",
                "numerator": {"event": "Task Rejected"},
                "denominatr": {"event": "Task Submitted"},
            },
        ),
        _user_kpi("bad_window", compute={"kind": "object_cycle", "start": "A", "end": "B", "unit": "weeks"}),
        _user_kpi("bad_related", related=[{"kpi": "no_such_kpi", "effect": "none"}]),
        _user_kpi("bad_bands", bands=[{"name": "low", "max": 60}, {"name": "high", "min": 50}]),
        _user_kpi("inverted", bands=[{"name": "odd", "min": 10, "max": 5}]),
        _user_kpi("no_source", benchmarks=[{"value": 5, "label": "peer median", "source": " "}]),
        _user_kpi("Bad-Id", direction="sideways"),
    ]
    entries[2].pop("formula")
    path = _write(tmp_path / "broken.yaml", entries)
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    problems = info.value.problems
    expected = [
        ("stickiness", "id", "already defined in built-in adoption.yaml"),
        ("bad_kind", "compute.kind", "unknown compute kind 'event_cuont'"),
        ("no_formula", "formula", "missing"),
        ("bad_params", "compute.denominatr", "no parameter 'denominatr'"),
        ("bad_params", "compute.denominator", "needs parameter 'denominator'"),
        ("bad_window", "compute.unit", "must be one of days, hours, minutes"),
        ("bad_related", "related.0.kpi", "'no_such_kpi' is not in the catalog"),
        ("bad_bands", "bands.1", "overlaps band 'low'"),
        ("inverted", "bands.0", "inverted"),
        ("no_source", "benchmarks.0.source", "no source"),
        ("Bad-Id", "id", "pattern"),
        ("Bad-Id", "direction", "'up' or 'down'"),
    ]
    for kpi_id, field, words in expected:
        prefix = f"{path}: KPI '{kpi_id}', field '{field}': "
        assert any(p.startswith(prefix) and words in p for p in problems), (kpi_id, field, problems)
    assert len(problems) == len(expected), problems
    assert "how to fix" in str(info.value)


def test_band_edges_that_touch_without_overlap_are_fine(tmp_path):
    bands = [
        {"name": "low", "max": 50, "max_inclusive": False, "color": "red"},
        {"name": "high", "min": 50, "color": "green"},
    ]
    path = _write(tmp_path / "ok.yaml", [_user_kpi("banded", bands=bands)])
    assert load_catalog([path]).get("banded").band_of(50) == "high"


def test_special_kind_is_rejected_in_a_user_file(tmp_path):
    path = _write(tmp_path / "special.yaml", [_user_kpi("my_nps", compute={"kind": "nps"})])
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: KPI 'my_nps', field 'compute.kind': ")
    assert "reserved for a built-in KPI" in problem


def test_where_must_use_typed_plan_properties(tmp_path):
    entries = [
        _user_kpi(
            "by_colour", compute={"kind": "event_count", "event": "Cost Recorded", "where": {"colour": "red"}}
        ),
        _user_kpi(
            "by_amount", compute={"kind": "event_count", "event": "Cost Recorded", "where": {"amount": "ten"}}
        ),
        _user_kpi(
            "side_where",
            compute={
                "kind": "event_ratio",
                "numerator": {"event": "X", "where": {"catgory": 1}},
                "denominator": {"event": "X"},
            },
        ),
    ]
    path = _write(tmp_path / "where.yaml", entries)
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert any(
        "'by_colour', field 'compute.where'" in p and "'colour' in 'where' is not a property" in p
        for p in problems
    )
    assert any("'by_amount', field 'compute.where'" in p and "number property" in p for p in problems)
    assert any(
        "'side_where', field 'compute.numerator'" in p and "did you mean 'category'" in p for p in problems
    )


def test_param_types_are_checked(tmp_path):
    entries = [
        _user_kpi("list_not_name", compute={"kind": "event_count", "event": ["Logged In"]}),
        _user_kpi("mixed_activity", compute={"kind": "partner_share", "events": ["activity", "Logged In"]}),
        _user_kpi("text_sum", compute={"kind": "event_sum", "event": "Deal Closed", "sum": "category"}),
        _user_kpi(
            "bool_clip",
            compute={"kind": "median_since_onboarding", "event": "activity", "clip_at_zero": "no"},
        ),
    ]
    path = _write(tmp_path / "types.yaml", entries)
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    problems = info.value.problems
    assert len(problems) == 4, problems
    for kpi_id, field in [
        ("list_not_name", "event"),
        ("mixed_activity", "events"),
        ("text_sum", "sum"),
        ("bool_clip", "clip_at_zero"),
    ]:
        assert any(f"KPI '{kpi_id}', field 'compute.{field}'" in p for p in problems), (kpi_id, problems)


def test_yaml_syntax_errors_and_wrong_shapes_are_reported_together(tmp_path):
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("- id: x\n  name: [unclosed\n", encoding="utf-8")
    shape = tmp_path / "shape.yaml"
    shape.write_text("kpi: []\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CatalogError) as info:
        load_catalog([syntax, shape, missing])
    text = "\n".join(info.value.problems)
    assert f"{syntax}: YAML syntax error at line" in text
    assert f"{shape}: unknown top-level key 'kpi'" in text
    assert f"{missing}: cannot read the file" in text


def test_committed_docs_match_the_catalog(catalog):
    committed = (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8")
    assert committed == render_markdown(catalog), "run: python -m partnerkpi.catalog.docs"
    for kpi in catalog:
        assert f"`{kpi.id}`" in committed
