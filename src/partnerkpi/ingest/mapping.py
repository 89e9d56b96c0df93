"""Mapping files: how a source's own column, event and property names become ours.

```yaml
columns: {AccountId: partner_id, When: ts}      # rename source columns (Segment: trait names)
events: {login: Logged In}                       # rename event names
properties: {deal_size: amount}                  # fold flat columns into the properties object
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from partnerkpi.errors import InputFileError

SECTIONS = ("columns", "events", "properties")


@dataclass(frozen=True)
class Mapping:
    """Renames applied while importing; empty when no mapping file is given."""

    columns: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    def canonical_text(self) -> str:
        """A stable text of the mapping, part of an import's fingerprint."""
        return json.dumps(
            {"columns": self.columns, "events": self.events, "properties": self.properties}, sort_keys=True
        )


def _section(name: str, value: Any, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"'{name}' must be a mapping of their name to our name, got {type(value).__name__}")
        return {}
    out: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(key, str) or not key:
            problems.append(f"{name}: key {key!r} is not a non-empty text; quote it in the YAML")
        elif not isinstance(target, str) or not target.strip():
            problems.append(f"{name}: '{key}' maps to {target!r}; the target must be a non-empty text")
        else:
            out[key] = target
    return out


def load_mapping(path: Path | str | None) -> Mapping:
    """Read and validate a mapping file; every problem is reported at once."""
    if path is None:
        return Mapping()
    where = str(path)
    hint = "a mapping file has up to three sections: columns, events, properties (each their_name: our_name)"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"cannot read the mapping file: {exc.strerror or exc}", file=where,
                             hint="check the path given with --mapping") from exc
    except UnicodeDecodeError as exc:
        raise InputFileError("the mapping file is not UTF-8 text", file=where, hint=hint) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputFileError(f"the mapping file is not valid YAML: {problem}", file=where,
                             row=mark.line + 1 if mark else None, hint=hint) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputFileError("the mapping file must be a YAML mapping", file=where, hint=hint)
    problems: list[str] = []
    unknown = [str(k) for k in data if k not in SECTIONS]
    if unknown:
        problems.append(f"unknown section(s) {', '.join(unknown)}; allowed: {', '.join(SECTIONS)}")
    columns = _section("columns", data.get("columns"), problems)
    events = _section("events", data.get("events"), problems)
    properties = _section("properties", data.get("properties"), problems)
    for name, section in (("columns", columns), ("properties", properties)):
        targets: dict[str, str] = {}
        for their, ours in section.items():
            if ours.lower() in targets:
                problems.append(f"{name}: '{their}' and '{targets[ours.lower()]}' both map to '{ours}'")
            targets[ours.lower()] = their
    for their in sorted(set(columns) & set(properties)):
        problems.append(f"'{their}' is both renamed (columns) and folded into properties; keep one")
    if problems:
        listing = "; ".join(problems)
        raise InputFileError(f"invalid mapping file ({len(problems)} problem(s)): {listing}", file=where, hint=hint)
    return Mapping(columns=columns, events=events, properties=properties, source=where)
