"""The KPI catalog: the built-in KPIs plus the user's own KPI files, checked all at once.

A catalog file is YAML: a list of KPI entries, or a mapping with the key `kpis` holding that list.
Each entry follows `partnerkpi.catalog.model.KPI`; its `compute` uses a kind of `catalog.kind_specs`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from partnerkpi.catalog.kind_specs import check_compute
from partnerkpi.catalog.model import CATEGORY_TITLES, KPI, Band, Benchmark
from partnerkpi.catalog.plan import TrackingPlan, load_plan
from partnerkpi.errors import CatalogError, UnknownKPIError

__all__ = [
    "BUILTIN_FILES",
    "Catalog",
    "CatalogFile",
    "Problem",
    "builtin_files",
    "find_problems",
    "load_catalog",
    "read_files",
    "validate",
]

BUILTIN_FILES: tuple[str, ...] = tuple(f"{category}.yaml" for category in CATEGORY_TITLES)
BUILTIN_SOURCE = "built-in"
BAND_COLORS = ("green", "amber", "red", "grey")
_TEXT_FIELDS = (
    "name",
    "unit",
    "definition",
    "business_insights",
    "measurement_approach",
    "formula",
    "trend_analysis",
    "visualization",
    "change_impact",
)
_LIST_FIELDS = ("diagnostic_questions", "improvement_levers", "risk_warnings", "tools", "integration_points")


class Catalog:
    """The KPIs in display order: by category (adoption … outcomes), then in file order."""

    def __init__(self, kpis: Iterable[KPI]) -> None:
        order = {category: i for i, category in enumerate(CATEGORY_TITLES)}
        self._kpis: tuple[KPI, ...] = tuple(sorted(kpis, key=lambda k: order[k.category]))
        self._by_id: dict[str, KPI] = {k.id: k for k in self._kpis}
        if len(self._by_id) != len(self._kpis):
            raise CatalogError(["the same KPI id appears twice; load catalogs with load_catalog()"])

    def __iter__(self) -> Iterator[KPI]:
        return iter(self._kpis)

    def __len__(self) -> int:
        return len(self._kpis)

    def __contains__(self, kpi_id: object) -> bool:
        return kpi_id in self._by_id

    def __repr__(self) -> str:
        return f"Catalog({len(self)} KPIs)"

    @property
    def ids(self) -> tuple[str, ...]:
        """Every KPI id, in catalog order."""
        return tuple(k.id for k in self._kpis)

    def get(self, kpi_id: str) -> KPI:
        """The KPI called `kpi_id`; UnknownKPIError (with the closest ids as a hint) if there is none."""
        try:
            return self._by_id[kpi_id]
        except KeyError:
            close = difflib.get_close_matches(kpi_id, self.ids, n=3, cutoff=0.5)
            hint = (
                f"did you mean {' or '.join(repr(c) for c in close)}?"
                if close
                else f"known KPI ids: {', '.join(self.ids)}"
            )
            raise UnknownKPIError(f"unknown KPI '{kpi_id}'", hint=hint) from None

    def by_category(self) -> dict[str, tuple[KPI, ...]]:
        """The KPIs grouped by category, in category order (categories without KPIs are left out)."""
        out: dict[str, tuple[KPI, ...]] = {}
        for category in CATEGORY_TITLES:
            kpis = tuple(k for k in self._kpis if k.category == category)
            if kpis:
                out[category] = kpis
        return out


@dataclass(frozen=True)
class CatalogFile:
    """The text of one catalog file, and whether it ships with partnerkpi."""

    name: str
    text: str
    builtin: bool = False


@dataclass(frozen=True)
class Problem:
    """One catalog problem: where it is (file, KPI id, field), what is wrong, and how to fix it."""

    file: str
    message: str
    fix: str
    kpi: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.kpi is not None:
            where += f": KPI '{self.kpi}'"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}; how to fix: {self.fix}"


def builtin_files() -> list[CatalogFile]:
    """The catalog files that ship with partnerkpi, one per category."""
    root = resources.files("partnerkpi.catalog").joinpath("builtin")
    return [
        CatalogFile(f"built-in {name}", root.joinpath(name).read_text(encoding="utf-8"), builtin=True)
        for name in BUILTIN_FILES
    ]


def read_files(paths: Iterable[str | Path]) -> tuple[list[CatalogFile], list[Problem]]:
    """Read the user's catalog files (a directory means its *.yaml and *.yml files, sorted)."""
    files: list[CatalogFile] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        if path.is_dir() and not found:
            problems.append(
                Problem(
                    str(path),
                    "the directory holds no *.yaml or *.yml file",
                    "put KPI files in it, or pass the files themselves",
                )
            )
        for file in found:
            try:
                files.append(CatalogFile(str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(
                    Problem(
                        str(file),
                        f"cannot read the file: {exc}",
                        "check the path and that the file is UTF-8 text",
                    )
                )
    return files, problems


def load_catalog(extra_paths: Iterable[str | Path] = (), plan: TrackingPlan | None = None) -> Catalog:
    """The built-in KPIs plus those of the user's files; CatalogError lists every problem found."""
    plan = plan if plan is not None else load_plan()
    files, problems = read_files(extra_paths)
    kpis, more = find_problems([*builtin_files(), *files], plan)
    problems += more
    if problems:
        raise CatalogError([str(p) for p in problems])
    return Catalog(kpis)


def validate(files: Sequence[CatalogFile], plan: TrackingPlan) -> list[KPI]:
    """The KPIs of `files`, or CatalogError listing every problem (with file, KPI id, field and fix)."""
    kpis, problems = find_problems(files, plan)
    if problems:
        raise CatalogError([str(p) for p in problems])
    return kpis


def find_problems(files: Sequence[CatalogFile], plan: TrackingPlan) -> tuple[list[KPI], list[Problem]]:
    """Check `files` together: the KPIs that are valid, and every problem found in any of them."""
    kpis: list[KPI] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}  # id -> file that defined it first
    related: list[tuple[str, str, int, Any]] = []  # (file, id, index, raw related entry)
    for file in files:
        entries, file_problems = _entries(file)
        problems += file_problems
        for index, entry in enumerate(entries):
            label = _label(entry, index)
            if not isinstance(entry, Mapping):
                problems.append(
                    Problem(
                        file.name,
                        "the entry is not a mapping of fields",
                        "write each KPI as `- id: ...` followed by its fields",
                        kpi=label,
                    )
                )
                continue
            kpi_id = entry.get("id")
            duplicate = isinstance(kpi_id, str) and kpi_id in seen
            if isinstance(kpi_id, str):
                if duplicate:
                    problems.append(
                        Problem(
                            file.name,
                            f"the id is already defined in {seen[kpi_id]}",
                            "give the KPI its own id (a user KPI cannot replace a built-in one)",
                            kpi=label,
                            field="id",
                        )
                    )
                else:
                    seen[kpi_id] = file.name
            kpi, entry_problems = _check_entry(file, label, entry, plan)
            problems += entry_problems
            if kpi is not None and not entry_problems and not duplicate:
                kpis.append(kpi)
            if isinstance(entry.get("related"), list):
                related += [(file.name, label, i, r) for i, r in enumerate(entry["related"])]
    for file_name, label, i, item in related:
        target = item.get("kpi") if isinstance(item, Mapping) else None
        if isinstance(target, str) and target not in seen:
            close = difflib.get_close_matches(target, list(seen), n=3)
            problems.append(
                Problem(
                    file_name,
                    f"related KPI '{target}' is not in the catalog",
                    (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
                    + "use the id of a KPI of the catalog; docs/kpis.md lists the built-in ones",
                    kpi=label,
                    field=f"related.{i}.kpi",
                )
            )
        elif target == label:
            problems.append(
                Problem(
                    file_name,
                    "a KPI cannot be related to itself",
                    "remove this entry",
                    kpi=label,
                    field=f"related.{i}.kpi",
                )
            )
    return kpis, problems


def _label(entry: Any, index: int) -> str:
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str) and entry["id"]:
        return str(entry["id"])
    return f"entry #{index + 1}"


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that records mapping keys given twice (PyYAML silently keeps the last one)."""

    duplicates: list[str]


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, str) and key in seen:
            loader.duplicates.append(f"key '{key}' appears twice (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


YAML_SYNTAX_FIX = "fix the YAML (indentation, quotes, a ':' inside an unquoted text)"


def read_yaml(text: str, loader_class: type[_StrictLoader] | None = None) -> tuple[Any, list[str], str | None]:
    """Parse a configuration file's YAML, refusing duplicate keys: (data, the duplicate keys found, the
    syntax error with its line and column, or None). Every configuration loader reads YAML this way."""
    loader = (loader_class or _StrictLoader)(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates, None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return None, [], f"YAML syntax error{where}: {getattr(exc, 'problem', None) or exc}"
    finally:
        loader.dispose()


def _entries(file: CatalogFile) -> tuple[list[Any], list[Problem]]:
    data, duplicates, syntax = read_yaml(file.text)
    if syntax is not None:
        return [], [Problem(file.name, syntax, YAML_SYNTAX_FIX)]
    problems = [Problem(file.name, d, "keep one of the two") for d in duplicates]
    shape = "a list of KPI entries, or a mapping with the key `kpis` holding that list"
    if isinstance(data, Mapping):
        for key in data:
            if key != "kpis":
                problems.append(
                    Problem(file.name, f"unknown top-level key '{key}'", f"the file must be {shape}")
                )
        data = data.get("kpis")
    if data is None:
        problems.append(Problem(file.name, "the file holds no KPI entries", f"the file must be {shape}"))
        return [], problems
    if not isinstance(data, list):
        problems.append(
            Problem(
                file.name,
                f"expected a list of KPI entries, found {type(data).__name__}",
                f"the file must be {shape}",
            )
        )
        return [], problems
    return data, problems


def _check_entry(
    file: CatalogFile, label: str, entry: Mapping[str, Any], plan: TrackingPlan
) -> tuple[KPI | None, list[Problem]]:
    def problem(message: str, fix: str, field: str | None = None) -> Problem:
        return Problem(file.name, message, fix, kpi=label, field=field)

    problems: list[Problem] = []
    kpi: KPI | None = None
    try:
        kpi = KPI.model_validate({**entry, "source": BUILTIN_SOURCE if file.builtin else file.name})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(problem(*_explain(error), field=field))
    for name in _TEXT_FIELDS:
        if isinstance(entry.get(name), str) and not entry[name].strip():
            problems.append(problem("the text is empty", f"write the {name.replace('_', ' ')}", field=name))
    for name in _LIST_FIELDS:
        items = entry.get(name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, str) and not item.strip():
                    problems.append(
                        problem("the item is empty", "write it or remove it", field=f"{name}.{i}")
                    )
    if isinstance(entry.get("compute"), Mapping):
        for p in check_compute(entry["compute"], plan, builtin=file.builtin):
            problems.append(problem(p.message, p.fix, field=p.field))
    problems += [problem(m, f, field) for m, f, field in _band_problems(entry.get("bands"))]
    problems += [problem(m, f, field) for m, f, field in _benchmark_problems(entry.get("benchmarks"))]
    if isinstance(entry.get("related"), list):
        for i, item in enumerate(entry["related"]):
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("effect"), str)
                and not item["effect"].strip()
            ):
                problems.append(
                    problem(
                        "the effect is empty",
                        "say in words how this KPI moves the other",
                        field=f"related.{i}.effect",
                    )
                )
    return kpi, problems


def _explain(error: Mapping[str, Any]) -> tuple[str, str]:
    kind, field = error["type"], str(error["loc"][-1]) if error["loc"] else ""
    if kind == "missing":
        return "the field is missing", f"add `{field}:` to the entry"
    if kind == "extra_forbidden":
        options = list(KPI.model_fields) if len(error["loc"]) == 1 else []
        close = difflib.get_close_matches(field, options, n=1)
        return "unknown field", (
            f"did you mean '{close[0]}'? " if close else ""
        ) + "remove it or fix its name"
    if kind == "string_pattern_mismatch":
        return error["msg"], "use lower-case letters, digits and underscores, starting with a letter"
    if kind == "literal_error":
        return error["msg"], "write one of the allowed values"
    return error["msg"], "give a value of the expected type"


def _edge(value: float | None, inclusive: bool, default: float) -> tuple[float, bool]:
    return (default, False) if value is None else (float(value), inclusive)


def _band_problems(raw: Any) -> list[tuple[str, str, str]]:
    if not isinstance(raw, list):
        return []  # absent, or the model reports the wrong type
    bands: list[Band] = []
    for item in raw:
        try:
            bands.append(Band.model_validate(item))
        except ValidationError:
            return []  # the model reports it
    out: list[tuple[str, str, str]] = []
    names: set[str] = set()
    inf = float("inf")
    for i, band in enumerate(bands):
        field = f"bands.{i}"
        if band.name in names:
            out.append((f"band name '{band.name}' is used twice", "give each band its own name", field))
        names.add(band.name)
        if band.color not in BAND_COLORS:
            out.append(
                (f"unknown color '{band.color}'", f"use one of: {', '.join(BAND_COLORS)}", f"{field}.color")
            )
        lo, lo_inc = _edge(band.min, band.min_inclusive, -inf)
        hi, hi_inc = _edge(band.max, band.max_inclusive, inf)
        if lo > hi or (lo == hi and not (lo_inc and hi_inc)):
            out.append(
                (
                    f"band '{band.name}' is inverted or empty (min {band.min}, max {band.max})",
                    "make min smaller than max (or equal with both edges inclusive)",
                    field,
                )
            )
            continue
        for other in bands[:i]:
            if _overlap(band, other):
                out.append(
                    (
                        f"band '{band.name}' overlaps band '{other.name}'",
                        "make the ranges disjoint; set min_inclusive/max_inclusive false on a shared edge",
                        field,
                    )
                )
    return out


def _overlap(a: Band, b: Band) -> bool:
    inf = float("inf")
    a_lo, b_lo = _edge(a.min, a.min_inclusive, -inf), _edge(b.min, b.min_inclusive, -inf)
    a_hi, b_hi = _edge(a.max, a.max_inclusive, inf), _edge(b.max, b.max_inclusive, inf)
    lo = max(a_lo[0], b_lo[0])
    lo_inc = all(inc for v, inc in (a_lo, b_lo) if v == lo)
    hi = min(a_hi[0], b_hi[0])
    hi_inc = all(inc for v, inc in (a_hi, b_hi) if v == hi)
    return lo < hi or (lo == hi and lo_inc and hi_inc)


def _benchmark_problems(raw: Any) -> list[tuple[str, str, str]]:
    if not isinstance(raw, list):
        return []
    out: list[tuple[str, str, str]] = []
    for i, item in enumerate(raw):
        try:
            benchmark = Benchmark.model_validate(item)
        except ValidationError:
            continue  # the model reports it
        if not benchmark.source.strip():
            out.append(
                (
                    "the benchmark has no source",
                    "name where the value comes from (publisher, study, year)",
                    f"benchmarks.{i}.source",
                )
            )
        if not benchmark.label.strip():
            out.append(
                ("the benchmark has no label", "say what the value stands for", f"benchmarks.{i}.label")
            )
    return out
