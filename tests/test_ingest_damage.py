"""Damaged files get messages that name the real problem; columns no field takes are reported."""

from __future__ import annotations

import gzip
import json

import pytest
from rich.console import Console

from partnerkpi.errors import InputFileError
from partnerkpi.ingest import import_files, summary_table

EVENT = {"event_id": "e1", "ts": "2026-07-01T00:00:00Z", "event": "Policy Published"}


def test_a_line_cut_mid_object_is_kept_as_truncated(store, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(EVENT) + "\n" + "not json\n" + '{"event_id": "e2", "ts": "2026-07-01T00:0')
    [s] = import_files(store, [path])
    assert (s.rows_read, s.accepted, s.rejected_by_reason) == (3, 1, {"invalid_json_line": 1, "truncated_line": 1})
    got = store.con.execute("SELECT row_number, reason, raw FROM rejected_rows ORDER BY row_number").fetchall()
    assert got[0][:2] == (2, 'the line is not a JSON object; write one object per line, e.g. {"event_id": "e1", '
                             '...}, or remove the line')
    assert got[1] == (3, "the file ends inside this line, before its JSON object closes: the file was cut off "
                         "(during copy or export); copy or export it again",
                      '{"event_id": "e2", "ts": "2026-07-01T00:0')


def test_a_bad_last_line_with_its_newline_is_not_called_truncated(store, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(EVENT) + "\n{oops}\n")
    [s] = import_files(store, [path])
    assert s.rejected_by_reason == {"invalid_json_line": 1}


@pytest.mark.parametrize("name", ["events.jsonl.gz", "events.csv.gz"])
def test_a_truncated_gz_file_says_so_and_stores_nothing(store, tmp_path, name):
    text = (json.dumps(EVENT) + "\n") * 500 if "jsonl" in name else "event_id,ts,event\n" + "e1,2026-07-01,X\n" * 500
    whole = gzip.compress(text.encode())
    path = tmp_path / name
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputFileError) as caught:
        import_files(store, [path])
    assert str(caught.value).splitlines()[0] == (f"{path}: the file is truncated: the gzip stream ends early (after "
                                 f"{len(whole) // 2:,} bytes); it was probably cut during copy")
    assert caught.value.hint == "copy the file again (or compress it again) and import it"
    assert store.counts()["imports"] == 0 and store.counts()["events"] == 0


def test_columns_no_field_takes_are_reported(store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("event_id,ts,event,colour,Tss\ne1,2026-07-01T00:00:00Z,Policy Published,red,x\n")
    [s] = import_files(store, [path])
    assert (s.accepted, s.ignored_columns) == (1, ["colour", "Tss"])
    assert store.con.execute("SELECT ignored_columns FROM imports").fetchall() == [("colour, Tss",)]
    console = Console(width=200, record=True)
    console.print(summary_table([s]))
    assert "columns not imported: colour, Tss" in console.export_text()
    jsonl = tmp_path / "events-2.jsonl"
    jsonl.write_text(json.dumps({**EVENT, "event_id": "e2", "note": "hi"}) + "\n")
    [s2] = import_files(store, [jsonl])
    assert s2.ignored_columns == ["note"]
