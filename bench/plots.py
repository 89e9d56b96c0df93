"""Plots of time against events from bench/results/results.jsonl, as PNG files in docs/bench/.

    python bench/plots.py          # docs/bench/time-vs-events.png and docs/bench/rate-vs-events.png

Both axes are logarithmic, so a phase whose cost grows linearly with the events is a line of slope one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert
from targets import runs_by_size

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench"
LABELS = {"import": "import (Parquet)", "import_csv": "import (CSV)", "prepare": "prepare (rollups)",
          "scorecard": "full scorecard", "raw": "raw DuckDB pass"}


def frame() -> pd.DataFrame:
    """(events, phase, seconds, rate) per size and phase, events as actually imported."""
    rows = []
    for r in runs_by_size().values():
        events = r["import"]["events_accepted"]
        for phase, label in LABELS.items():
            if phase in r:
                seconds = r[phase]["seconds"]
                rows.append({"events": events, "phase": label, "seconds": seconds, "rate": events / seconds})
    return pd.DataFrame(rows)


def _save(chart: alt.Chart, path: Path) -> Path:
    path.write_bytes(vl_convert.vegalite_to_png(chart.to_dict(), scale=2))
    return path


def write(out: Path = OUT) -> list[Path]:
    """Write the plots; returns their paths (none when there are no results yet)."""
    df = frame()
    if df.empty:
        return []
    out.mkdir(parents=True, exist_ok=True)
    x = alt.X("events:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~s"), title="events")
    color = alt.Color("phase:N", title=None)
    base = alt.Chart(df).mark_line(point=True).properties(width=520, height=300)
    times = base.encode(x, alt.Y("seconds:Q", scale=alt.Scale(type="log"), title="seconds"), color,
                        tooltip=["phase", "events", "seconds"]).properties(title="Time against events")
    rates = base.transform_filter(alt.FieldOneOfPredicate("phase", [LABELS["import"], LABELS["import_csv"]])).encode(
        x, alt.Y("rate:Q", title="events per second"), color).properties(title="Import rate against events")
    target = alt.Chart(pd.DataFrame({"rate": [1_000_000]})).mark_rule(strokeDash=[4, 4]).encode(y="rate:Q")
    return [_save(times, out / "time-vs-events.png"), _save(rates + target, out / "rate-vs-events.png")]


def main() -> None:
    """Write the plots and name them."""
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    for path in write():
        print(path)


if __name__ == "__main__":
    main()
