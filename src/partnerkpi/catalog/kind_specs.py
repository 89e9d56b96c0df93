"""The closed set of compute kinds, as data: each kind's parameters, their types, and who may use it.

Regular kinds are the building blocks a user may combine in their own KPI files. Special kinds each
compute one odd built-in KPI (sessions, NPS, access snapshots, ...) and are reserved for the built-in
catalog. `check_compute` checks one `compute` mapping against this table and the tracking plan.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from partnerkpi.catalog.model import Compute
from partnerkpi.catalog.plan import TrackingPlan

ACTIVITY = "activity"  # in `event`/`events`: any activity event of the tracking plan (KPI-SPEC §3)

ParamType = Literal[
    "event",  # one event name
    "event_or_activity",  # one event name, or the literal "activity"
    "events",  # a non-empty list of event names, or the literal "activity"
    "where",  # a mapping {plan property: value}, all of which must match
    "side",  # a mapping {event: name, where: {...}}: one side of a ratio
    "number_property",  # the name of a plan property of type number
    "int",  # a positive whole number
    "number",  # a positive number
    "bool",
    "str",  # a non-empty text
    "choice",  # one of `choices`
]
PARAM_TYPE_DOCS: dict[str, str] = {
    "event": "an event name",
    "event_or_activity": "an event name, or `activity` (any activity event)",
    "events": "a list of event names, or `activity` (any activity event)",
    "where": "a mapping {property: value} over typed properties of the tracking plan",
    "side": "a mapping {event: NAME, where: {property: value}} (where is optional)",
    "number_property": "the name of a number property of the tracking plan",
    "int": "a positive whole number",
    "number": "a positive number",
    "bool": "true or false",
    "str": "a non-empty text",
    "choice": "one of the listed values",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a compute kind."""

    name: str
    type: ParamType
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Kind:
    """One compute kind of the engine: what it computes and which parameters it takes."""

    name: str
    regular: bool
    doc: str
    params: tuple[Param, ...] = ()

    def param(self, name: str) -> Param | None:
        """The parameter called `name`, or None."""
        return next((p for p in self.params if p.name == name), None)


_WHERE = Param("where", "where", required=False, default=None, doc="only events whose properties match")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        # Regular kinds: usable in user KPI files.
        Kind("event_count", True, "number of `event` events in P", (Param("event", "event"), _WHERE)),
        Kind(
            "event_sum",
            True,
            "sum of the number property `sum` over `event` events in P (0 over nothing)",
            (Param("event", "event"), Param("sum", "number_property"), _WHERE),
        ),
        Kind(
            "per_partner",
            True,
            "`events` in P attributed to partners in P (or the sum of their `sum` property) / partners in P",
            (Param("events", "events"), Param("sum", "number_property", required=False), _WHERE),
        ),
        Kind(
            "per_active_partner",
            True,
            "`events` in P attributed to partners in P / active partners in P",
            (Param("events", "events"), _WHERE),
        ),
        Kind(
            "event_ratio",
            True,
            "100 × events matching `numerator` in P / events matching `denominator` in P",
            (Param("numerator", "side"), Param("denominator", "side")),
        ),
        Kind(
            "partner_share",
            True,
            "100 × partners in P with at least one of `events` in P / partners in P",
            (Param("events", "events"), _WHERE),
        ),
        Kind(
            "user_share",
            True,
            "100 × users in P with at least one of `events` in P / users in P",
            (Param("events", "events"), _WHERE),
        ),
        Kind(
            "users_per_partner",
            True,
            "users in P with at least one of `events` in P / partners in P",
            (Param("events", "events"), _WHERE),
        ),
        Kind(
            "per_actor",
            True,
            "`event` events in P that carry a user / distinct users among them",
            (Param("event", "event_or_activity"), _WHERE),
        ),
        Kind(
            "median_since_onboarding",
            True,
            "median, over partners whose first `event` is in P, of days from `onboarded_at` to that event",
            (
                Param("event", "event_or_activity"),
                Param(
                    "clip_at_zero", "bool", required=False, default=False, doc="negative durations count as 0"
                ),
            ),
        ),
        Kind(
            "object_cycle",
            True,
            "median, over objects whose first `end` event is in P, of (first `end` − first `start`)",
            (
                Param("start", "event"),
                Param("end", "event"),
                Param("unit", "choice", required=False, default="days", choices=("days", "hours", "minutes")),
            ),
        ),
        # Special kinds: one odd built-in KPI each, implemented by hand in the engine.
        Kind("first_login_rate", False, "100 × users at end who ever logged in before end / users at end"),
        Kind("stickiness", False, "100 × mean daily active users over the days of P / active users in P"),
        Kind(
            "task_completion_rate", False, "100 × tasks due in P completed at or before due / tasks due in P"
        ),
        Kind(
            "session_minutes",
            False,
            "mean length in minutes of the sessions that start in P",
            (Param("gap_minutes", "number", doc="a longer gap between two events starts a new session"),),
        ),
        Kind("reminders_per_task", False, "Reminder Sent in P / tasks due in P"),
        Kind(
            "task_abandonment_rate",
            False,
            "100 × started tasks not completed within `window_days` of their start / all such tasks",
            (Param("window_days", "int"),),
        ),
        Kind(
            "repeat_question_rate",
            False,
            "100 × support requests whose topic the partner raised within `window_days` before / requests",
            (Param("window_days", "int"),),
        ),
        Kind(
            "inactive_partners_with_access",
            False,
            "partners holding an open grant at end with no activity in the last `inactive_days`",
            (Param("inactive_days", "int"),),
        ),
        Kind("access_review_completion_rate", False, "100 × reviews due in P completed by due / reviews due"),
        Kind("time_to_revoke", False, "median hours from a holder's offboarding to the grant's revocation"),
        Kind("orphaned_grants", False, "open grants at end whose holder was offboarded before end"),
        Kind("policy_ack_rate", False, "100 × acknowledged (partner, required policy) pairs / all pairs"),
        Kind(
            "overdue_tasks",
            False,
            "open tasks of kind `task_kind` whose due is before end",
            (Param("task_kind", "str"),),
        ),
        Kind("churn_rate", False, "100 × partners at start offboarded in P / partners at start"),
        Kind("nps", False, "100 × (share of promoters − share of detractors) of each user's last answer"),
    )
}

REGULAR_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.regular)
SPECIAL_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if not kind.regular)


@dataclass(frozen=True)
class ParamProblem:
    """One problem in a `compute` mapping: the field it is in, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str


def params_of(compute: Compute) -> dict[str, Any]:
    """The parameters of `compute` with the kind's defaults filled in (for the engine)."""
    kind = KINDS[compute.kind]
    out = {p.name: p.default for p in kind.params if not p.required}
    out.update(compute.params)
    return out


def _close(word: str, options: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(word, list(options), n=3)
    return f"did you mean {' or '.join(repr(m) for m in match)}? " if match else ""


def check_compute(compute: Mapping[str, Any], plan: TrackingPlan, *, builtin: bool) -> list[ParamProblem]:
    """Every problem of one raw `compute` mapping (its kind and its parameters), none if it is fine."""
    kind_name = compute.get("kind")
    if not isinstance(kind_name, str):
        return []  # the model reports a missing or non-text kind
    kind = KINDS.get(kind_name)
    if kind is None:
        return [
            ParamProblem(
                "compute.kind",
                f"unknown compute kind '{kind_name}'",
                _close(kind_name, list(KINDS)) + f"regular kinds are: {', '.join(REGULAR_KINDS)}",
            )
        ]
    if not kind.regular and not builtin:
        return [
            ParamProblem(
                "compute.kind",
                f"kind '{kind_name}' is reserved for a built-in KPI",
                f"use a regular kind ({', '.join(REGULAR_KINDS)}), or reference the built-in KPI instead",
            )
        ]
    problems: list[ParamProblem] = []
    names = [p.name for p in kind.params]
    for key in compute:
        if key != "kind" and key not in names:
            takes = ", ".join(names) or "no parameters"
            problems.append(
                ParamProblem(
                    f"compute.{key}",
                    f"kind '{kind_name}' has no parameter '{key}'",
                    _close(key, names) + f"it takes: {takes}",
                )
            )
    for param in kind.params:
        if param.name not in compute:
            if param.required:
                problems.append(
                    ParamProblem(
                        f"compute.{param.name}",
                        f"kind '{kind_name}' needs parameter '{param.name}'",
                        f"add `{param.name}:` ({PARAM_TYPE_DOCS[param.type]})",
                    )
                )
            continue
        for message, fix in _check_value(param, compute[param.name], plan):
            problems.append(ParamProblem(f"compute.{param.name}", message, fix))
    return problems


def _check_value(param: Param, value: Any, plan: TrackingPlan) -> list[tuple[str, str]]:
    kind = param.type
    expected = PARAM_TYPE_DOCS[kind]
    wrong = [(f"'{param.name}' must be {expected}, not {value!r}", f"write {expected}")]
    if kind == "event":
        return _check_event(value, allow_activity=False, expected=expected)
    if kind == "event_or_activity":
        return _check_event(value, allow_activity=True, expected=expected)
    if kind == "events":
        if value == ACTIVITY:
            return []
        if not isinstance(value, list) or not value:
            return wrong
        out: list[tuple[str, str]] = []
        for item in value:
            if item == ACTIVITY:
                out.append(("'activity' cannot be mixed with event names", "write `events: activity` alone"))
            else:
                out += _check_event(item, allow_activity=False, expected="an event name")
        return out
    if kind == "where":
        return _check_where(value, plan)
    if kind == "side":
        if not isinstance(value, Mapping) or "event" not in value:
            return wrong
        out = _check_event(value["event"], allow_activity=False, expected="an event name")
        for key in value:
            if key not in ("event", "where"):
                out.append(
                    (f"unknown key '{key}' in '{param.name}'", "a ratio side takes only `event` and `where`")
                )
        if "where" in value:
            out += _check_where(value["where"], plan)
        return out
    if kind == "number_property":
        numbers = [p for p, t in plan.typed_properties.items() if t == "number"]
        if value not in numbers:
            return [
                (
                    f"'{value}' is not a number property of the tracking plan",
                    _close(str(value), numbers) + f"number properties: {', '.join(numbers)}",
                )
            ]
        return []
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return [] if ok else wrong
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        return [] if ok else wrong
    if kind == "bool":
        return [] if isinstance(value, bool) else wrong
    if kind == "str":
        return [] if isinstance(value, str) and value.strip() else wrong
    if value not in param.choices:
        return [
            (
                f"'{param.name}' must be one of {', '.join(param.choices)}, not {value!r}",
                f"write one of: {', '.join(param.choices)}",
            )
        ]
    return []


def _check_event(value: Any, *, allow_activity: bool, expected: str) -> list[tuple[str, str]]:
    if not isinstance(value, str) or not value.strip():
        return [
            (f"expected {expected}, not {value!r}", "write the event name as it is stored, e.g. Logged In")
        ]
    if value == ACTIVITY and not allow_activity:
        return [("'activity' is not allowed here", "name the events; `activity` works in `events` lists")]
    return []  # custom event names are allowed (KPI-SPEC §2)


_PROPERTY_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "bool": (bool,),
}


def _check_where(value: Any, plan: TrackingPlan) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping) or not value:
        return [
            (
                f"'where' must be a non-empty mapping {{property: value}}, not {value!r}",
                "write e.g. `where: {category: access}`",
            )
        ]
    typed = plan.typed_properties
    out: list[tuple[str, str]] = []
    for prop, expected in value.items():
        kind = typed.get(prop)
        if kind is None:
            out.append(
                (
                    f"'{prop}' in 'where' is not a property of the tracking plan",
                    _close(str(prop), list(typed))
                    + "filter on a typed plan property: "
                    + ", ".join(typed)
                    + " (or add it to your tracking plan)",
                )
            )
            continue
        types = _PROPERTY_VALUE_TYPES.get(kind)
        if types is None:
            out.append(
                (
                    f"'{prop}' is a {kind} property and cannot be matched for equality",
                    "filter on a string, number or bool property",
                )
            )
        elif not isinstance(expected, types) or (kind == "number" and isinstance(expected, bool)):
            out.append(
                (
                    f"'{prop}' is a {kind} property but the value is {expected!r}",
                    f"give a {kind} value (quote text, write true/false for bools)",
                )
            )
    return out
