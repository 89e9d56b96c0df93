"""How well the health score predicted churn on the program's own history, against a naive rule.

For each quarter end q whose next quarter lies wholly inside the history (q_next <= the midnight after
the last event), every partner in the program at q is scored at q (manual overrides ignored); its label
is 1 when it was offboarded during the next quarter, [q, q_next). Over all (partner, quarter) pairs:

- AUC: the chance that a churner scores lower than a partner that stayed (Mann-Whitney, ties count half);
- precision and recall of the at-risk flag (the config's `at_risk_levels`);
- lead time: the mean days from q to the offboarding, over the flagged churners.

The naive rule flags a partner with no Logged In event in the 30 days before q; its AUC is that of the
0/1 flag (ties count half). As the two flags differ in how many partners they raise, the result also
gives the score's recall at the naive rule's budget: in each quarter, the same number of partners as the
naive rule flags, lowest scores first (ties by partner id).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from rich.table import Table

from partnerkpi.insights.health import HealthConfig, health_scores, history_start, load_config, utc_instant

NAIVE_DAYS = 30


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve of `scores` (higher = more likely positive) for 0/1 `labels`: the
    Mann-Whitney U over (positives × negatives), ties counting half (average ranks). None without both
    classes."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # 1-based average rank of the tie group
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


@dataclass(frozen=True)
class Metrics:
    """A predictor's figures over a set of (partner, quarter) pairs."""

    pairs: int
    churned: int
    flagged: int
    true_positives: int
    auc: float | None
    precision: float | None
    recall: float | None
    lead_days: float | None  # mean days from the quarter end to the offboarding, flagged churners


def metrics(risk: Sequence[float], flags: Sequence[bool], labels: Sequence[int], lead: Sequence[float | None]
            ) -> Metrics:
    """Figures of one predictor: `risk` (higher = riskier) for the AUC, `flags` for precision and recall,
    `lead` the days to offboarding of each churner (None for the others)."""
    tp = [i for i, (f, y) in enumerate(zip(flags, labels, strict=True)) if f and y]
    flagged, churned = sum(1 for f in flags if f), sum(1 for y in labels if y)
    leads = [lead[i] for i in tp if lead[i] is not None]
    return Metrics(
        pairs=len(labels), churned=churned, flagged=flagged, true_positives=len(tp), auc=auc(risk, labels),
        precision=len(tp) / flagged if flagged else None, recall=len(tp) / churned if churned else None,
        lead_days=sum(leads) / len(leads) if leads else None,
    )


@dataclass(frozen=True)
class QuarterResult:
    as_of: datetime
    next_end: datetime
    model: Metrics
    naive: Metrics


@dataclass(frozen=True)
class BacktestResult:
    """Pooled figures of the health score's at-risk flag and of the naive rule, and each quarter's."""

    quarters: tuple[QuarterResult, ...]
    model: Metrics
    naive: Metrics
    config: str
    recall_at_naive_budget: float | None = None  # the score's recall when flagging as many as the naive rule
    naive_rule: str = f"no login in the {NAIVE_DAYS} days before the quarter end"

    def to_dict(self) -> dict[str, Any]:
        def q(r: QuarterResult) -> dict[str, Any]:
            return {"as_of": r.as_of.date().isoformat(), "next_end": r.next_end.date().isoformat(),
                    "model": asdict(r.model), "naive": asdict(r.naive)}

        return {"config": self.config, "naive_rule": self.naive_rule, "model": asdict(self.model),
                "naive": asdict(self.naive), "recall_at_naive_budget": self.recall_at_naive_budget,
                "quarters": [q(r) for r in self.quarters]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def rich_table(self) -> Table:
        """Quarters as rows, the model's and the naive rule's figures side by side, then the totals."""
        table = Table(title=f"Health-score backtest: churn in the next quarter (naive rule: {self.naive_rule})",
                      title_justify="left")
        for col in ("quarter end", "partners", "churned", "AUC", "precision", "recall", "lead days",
                    "naive AUC", "naive precision", "naive recall", "naive lead days"):
            table.add_column(col, justify="left" if col == "quarter end" else "right")

        def cells(m: Metrics) -> list[str]:
            return [_fmt(m.auc, 3), _pct(m.precision), _pct(m.recall), _fmt(m.lead_days, 0)]

        for r in self.quarters:
            table.add_row(r.as_of.date().isoformat(), str(r.model.pairs), str(r.model.churned),
                          *cells(r.model), *cells(r.naive))
        table.add_section()
        table.add_row("all", str(self.model.pairs), str(self.model.churned), *cells(self.model), *cells(self.naive),
                      style="bold")
        table.caption = (f"At the naive rule's budget ({self.naive.flagged} flags, lowest scores first) the score's "
                         f"recall is {_pct(self.recall_at_naive_budget)}.")
        table.caption_justify = "left"
        return table


def _fmt(x: float | None, digits: int) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def quarter_ends(first: datetime, data_end: datetime) -> list[datetime]:
    """Quarter starts q after `first` whose next quarter ends at or before `data_end`."""
    out = []
    q = datetime(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    while True:
        q = _next_quarter(q)
        if _next_quarter(q) > data_end:
            return out
        if q > first:
            out.append(q)


def _next_quarter(q: datetime) -> datetime:
    return datetime(q.year + (q.month >= 10), (q.month + 2) % 12 + 1, 1)


def backtest(hub: Any, config: HealthConfig | None = None, ends: Sequence[date | datetime] | None = None
             ) -> BacktestResult:
    """Score the partners at each quarter end of the history (or `ends`) and compare with who churned in
    the next quarter; the same for the naive rule."""
    config = config or load_config(catalog=hub.catalog)
    first, last = history_start(hub), hub.last_event_at()
    if ends is None:
        if first is None:
            return BacktestResult((), _empty(), _empty(), config.source)
        ends = quarter_ends(first, datetime(last.year, last.month, last.day) + timedelta(days=1))
    offboarded = {p["partner_id"]: p["offboarded_at"] for p in hub.partners() if p["offboarded_at"] is not None}
    logins = _login_partners(hub, [utc_instant(q) for q in ends])
    quarters, pooled = [], {"model": ([], [], [], []), "naive": ([], [], [], [])}
    budget_hits = 0
    for q in (utc_instant(e) for e in ends):
        nxt = _next_quarter(q) if q.day == 1 and q.month in (1, 4, 7, 10) else q + timedelta(days=91)
        scores = health_scores(hub, q, config, overrides=False)
        labels, lead = [], []
        for s in scores:
            off = offboarded.get(s.partner_id)
            churn = off is not None and q <= off < nxt
            labels.append(int(churn))
            lead.append((off - q).total_seconds() / 86400 if churn else None)
        at_risk = set(config.at_risk_levels)
        model = ([100 - s.computed_score for s in scores], [s.computed_level in at_risk for s in scores])
        naive_flags = [s.partner_id not in logins[q] for s in scores]
        naive = ([float(f) for f in naive_flags], naive_flags)
        lowest = sorted(range(len(scores)), key=lambda i: (scores[i].computed_score, scores[i].partner_id))
        budget_hits += sum(labels[i] for i in lowest[: sum(naive_flags)])
        per = {}
        for key, (risk, flags) in (("model", model), ("naive", naive)):
            per[key] = metrics(risk, flags, labels, lead)
            for acc, values in zip(pooled[key], (risk, flags, labels, lead), strict=True):
                acc.extend(values)
        quarters.append(QuarterResult(q, nxt, per["model"], per["naive"]))
    model, naive = metrics(*pooled["model"]), metrics(*pooled["naive"])
    recall = budget_hits / model.churned if model.churned else None
    return BacktestResult(tuple(quarters), model, naive, config.source, recall_at_naive_budget=recall)


def _empty() -> Metrics:
    return metrics([], [], [], [])


def _login_partners(hub: Any, ends: Sequence[datetime]) -> dict[datetime, set[str]]:
    """Per quarter end, the partners with a Logged In event in the NAIVE_DAYS before it (one query)."""
    import ibis

    engine = hub.engine
    e = engine.table("events")
    e = e.filter((e.event == "Logged In") & e.partner_id.notnull())
    out: dict[datetime, set[str]] = {q: set() for q in ends}
    if not ends:
        return out
    qs = ibis.memtable({"q": list(ends)})
    j = e.join(qs, (e.ts < qs.q) & (e.ts >= qs.q - ibis.interval(days=NAIVE_DAYS)))
    df = engine.execute(j.select("q", "partner_id").distinct())
    for q, pid in zip(df["q"], df["partner_id"], strict=True):
        out[q.to_pydatetime()].add(pid)
    return out
