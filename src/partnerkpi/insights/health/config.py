"""The health-score configuration: components, levels, caps; read from YAML with every problem listed."""

from __future__ import annotations

from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from partnerkpi.catalog import Catalog
from partnerkpi.errors import ConfigError
from partnerkpi.insights.health.caps import CapConfig

Measure = Literal[
    "days_since_activity", "login_trend", "active_user_days", "task_completion", "overdue_compliance", "support_trend",
    "satisfaction", "access_hygiene",
]


class HealthConfigError(ConfigError):
    """The health-score configuration has problems (file and key)."""

    subject = "the health-score configuration"


# -- configuration ----------------------------------------------------------------------------------
class ComponentConfig(BaseModel):
    """One component: what it measures, how a value maps to 0..100, its weight, the KPI of its levers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Measure
    weight: float = Field(gt=0)
    points: tuple[tuple[float, float], ...]
    label: str | None = None
    kpi: str | None = None
    recent_days: int = Field(30, gt=0)
    baseline_days: int = Field(60, gt=0)
    window_days: int = Field(90, gt=0)

    @field_validator("points")
    @classmethod
    def _points(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not points:
            raise ValueError("give at least one [value, score] point")
        if any(not 0 <= s <= 100 for _, s in points):
            raise ValueError("scores must lie in 0..100")
        if any(b[0] <= a[0] for a, b in pairwise(points)):
            raise ValueError("point values must be strictly increasing")
        return points


class Level(BaseModel):
    """A risk level: the scores >= `min` (inclusive) below the next better level's `min` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    min: float = Field(ge=0, le=100)


class HealthConfig(BaseModel):
    """Components, levels (best first), the at-risk levels, the neutral score and the reason threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    components: dict[str, ComponentConfig] = Field(min_length=1)
    levels: tuple[Level, ...] = Field(min_length=1)
    at_risk_levels: tuple[str, ...] = Field(min_length=1)
    caps: tuple[CapConfig, ...] = ()
    neutral_score: float = Field(70, ge=0, le=100)
    reason_below: float = Field(60, ge=0, le=100)
    source: str = "built-in"

    @field_validator("levels")
    @classmethod
    def _levels(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        if any(b.min >= a.min for a, b in pairwise(levels)):
            raise ValueError("list the levels from the best down, with strictly decreasing `min`")
        if levels[-1].min != 0:
            raise ValueError("the lowest level must have min 0, so that every score has a level")
        if len({lv.name for lv in levels}) != len(levels):
            raise ValueError("level names must be unique")
        return levels

    def level_of(self, score: float) -> str:
        """The level holding `score` (its `min` inclusive)."""
        return next((lv.name for lv in self.levels if score >= lv.min), self.levels[-1].name)

    def worse(self, a: str, b: str) -> str:
        """The worse of two levels (the one listed later)."""
        names = [lv.name for lv in self.levels]
        return a if names.index(a) >= names.index(b) else b


def load_config(path: str | Path | None = None, catalog: Catalog | None = None) -> HealthConfig:
    """The configuration in `path` (default: the built-in one); HealthConfigError lists every problem with
    its file and key. With a catalog, each component's `kpi` must be a catalog KPI id."""
    if path is None:
        name = "built-in health.yaml"
        text = resources.files("partnerkpi.insights").joinpath("defaults", "health.yaml").read_text("utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HealthConfigError([f"{name}: cannot read the file: {exc}"]) from None
    return parse_config(text, name, catalog)


def parse_config(text: str, source: str, catalog: Catalog | None = None) -> HealthConfig:
    """The configuration in YAML `text`, read from `source` (named in problems)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HealthConfigError([f"{source}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise HealthConfigError([f"{source}: expected a mapping with keys components, levels, at_risk_levels"])
    try:
        config = HealthConfig.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = [f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise HealthConfigError(problems) from None
    problems = [
        f"{source}: at_risk_levels: '{name}' is not a level (levels: {', '.join(lv.name for lv in config.levels)})"
        for name in config.at_risk_levels if name not in {lv.name for lv in config.levels}
    ]
    problems += [
        f"{source}: caps.{i}.max_level: '{cap.max_level}' is not a level "
        f"(levels: {', '.join(lv.name for lv in config.levels)})"
        for i, cap in enumerate(config.caps) if cap.max_level not in {lv.name for lv in config.levels}
    ]
    if catalog is not None:
        problems += [
            f"{source}: components.{name}.kpi: unknown KPI '{c.kpi}'"
            for name, c in config.components.items() if c.kpi is not None and c.kpi not in catalog
        ]
    if problems:
        raise HealthConfigError(problems)
    return config
