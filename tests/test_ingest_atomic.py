"""Each file lands whole or not at all, only once; progress and the summary table."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from partnerkpi.catalog.plan import load_plan
from partnerkpi.errors import InputFileError
from partnerkpi.ingest import ImportSummary, import_files, importer, summary_table
from partnerkpi.store import Store

DATA = Path(__file__).parent / "data" / "ingest"


@pytest.fixture
def hub(tmp_path):
    s = Store.open(tmp_path / "x.duckdb", load_plan())
    import_files(s, [DATA / "partners.csv", DATA / "users.csv"])
    yield s
    s.close()


def good_events(path: Path, n: int, *, bad_line: str | None = None) -> Path:
    lines = [f"e{i},2026-07-01T00:00:00Z,Logged In,u{1 + i % 3}" for i in range(n)]
    if bad_line:
        lines.append(bad_line)
    path.write_text("event_id,ts,event,user_id\n" + "\n".join(lines) + "\n")
    return path


def test_a_failure_mid_import_rolls_everything_back(hub, tmp_path, monkeypatch):
    before = hub.counts()
    path = good_events(tmp_path / "events.csv", 100)
    path.write_text(path.read_text() + "x1,garbage,Logged In,u1\n")

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "store_rejections", fail)  # runs after the events were inserted
    with pytest.raises(RuntimeError, match="disk full"):
        import_files(hub, [path])
    assert hub.counts() == before
    monkeypatch.undo()
    [s] = import_files(hub, [path])
    assert (s.skipped_same_file, s.accepted, s.rejected) == (False, 100, 1)


def test_an_unreadable_later_part_writes_nothing(hub, tmp_path):
    before = hub.counts()
    path = good_events(tmp_path / "events.csv", 5000, bad_line='e-bad,"2026-07-01,Logged In,u1')
    with pytest.raises(InputFileError) as err:
        import_files(hub, [path])
    assert err.value.row == 5001 and "unterminated quote" in err.value.message
    assert hub.counts() == before

    partners = tmp_path / "partners.csv"
    partners.write_text("partner_id,onboarded_at,channel\n" + "".join(f"q{i},2026-01-01,web\n" for i in range(3000))
                        + "q-bad,2026-01-01,web,extra\n")
    with pytest.raises(InputFileError) as err:
        import_files(hub, [partners])
    assert err.value.row == 3001
    assert hub.counts() == before and "channel" not in hub.columns("partners")


def test_a_corrupt_parquet_row_group_writes_nothing(hub, tmp_path):
    before = hub.counts()
    path = tmp_path / "events.parquet"
    n = 60_000
    table = pa.table({"event_id": [f"e{i}" for i in range(n)], "ts": ["2026-07-01T00:00:00Z"] * n,
                      "event": ["Logged In"] * n, "user_id": [f"u{1 + i % 3}" for i in range(n)]})
    pq.write_table(table, path, row_group_size=10_000, compression="snappy", use_dictionary=False)
    data = bytearray(path.read_bytes())
    mid = len(data) * 3 // 4
    data[mid:mid + 4000] = b"\xff" * 4000
    path.write_bytes(bytes(data))
    with pytest.raises(InputFileError) as err:
        import_files(hub, [path])
    assert err.value.file == str(path)
    assert hub.counts() == before


def test_the_same_file_twice_adds_nothing(hub, tmp_path):
    path = good_events(tmp_path / "events.csv", 10, bad_line="e-x,never,Logged In,u1")
    [first] = import_files(hub, [path])
    after_first = hub.counts()
    again = tmp_path / "events_copy.csv"
    again.write_bytes(path.read_bytes())
    second, third = import_files(hub, [path, again])
    assert (first.accepted, first.rejected) == (10, 1)
    for s in (second, third):
        assert s.skipped_same_file and s.import_id == first.import_id
        assert (s.rows_read, s.accepted, s.duplicates, s.rejected) == (0, 0, 0, 0)
    assert hub.counts() == after_first
    [seg1, seg2] = import_files(hub, [DATA / "hub.segment.jsonl", DATA / "hub.segment.jsonl"])
    assert not seg1.skipped_same_file and seg2.skipped_same_file


def test_progress_bar_and_summary_table(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = good_events(tmp_path / "events.csv", 3, bad_line="e-x,never,Logged In,u1")
    summaries = import_files(hub, [path, path], progress=True)
    err = capsys.readouterr().err
    assert "events.csv" in err and "3 accepted, 1 rejected" in err and "already imported" in err
    console = Console(record=True, width=200)
    console.print(summary_table(summaries))
    text = console.export_text()
    assert "bad_ts 1" in text and "already imported (import 3); nothing added" in text
    row = next(line for line in text.splitlines() if "bad_ts" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [str(path), "events", "4", "3", "0", "1", "bad_ts 1"]


def test_summary_to_json():
    s = ImportSummary("events.csv", "events", rows_read=3, accepted=1, duplicates=1, rejected=1,
                      rejected_by_reason={"bad_ts": 1}, import_id=7)
    assert s.to_json() == {
        "source": "events.csv", "kind": "events", "rows_read": 3, "accepted": 1, "duplicates": 1, "rejected": 1,
        "rejected_by_reason": {"bad_ts": 1}, "skipped_same_file": False, "import_id": 7, "ignored_columns": [],
        "seconds": 0.0,
    }
