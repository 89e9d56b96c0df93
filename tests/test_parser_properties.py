"""Property tests of the parsers that tests/test_extremes.py does not reach: CSV and Parquet files of arbitrary
cells and types, Segment JSON Lines files, the collector's batch parser and mapping files. Each input imports
with every row accounted for, or is refused whole by an InputFileError that says how to fix it."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnerkpi.errors import InputFileError
from partnerkpi.ingest import import_files
from partnerkpi.ingest.mapping import load_mapping
from partnerkpi.web.routes.collector import BadRequest, parse_request, scoped_id
from tests.test_extremes import balanced, messages, values
from tests.test_extremes import line as json_line

pytestmark = pytest.mark.reliability

EXAMPLES = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
COLUMNS = ["event_id", "ts", "event", "user_id", "partner_id", "properties", "extra"]
cells = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["2026-07-01T10:00:00Z", "e1", "Logged In", "u1",
                                                                    '{"a": 1}', '"', ",", "\n", "\r\n", "\x00"]))
arrow_columns = st.sampled_from([
    pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.binary(), pa.timestamp("us"), pa.list_(pa.int64()),
])


def import_or_refuse(store, path: Path) -> None:
    """Import `path`: balanced and every rejection with a reason, or refused whole with a hint and nothing stored."""
    before = store.counts()
    try:
        [summary] = import_files(store, [path])
    except InputFileError as exc:
        assert exc.message and exc.hint
        assert store.counts() == before
        return
    if not summary.skipped_same_file:
        balanced(store.con, summary.import_id, summary)


def test_csv_files_of_arbitrary_cells(store, tmp_path):
    counter = itertools.count()

    @EXAMPLES
    @given(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=7, unique=True),
           st.lists(st.lists(cells, min_size=7, max_size=7), max_size=8))
    def check(header, rows):
        path = tmp_path / f"events-{next(counter)}.csv"
        with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows([r[: len(header)] for r in rows])
        import_or_refuse(store, path)

    check()


def test_parquet_files_of_arbitrary_types(store, tmp_path):
    counter = itertools.count()

    @EXAMPLES
    @given(st.lists(st.tuples(st.sampled_from(COLUMNS), arrow_columns), min_size=1, max_size=6,
                    unique_by=lambda c: c[0]), st.integers(0, 5), st.randoms(use_true_random=False))
    def check(columns, n, rnd):
        def sample(kind):
            if rnd.random() < 0.2:
                return None
            return {pa.string(): lambda: rnd.choice(["e1", "2026-07-01T10:00:00Z", "Logged In", "u1", "", "{}"]),
                    pa.int64(): lambda: rnd.randint(-(2**63), 2**63 - 1), pa.float64(): lambda: rnd.random() * 1e300,
                    pa.bool_(): lambda: rnd.random() < 0.5, pa.binary(): lambda: bytes([rnd.randrange(256)] * 3),
                    pa.timestamp("us"): lambda: datetime(2026, 7, 1, tzinfo=UTC).replace(tzinfo=None),
                    pa.list_(pa.int64()): lambda: [rnd.randrange(9)]}[kind]()

        table = pa.table({name: pa.array([sample(kind) for _ in range(n)], kind) for name, kind in columns})
        path = tmp_path / f"events-{next(counter)}.parquet"
        pq.write_table(table, path)
        import_or_refuse(store, path)

    check()


@pytest.mark.parametrize(("name", "says"), [("damaged-thrift.parquet", "not a readable Parquet file"),
                                           ("damaged-page.parquet", "cannot read the file")])
def test_damaged_parquet_files_found_by_the_fuzzer_are_refused_with_a_reason(store, tmp_path, name, says):
    path = tmp_path / "events.parquet"  # a Thrift error in the footer; an unknown type in a data page
    path.write_bytes((Path(__file__).parent / "data" / "fuzz" / name).read_bytes())
    with pytest.raises(InputFileError, match=says):
        import_files(store, [path])
    assert store.counts()["imports"] == 0


def test_segment_files_of_arbitrary_messages(store, tmp_path):
    counter = itertools.count()

    @EXAMPLES
    @given(messages)
    def check(batch):
        path = tmp_path / f"m-{next(counter)}.segment.jsonl"
        path.write_text("".join(json_line(m) + "\n" for m in batch), encoding="utf-8", errors="surrogatepass")
        import_or_refuse(store, path)

    check()


@EXAMPLES
@given(st.one_of(values, st.fixed_dictionaries({"batch": st.one_of(values, st.lists(st.one_of(values, messages),
                                                                                      max_size=5))})),
       st.sampled_from(["batch", "track", "identify"]), st.one_of(st.none(), st.text(max_size=8)))
def test_the_batch_parser_accounts_for_every_message_or_refuses_the_request(body, call, source):
    try:
        parsed = parse_request(call, body, datetime(2026, 7, 1), source=source)
    except BadRequest as exc:
        assert exc.code and exc.message
        return
    items = body["batch"] if call == "batch" else [body]
    assert len(parsed.messages) + len(parsed.refused) == len(items)
    assert all(r.reason for r in parsed.refused)
    for text in parsed.messages:
        message = json.loads(text)
        assert message["receivedAt"] and message["messageId"] not in (None, "")
        if source is not None:
            assert message["messageId"].startswith(scoped_id(source, ""))


mapping_docs = st.one_of(
    st.text(max_size=60),
    st.dictionaries(st.sampled_from(["columns", "events", "properties", "other", "1"]),
                    st.one_of(values, st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), values),
                                                      max_size=3)), max_size=4).map(
        lambda d: yaml.safe_dump(d, allow_unicode=True)),
)


def test_mapping_files_of_arbitrary_yaml(tmp_path):
    counter = itertools.count()

    @EXAMPLES
    @given(mapping_docs)
    def check(text):
        path = tmp_path / f"mapping-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            mapping = load_mapping(path)
        except InputFileError as exc:
            assert exc.message and exc.hint
            return
        for section in (mapping.columns, mapping.events, mapping.properties):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in section.items())

    check()
