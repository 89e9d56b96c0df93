"""The tracking plan as data: event names, activity flags and the typed properties the KPIs read."""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from partnerkpi.errors import CatalogError

PropertyType = Literal["string", "number", "bool", "timestamp"]


class PlanEvent(BaseModel):
    """One event of the tracking plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    activity: bool
    object: str | None = None
    program_wide: bool = False
    properties: dict[str, PropertyType] = Field(default_factory=dict)


class TrackingPlan(BaseModel):
    """The whole vocabulary. Custom (unknown) events are allowed; they count as activity with a user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    events: tuple[PlanEvent, ...]

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(e.name for e in self.events)

    @cached_property
    def activity_events(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events if e.activity)

    @cached_property
    def program_wide_events(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events if e.program_wide)

    @cached_property
    def typed_properties(self) -> dict[str, PropertyType]:
        """Every property the plan names, with its type: the typed `p_<name>` columns of `events`."""
        out: dict[str, PropertyType] = {}
        problems = []
        for event in self.events:
            for prop, kind in event.properties.items():
                if out.setdefault(prop, kind) != kind:
                    problems.append(
                        f"property '{prop}' is {out[prop]} in one event and {kind} in '{event.name}'"
                    )
        if problems:
            raise CatalogError(problems)
        return dict(sorted(out.items()))


def load_plan(path: str | Path | None = None) -> TrackingPlan:
    """Load the built-in plan, or a user's plan file."""
    if path is None:
        text = resources.files("partnerkpi.catalog").joinpath("tracking_plan.yaml").read_text()
        source = "built-in tracking_plan.yaml"
    else:
        text, source = Path(path).read_text(), str(path)
    try:
        return TrackingPlan.model_validate(yaml.safe_load(text))
    except Exception as exc:  # pydantic's message lists every field problem
        raise CatalogError([f"{source}: {exc}"]) from exc
