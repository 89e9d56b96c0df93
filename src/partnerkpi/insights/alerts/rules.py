"""The alert rule file: channels (webhooks, e-mail), the rule kinds (threshold, band change, change in %,
worsening for K periods, at-risk), and `load_rules`, which checks a file against the catalog and reports
every problem at once."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from partnerkpi.engine.periods import Grain
from partnerkpi.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from partnerkpi.hub import Hub

DEFAULT_RULES = Path(__file__).parent.parent / "defaults" / "alerts.yaml"
Severity = Literal["info", "warning", "critical"]


class AlertRulesError(ConfigError):
    """An alert rules file has problems; `problems` lists every one, each naming the file and the rule."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.subject = f"the alert rules file {source}"
        super().__init__(problems)
        self.source = source
        self.hint = f"fix the rules named above; the format is described at the top of {DEFAULT_RULES}"


# -- the rule file ------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class WebhookChannel(_Strict):
    """POST a Slack-compatible JSON body (`text` + `blocks`) to `url` (or to the URL in env var `url_env`)."""

    url: str | None = None
    url_env: str | None = None
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of `url` and `url_env`")
        return self


class EmailChannel(_Strict):
    """Send a plain-text email through an SMTP server; credentials come from the named env variables."""

    to: tuple[str, ...] = Field(min_length=1)
    sender: str = Field(alias="from")
    host: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> EmailChannel:
        if self.starttls and self.ssl:
            raise ValueError("choose one of `starttls` (port 587) and `ssl` (port 465)")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both `username_env` and `password_env`, or neither")
        return self


class Channel(_Strict):
    """A named delivery channel: exactly one of `webhook` and `email`."""

    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None

    @model_validator(mode="after")
    def _one(self) -> Channel:
        if (self.webhook is None) == (self.email is None):
            raise ValueError("a channel is either `webhook: {url: ...}` or `email: {to: [...], ...}`")
        return self


class _Rule(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kpi: str
    scope: Literal["program", "segment", "partner"] = "program"
    by: str | None = None
    grain: Grain = Grain.MONTH
    channels: tuple[str, ...] = ()
    severity: Severity = "warning"
    description: str | None = None

    @model_validator(mode="after")
    def _scope_by(self) -> _Rule:
        if self.scope == "segment" and not self.by:
            raise ValueError("a segment rule needs `by: TRAIT` (e.g. by: type)")
        if self.scope != "segment" and self.by:
            raise ValueError("`by` is only for scope: segment")
        return self


class ThresholdRule(_Rule):
    """The value is below / above `value` (strictly, unless `inclusive`); fires when that becomes true."""

    kind: Literal["threshold"]
    op: Literal["below", "above"]
    value: float
    inclusive: bool = False


class BandChangeRule(_Rule):
    """The band differs from the previous period's (only moves into the bands of `to`, when given)."""

    kind: Literal["band_change"]
    to: tuple[str, ...] | None = None


class ChangePctRule(_Rule):
    """The relative change against the previous period exceeds `more_than` % (`worse`: only when worse)."""

    kind: Literal["change_pct"]
    more_than: float = Field(gt=0)
    direction: Literal["any", "worse"] = "any"


class WorseningRule(_Rule):
    """The value worsened (in the KPI's direction) in each of the last `periods` periods."""

    kind: Literal["worsening"]
    periods: int = Field(ge=1, le=24)
    leading_only: bool = True


class AtRiskRule(_Rule):
    """A partner is at risk according to the injected provider (the health score)."""

    kind: Literal["at_risk"]
    kpi: str = ""
    scope: Literal["partner"] = "partner"

    @model_validator(mode="after")
    def _no_kpi(self) -> AtRiskRule:
        if self.kpi:
            raise ValueError("an at_risk rule takes no `kpi` (the at-risk provider decides)")
        return self


class StaleDataRule(_Rule):
    """The feed went silent: the wall clock is more than the stale-after setting past the data watermark
    (one program-wide alert instead of every KPI falling; it resolves when data arrives again)."""

    kind: Literal["stale_data"]
    kpi: str = ""
    scope: Literal["program"] = "program"

    @model_validator(mode="after")
    def _no_kpi(self) -> StaleDataRule:
        if self.kpi:
            raise ValueError("a stale_data rule takes no `kpi` (it watches the data watermark)")
        return self


Rule = ThresholdRule | BandChangeRule | ChangePctRule | WorseningRule | AtRiskRule | StaleDataRule
KINDS = ("threshold", "band_change", "change_pct", "worsening", "at_risk", "stale_data")
_RULE = TypeAdapter(Annotated[Rule, Field(discriminator="kind")])
_CHANNEL = TypeAdapter(Channel)


@dataclass(frozen=True)
class RuleSet:
    """The rules and channels of one file."""

    rules: tuple[Rule, ...]
    channels: dict[str, Channel]
    source: str


def _issues(exc: ValidationError, skip: int = 0) -> list[str]:
    out = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"][skip:])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{where}: {msg}" if where else msg)
    return out


def load_rules(path: str | os.PathLike[str] | None, hub: Hub) -> RuleSet:
    """Read and check a rules file (default: the built-in rules); AlertRulesError lists every problem."""
    path = Path(path) if path is not None else DEFAULT_RULES
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the alert rules file {source}: {exc.strerror}",
                         hint="check the path given with --rules") from None
    except yaml.YAMLError as exc:
        raise AlertRulesError(source, [f"{source}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise AlertRulesError(source, [f"{source}: expected a mapping with a `rules:` list (and optional `channels:`)"])
    problems = [f"{source}: unknown top-level key '{k}'" for k in data if k not in ("version", "channels", "rules")]
    channels: dict[str, Channel] = {}
    raw_channels = data.get("channels") or {}
    if not isinstance(raw_channels, dict):
        problems.append(f"{source}: `channels` must map channel names to a webhook or email definition")
        raw_channels = {}
    for name, spec in raw_channels.items():
        try:
            channels[str(name)] = _CHANNEL.validate_python(spec)
        except ValidationError as exc:
            problems += [f"{source}: channel '{name}': {i}" for i in _issues(exc)]
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, raw in enumerate(data["rules"], start=1):
        rid = raw.get("id") if isinstance(raw, dict) else None
        where = f"{source}: rule '{rid}'" if rid else f"{source}: rule #{n}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping of rule fields")
            continue
        if raw.get("kind") not in KINDS:
            problems.append(f"{where}: kind: '{raw.get('kind')}' is not one of: {', '.join(KINDS)}")
            continue
        try:
            rule = _RULE.validate_python(raw)
        except ValidationError as exc:
            problems += [f"{where}: {i}" for i in _issues(exc, skip=1)]
            continue
        if rule.id in seen:
            problems.append(f"{where}: the id is used by an earlier rule; rule ids must be unique")
        seen.add(rule.id)
        problems += [f"{where}: {p}" for p in _check_rule(rule, hub, channels)]
        rules.append(rule)
    if problems:
        raise AlertRulesError(source, problems)
    return RuleSet(tuple(rules), channels, source)


def _check_rule(rule: Rule, hub: Hub, channels: dict[str, Channel]) -> list[str]:
    problems = [f"channels: '{c}' is not defined under `channels:` in this file" for c in rule.channels
                if c not in channels]
    if rule.scope == "segment" and rule.by not in hub.traits():
        problems.append(f"by: unknown partner trait '{rule.by}' (known: {', '.join(hub.traits())}; "
                        "for one alert per partner use scope: partner)")
    if isinstance(rule, AtRiskRule | StaleDataRule):
        return problems
    if rule.kpi not in hub.catalog:
        close = difflib.get_close_matches(rule.kpi, hub.catalog.ids, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else "see `partnerkpi kpis`"
        return [*problems, f"kpi: unknown KPI '{rule.kpi}'; {hint}"]
    kpi = hub.kpi(rule.kpi)
    if rule.scope == "partner" and kpi.partner_page is None:
        problems.append(f"scope: {kpi.id} is a program-level KPI with no per-partner value; use scope program "
                        "or segment")
    if isinstance(rule, BandChangeRule):
        names = [b.name for b in kpi.bands]
        if not names:
            problems.append(f"kind: {kpi.id} has no bands, so its band cannot change; use threshold instead")
        problems += [f"to: '{b}' is not a band of {kpi.id} (bands: {', '.join(names)})"
                     for b in rule.to or () if names and b not in names]
    if isinstance(rule, WorseningRule) and rule.leading_only and kpi.timing != "leading":
        problems.append(f"kpi: {kpi.id} is not a leading indicator; pick a leading KPI or set leading_only: false")
    return problems
