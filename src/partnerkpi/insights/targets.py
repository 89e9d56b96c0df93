"""Targets and bands that change over time, per KPI and per segment: the TargetBook.

A targets file is YAML with two optional lists:

    targets:
      - {kpi: portal_usage_rate, effective_from: 2026-01-01, value: 75, label: "Top quartile"}
      - {kpi: portal_usage_rate, segment: {type: agency}, effective_from: 2026-07-01, value: 60}
    band_sets:
      - kpi: support_requests_per_partner
        effective_from: 2026-01-01
        bands:
          - {name: calm, max: 0.75, max_inclusive: false, color: green}
          - {name: busy, min: 0.75, color: amber}

`segment` absent (or `{}`) means the whole program; a program entry also applies to every segment that has
no entry of its own. The entry in force for a period is the one with the latest `effective_from` on or
before the period's start; a segment's own entry in force beats the program's whatever their dates. Without
a band set in force, the catalog KPI's own bands apply. The package default (insights/defaults/targets.yaml)
is read first; a user file adds entries, and replaces a default entry with the same KPI, segment and date.

A third optional section, `judgment`, sets how rows are judged when no target or band applies (the
baseline) and how far from a target or baseline a value may be before it is poor:

    judgment:
      baseline_periods: 3      # the baseline is the median of the first N periods with a value
      tolerance_pct: 10        # watch while worse by up to this % of the target or baseline; poor beyond
      kpis:
        partner_nps: {tolerance_pct: 20}

A later file's settings replace the earlier ones field by field (and KPI by KPI).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from partnerkpi.catalog import YAML_SYNTAX_FIX, Catalog, _band_problems, _StrictLoader, read_yaml
from partnerkpi.catalog.model import KPI, Band
from partnerkpi.errors import ConfigError

__all__ = ["DEFAULT_SOURCE", "BandSet", "JudgmentSettings", "KpiJudgment", "Target", "TargetBook", "TargetsError",
           "load_targets"]

DEFAULT_SOURCE = "built-in targets.yaml"
_SECTIONS = {"targets": "target", "band_sets": "band set"}
_TOP_LEVEL = [*_SECTIONS, "judgment"]


class TargetsError(ConfigError):
    """A targets file has problems (file, entry, field, how to fix)."""

    subject = "the targets file"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str
    segment: dict[str, str] = Field(default_factory=dict)  # {} = the whole program
    effective_from: date
    source: str = DEFAULT_SOURCE  # the file the entry was loaded from

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], date]:
        return self.kpi, tuple(sorted(self.segment.items())), self.effective_from


class Target(_Entry):
    """A target value for a KPI (and segment) from `effective_from` on."""

    value: float
    label: str | None = None


class BandSet(_Entry):
    """Named bands for a KPI (and segment) from `effective_from` on; edges state their inclusivity."""

    bands: tuple[Band, ...] = Field(min_length=1)


class KpiJudgment(BaseModel):
    """One KPI's own judgment settings (None: the program's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_periods: int | None = Field(default=None, ge=1)
    tolerance_pct: float | None = Field(default=None, ge=0)


class JudgmentSettings(BaseModel):
    """How a row is judged against a target or its baseline: the baseline is the median of the first
    `baseline_periods` periods with a value; a value worse than the target or baseline by up to
    `tolerance_pct` % of it is `watch`, beyond that `poor`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_periods: int = Field(default=3, ge=1)
    tolerance_pct: float = Field(default=10.0, ge=0)
    kpis: dict[str, KpiJudgment] = Field(default_factory=dict)

    def baseline_periods_for(self, kpi_id: str) -> int:
        """The baseline window of the KPI (its own setting, else the program's)."""
        own = self.kpis.get(kpi_id)
        return own.baseline_periods if own is not None and own.baseline_periods is not None else self.baseline_periods

    def tolerance_for(self, kpi_id: str) -> float:
        """The KPI's tolerance as a fraction (10 % -> 0.1)."""
        own = self.kpis.get(kpi_id)
        pct = own.tolerance_pct if own is not None and own.tolerance_pct is not None else self.tolerance_pct
        return pct / 100.0

    def merged(self, later: JudgmentSettings) -> JudgmentSettings:
        """These settings with the fields `later` sets explicitly replacing them (KPI by KPI, field by field)."""
        top = {f: getattr(later, f) for f in later.model_fields_set if f != "kpis"}
        kpis = dict(self.kpis)
        for kpi_id, own in later.kpis.items():
            before = kpis.get(kpi_id, KpiJudgment())
            kpis[kpi_id] = before.model_copy(update={f: getattr(own, f) for f in own.model_fields_set})
        return self.model_copy(update={**top, "kpis": kpis})


E = TypeVar("E", bound=_Entry)


def _in_force(entries: Sequence[E], kpi_id: str, segment: Mapping[str, str], on: date) -> E | None:
    if not entries:
        return None

    def latest(seg: Mapping[str, str]) -> E | None:
        found = [e for e in entries if e.kpi == kpi_id and e.segment == dict(seg) and e.effective_from <= on]
        return max(found, key=lambda e: e.effective_from, default=None)

    return (latest(segment) if segment else None) or latest({})


def _day(instant: date | datetime) -> date:
    return instant.date() if isinstance(instant, datetime) else instant


class TargetBook:
    """The targets and band sets of a program, looked up per KPI, segment and period start."""

    def __init__(self, targets: Iterable[Target], band_sets: Iterable[BandSet], catalog: Catalog,
                 judgment: JudgmentSettings | None = None) -> None:
        self.targets: tuple[Target, ...] = tuple(sorted(targets, key=lambda e: e.key))
        self.band_sets: tuple[BandSet, ...] = tuple(sorted(band_sets, key=lambda e: e.key))
        self.catalog = catalog
        self.judgment = judgment if judgment is not None else JudgmentSettings()
        # Per KPI, so that judging every row of a per-partner scorecard skips the KPIs without entries at once.
        self._targets_of: dict[str, list[Target]] = {}
        self._band_sets_of: dict[str, list[BandSet]] = {}
        for t in self.targets:
            self._targets_of.setdefault(t.kpi, []).append(t)
        for b in self.band_sets:
            self._band_sets_of.setdefault(b.kpi, []).append(b)

    def __repr__(self) -> str:
        return f"TargetBook({len(self.targets)} targets, {len(self.band_sets)} band sets)"

    @classmethod
    def load(cls, path: str | Path | None = None, *, catalog: Catalog, defaults: bool = True) -> TargetBook:
        """The package default (unless `defaults` is False) plus the user's file; TargetsError lists every problem."""
        return load_targets([path] if path is not None else [], catalog=catalog, defaults=defaults)

    def _kpi(self, kpi: KPI | str) -> KPI:
        return kpi if isinstance(kpi, KPI) else self.catalog.get(kpi)

    def target_for(self, kpi: KPI | str, segment: Mapping[str, str], period_start: date | datetime) -> Target | None:
        """The target in force at `period_start` for the KPI and segment ({} = program), or None."""
        kpi_id = self._kpi(kpi).id
        return _in_force(self._targets_of.get(kpi_id, ()), kpi_id, segment, _day(period_start))

    def target_steps(self, kpi: KPI | str, segment: Mapping[str, str]) -> list[tuple[date, Target]]:
        """The targets of the KPI and segment over time, as (from, target) steps in date order: what a chart
        draws as a step line (a segment's own entry in force beats the program's, as in `target_for`)."""
        kpi_id = self._kpi(kpi).id
        days = sorted({t.effective_from for t in self.targets
                       if t.kpi == kpi_id and t.segment in ({}, dict(segment))})
        steps: list[tuple[date, Target]] = []
        for day in days:
            found = self.target_for(kpi_id, segment, day)
            if found is not None and (not steps or steps[-1][1] != found):
                steps.append((day, found))
        return steps

    def band_set_for(
        self, kpi: KPI | str, segment: Mapping[str, str], period_start: date | datetime
    ) -> BandSet | None:
        """The band set of this book in force at `period_start`, or None (the catalog's bands then apply)."""
        kpi_id = self._kpi(kpi).id
        return _in_force(self._band_sets_of.get(kpi_id, ()), kpi_id, segment, _day(period_start))

    def bands_for(
        self, kpi: KPI | str, segment: Mapping[str, str], period_start: date | datetime
    ) -> tuple[Band, ...]:
        """The bands in force at `period_start`: the book's band set, else the catalog KPI's own bands."""
        found = self.band_set_for(kpi, segment, period_start)
        return found.bands if found is not None else self._kpi(kpi).bands

    def band_of(
        self, kpi: KPI | str, segment: Mapping[str, str], period_start: date | datetime, value: float | None
    ) -> Band | None:
        """The band in force that holds `value` (the first that does), or None (no value, no bands, a gap)."""
        if value is None:
            return None
        return next((b for b in self.bands_for(kpi, segment, period_start) if b.contains(value)), None)

    def met(self, kpi: KPI | str, value: float | None, target: Target | float | None) -> bool | None:
        """Whether `value` meets `target` in the KPI's direction (>= for up, <= for down; equal meets);
        None without a value or a target."""
        if value is None or target is None:
            return None
        goal = target.value if isinstance(target, Target) else float(target)
        return value >= goal if self._kpi(kpi).direction == "up" else value <= goal


# -- loading and validation -----------------------------------------------------------------------------
class _Loader(_StrictLoader):
    """Dates stay text for pydantic to parse, so a bad one (2026-13-01) is a problem, not a crash."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


@dataclass(frozen=True)
class _Source:
    name: str
    text: str


def _default_source() -> _Source:
    path = resources.files("partnerkpi.insights").joinpath("defaults/targets.yaml")
    return _Source(DEFAULT_SOURCE, path.read_text(encoding="utf-8"))


def load_targets(paths: Iterable[str | Path] = (), *, catalog: Catalog, defaults: bool = True) -> TargetBook:
    """A TargetBook from the package default and the user's files (later files replace earlier entries with
    the same KPI, segment and effective_from); TargetsError lists every problem of every file."""
    sources = [_default_source()] if defaults else []
    problems: list[str] = []
    for raw in paths:
        try:
            sources.append(_Source(str(raw), Path(raw).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{raw}: cannot read the file: {exc}; how to fix: check the path and that it is UTF-8")
    targets: dict[tuple, Target] = {}
    band_sets: dict[tuple, BandSet] = {}
    judgment = JudgmentSettings()
    for source in sources:
        found_targets, found_bands, found_problems = _parse(source, catalog)
        found_judgment, judgment_problems = _parse_judgment(source, catalog)
        problems += found_problems + judgment_problems
        targets.update({t.key: t for t in found_targets})
        band_sets.update({b.key: b for b in found_bands})
        if found_judgment is not None:
            judgment = judgment.merged(found_judgment)
    if problems:
        raise TargetsError(problems)
    return TargetBook(targets.values(), band_sets.values(), catalog, judgment)


def _parse(source: _Source, catalog: Catalog) -> tuple[list[Target], list[BandSet], list[str]]:
    data, duplicates, syntax = read_yaml(source.text, _Loader)
    if syntax is not None:
        return [], [], [f"{source.name}: {syntax}; how to fix: {YAML_SYNTAX_FIX}"]
    problems = [f"{source.name}: {d}; how to fix: keep one of the two" for d in duplicates]
    shape = "a mapping with the lists `targets` and/or `band_sets` and the mapping `judgment`"
    if data is None:
        return [], [], problems
    if not isinstance(data, Mapping):
        return [], [], [*problems, f"{source.name}: expected {shape}, found {type(data).__name__}; "
                                   f"how to fix: write the file as {shape}"]
    for key in data:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), _TOP_LEVEL, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(f"{source.name}: unknown top-level key '{key}'; how to fix: {hint}the file must be {shape}")
    targets: list[Target] = []
    band_sets: list[BandSet] = []
    for section, model, out in (("targets", Target, targets), ("band_sets", BandSet, band_sets)):
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            problems.append(f"{source.name}: `{section}` is a {type(entries).__name__}; "
                            f"how to fix: write `{section}:` followed by a list of `- kpi: ...` entries")
            continue
        seen: set[tuple] = set()
        for index, entry in enumerate(entries):
            entry_problems: list[tuple[str, str, str | None]] = []
            where = f"{source.name}: {_SECTIONS[section]} #{index + 1}"
            if not isinstance(entry, Mapping):
                problems.append(f"{where}: the entry is not a mapping; how to fix: write it as `- kpi: ...` "
                                "with effective_from and the other fields")
                continue
            if isinstance(entry.get("kpi"), str):
                where += f" (kpi '{entry['kpi']}')"
            parsed = None
            try:
                parsed = model.model_validate({**entry, "source": source.name})
            except ValidationError as exc:
                entry_problems += [(*_explain(e, model), ".".join(str(p) for p in e["loc"])) for e in exc.errors()]
            if section == "band_sets" and isinstance(entry.get("bands"), list):
                entry_problems += _band_problems(entry["bands"])
            kpi_id = entry.get("kpi")
            if isinstance(kpi_id, str) and kpi_id not in catalog:
                close = difflib.get_close_matches(kpi_id, catalog.ids, n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
                entry_problems.append(("unknown KPI", f"{hint}use the id of a KPI of the catalog", "kpi"))
            if parsed is not None and parsed.key in seen:
                entry_problems.append(("an earlier entry has the same kpi, segment and effective_from",
                                       "keep one of the two, or give them different dates", "effective_from"))
            for message, fix, field in entry_problems:
                at = f", field '{field}'" if field else ""
                problems.append(f"{where}{at}: {message}; how to fix: {fix}")
            if parsed is not None and not entry_problems:
                seen.add(parsed.key)
                out.append(parsed)  # type: ignore[arg-type]
    return targets, band_sets, problems


def _parse_judgment(source: _Source, catalog: Catalog) -> tuple[JudgmentSettings | None, list[str]]:
    """The file's `judgment` section (None when absent); problems name the file, the section and the field
    (syntax and shape problems of the whole file are reported by `_parse`)."""
    data, _, syntax = read_yaml(source.text, _Loader)
    if syntax is not None or not isinstance(data, Mapping) or data.get("judgment") is None:
        return None, []
    section = data["judgment"]
    where = f"{source.name}: judgment"
    if not isinstance(section, Mapping):
        return None, [f"{where}: the section is a {type(section).__name__}; how to fix: write `judgment:` followed "
                      "by `baseline_periods: 3`, `tolerance_pct: 10` and optionally `kpis:`"]
    problems: list[str] = []
    kpis = section.get("kpis")
    if isinstance(kpis, Mapping):
        for kpi_id in kpis:
            if str(kpi_id) not in catalog:
                close = difflib.get_close_matches(str(kpi_id), catalog.ids, n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
                problems.append(f"{where}, field 'kpis.{kpi_id}': unknown KPI; how to fix: {hint}use the id of a "
                                "KPI of the catalog")
    try:
        parsed = JudgmentSettings.model_validate(section)
    except ValidationError as exc:
        for e in exc.errors():
            message, fix = _explain(e, KpiJudgment if len(e["loc"]) > 2 else JudgmentSettings)
            if e["type"] in {"greater_than_equal", "int_parsing", "int_from_float", "float_parsing"}:
                fix = "give a whole number of periods, 1 or more" if e["loc"][-1] == "baseline_periods" \
                    else "give a percentage, 0 or more (10 means 10 %)"
            problems.append(f"{where}, field '{'.'.join(str(p) for p in e['loc'])}': {message}; how to fix: {fix}")
        return None, problems
    return (None if problems else parsed), problems


def _explain(error: Mapping[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    kind, field = error["type"], str(error["loc"][-1]) if error["loc"] else ""
    if kind == "missing":
        return "the field is missing", f"add `{field}:` to the entry"
    if kind == "extra_forbidden":
        options = [f for f in model.model_fields if f != "source"] if len(error["loc"]) == 1 else []
        close = difflib.get_close_matches(field, options, n=1)
        return "unknown field", (f"did you mean '{close[0]}'? " if close else "") + "remove it or fix its name"
    if field == "effective_from" or kind.startswith("date"):
        return error["msg"], "write the date as YYYY-MM-DD"
    if kind == "too_short":
        return error["msg"], "give at least one band"
    return error["msg"], "give a value of the expected type"
