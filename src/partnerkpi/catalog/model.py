"""A KPI is a catalog entry: its 12 attributes, its metadata, and how the engine computes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["adoption", "engagement", "efficiency", "experience", "access", "compliance", "outcomes"]
CATEGORY_TITLES: dict[str, str] = {
    "adoption": "Adoption",
    "engagement": "Engagement",
    "efficiency": "Operational efficiency",
    "experience": "Partner experience",
    "access": "Access and security",
    "compliance": "Compliance",
    "outcomes": "Outcomes",
}
# The 12 attributes of the KPI seed, in its order, with the titles every rendering uses.
ATTRIBUTE_TITLES: tuple[tuple[str, str], ...] = (
    ("definition", "Definition"),
    ("business_insights", "Business insights"),
    ("measurement_approach", "Measurement approach"),
    ("formula", "Standard formula"),
    ("trend_analysis", "Trend analysis"),
    ("diagnostic_questions", "Diagnostic questions"),
    ("improvement_levers", "Improvement levers"),
    ("visualization", "Visualization"),
    ("risk_warnings", "Risk warnings"),
    ("tools", "Tools and technologies"),
    ("integration_points", "Integration points"),
    ("change_impact", "Change impact"),
)
Direction = Literal["up", "down"]
Timing = Literal["leading", "lagging"]
# Who sees a KPI computed for one partner: everyone (the partner's own users too), internal users only.
PartnerPage = Literal["everyone", "internal"]


class Band(BaseModel):
    """A named value range. Edges state their inclusivity: `moderate` is 50 <= v <= 70."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    min: float | None = None  # None: unbounded below
    max: float | None = None  # None: unbounded above
    min_inclusive: bool = True
    max_inclusive: bool = True
    color: str = "grey"  # green | amber | red | grey: how the band is shown

    def contains(self, value: float) -> bool:
        if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
            return False
        if self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)):
            return False
        return True


class Benchmark(BaseModel):
    """An external reference value, with where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    label: str
    source: str


class Related(BaseModel):
    """How a change in this KPI moves another one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str
    effect: str  # in words: "more active partners usually lift task completion"


class Compute(BaseModel):
    """How the engine computes the KPI: a kind from the engine's closed set, and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class KPI(BaseModel):
    """One catalog entry (the 12 attributes of the KPI seed plus metadata)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    category: Category
    unit: str  # "%", "days", "hours", "minutes", "per partner", "count", "currency", "NPS", ...
    direction: Direction
    timing: Timing | None = None
    # Meaningful for one partner (its partner page); None: a program-level KPI only (e.g. a share of partners).
    partner_page: PartnerPage | None = None
    compute: Compute
    bands: tuple[Band, ...] = ()
    benchmarks: tuple[Benchmark, ...] = ()
    # The 12 attributes of the KPI seed.
    definition: str
    business_insights: str
    measurement_approach: str
    formula: str
    trend_analysis: str
    diagnostic_questions: tuple[str, ...]
    improvement_levers: tuple[str, ...]
    visualization: str
    risk_warnings: tuple[str, ...]
    tools: tuple[str, ...]
    integration_points: tuple[str, ...]
    change_impact: str
    related: tuple[Related, ...] = ()
    source: str = "built-in"  # the file the entry was loaded from

    def band_of(self, value: float | None) -> str | None:
        """The name of the first band that holds `value`; None where there are no bands or no value."""
        if value is None:
            return None
        for band in self.bands:
            if band.contains(value):
                return band.name
        return None
