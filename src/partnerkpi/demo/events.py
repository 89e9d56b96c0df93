"""Events as integer columns while generating, and their conversion to the import contract's Arrow table.

Strings are only built once per written chunk: names, ids and properties are codes into small tables
until then, which keeps tens of millions of events cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partnerkpi.demo.world import World

EVENT_NAMES = (
    "Logged In", "Page Viewed", "Document Viewed", "Document Downloaded", "Announcement Published",
    "Announcement Viewed", "Task Assigned", "Task Started", "Task Submitted", "Task Rejected",
    "Task Completed", "Task Cancelled", "Reminder Sent", "Coordination Logged", "Onboarding Completed",
    "Approval Requested", "Approval Decided", "Access Granted", "Access Revoked", "Access Review Scheduled",
    "Access Review Completed", "Security Incident Reported", "Policy Published", "Policy Acknowledged",
    "Compliance Document Submitted", "Compliance Document Reviewed", "Audit Finding Recorded",
    "Support Requested", "Support Resolved", "Escalation Raised", "Survey Responded", "Deal Registered",
    "Deal Closed", "Cost Recorded",
)
CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
ACTIVITY = frozenset(
    {
        "Logged In", "Page Viewed", "Document Viewed", "Document Downloaded", "Announcement Viewed",
        "Task Started", "Task Submitted", "Approval Requested", "Policy Acknowledged",
        "Compliance Document Submitted", "Support Requested", "Survey Responded", "Deal Registered",
    }
)
IS_ACTIVITY = np.array([name in ACTIVITY for name in EVENT_NAMES])

OBJECT_PREFIXES = (
    "task-", "appr-", "grant-", "rev-", "inc-", "pol-", "doc-", "ann-", "sub-", "find-", "tkt-", "deal-",
)
KIND = {prefix.rstrip("-"): i for i, prefix in enumerate(OBJECT_PREFIXES)}
ID_DIGITS = 6

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("event", pa.string()),
        ("partner_id", pa.string()),
        ("user_id", pa.string()),
        ("object_id", pa.string()),
        ("properties", pa.string()),
    ]
)


def object_ids(kind: str, numbers: np.ndarray) -> pa.Array:
    """The object id strings of one kind, e.g. grant-000042 (as written in object_id)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, np.int64)), pa.string()), ID_DIGITS, "0")
    return pc.binary_join_element_wise(OBJECT_PREFIXES[KIND[kind]], digits, "")


def iso(ts: np.ndarray) -> pa.Array:
    """ISO-8601 UTC text of each instant, to the second (as in due_at)."""
    arr = pa.array(np.asarray(ts, np.int64)).cast(pa.timestamp("us")).cast(pa.timestamp("s"), safe=False)
    return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")


def money(cents: np.ndarray) -> pa.Array:
    """JSON number text of amounts given in cents, e.g. 1234.05."""
    cents = np.asarray(cents, np.int64)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def json_object(fields: dict[str, pa.Array | str]) -> pa.Array:
    """A JSON object per row from already-encoded JSON value texts (arrays) or constant value texts."""
    parts: list[pa.Array | str] = []
    for i, (key, value) in enumerate(fields.items()):
        parts.append(("{" if i == 0 else ",") + f'"{key}":')
        parts.append(value)
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def quoted(values: pa.Array) -> pa.Array:
    """JSON string texts of plain values (the demo's values never need escaping)."""
    return pc.binary_join_element_wise('"', values, '"', "")


class Props:
    """Interned property texts: constants get small codes, one-off texts go to a pool (negative codes)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._pool: list[pa.Array] = []
        self._pooled = 0
        self._frozen = False

    def const(self, text: str) -> int:
        """The code of a constant text."""
        if self._frozen and text not in self._codes:
            raise RuntimeError(f"property text {text!r} interned after the dictionary was built")
        return self._codes.setdefault(text, len(self._codes))

    def choice(self, texts: list[str] | tuple[str, ...], index: np.ndarray) -> np.ndarray:
        """The codes of texts[index] for each row."""
        return np.array([self.const(t) for t in texts], np.int64)[np.asarray(index, np.int64)]

    def pool(self, texts: pa.Array) -> np.ndarray:
        """Codes for one-off texts."""
        codes = -1 - (self._pooled + np.arange(len(texts), dtype=np.int64))
        self._pool.append(texts)
        self._pooled += len(texts)
        return codes

    def dictionary(self) -> tuple[pa.Array, int]:
        """All texts (constants first) and the offset of the pool; codes are final once this is called."""
        self._frozen = True
        texts = [pa.array(list(self._codes), pa.string()), *[a.cast(pa.string()) for a in self._pool]]
        return pa.concat_arrays(texts), len(self._codes)


@dataclass
class Batch:
    """Columns of events: codes and entity indexes (-1 for null)."""

    ts: np.ndarray
    code: np.ndarray
    partner: np.ndarray
    user: np.ndarray
    okind: np.ndarray
    onum: np.ndarray
    prop: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray | slice) -> Batch:
        """The rows at index."""
        return Batch(*(getattr(self, f)[index] for f in _FIELDS))

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """One batch from several."""
        return Batch(*(np.concatenate([getattr(b, f) for b in batches]) for f in _FIELDS))


_FIELDS = ("ts", "code", "partner", "user", "okind", "onum", "prop")
_DTYPES = (np.int64, np.int8, np.int64, np.int64, np.int8, np.int64, np.int64)


class Ops:
    """Collects the lower-volume events (tasks, access, deals, ...) for the whole range."""

    def __init__(self, world: World, props: Props) -> None:
        self.world = world
        self.props = props
        self._batches: list[Batch] = []
        self._next_id: dict[str, int] = {}

    @property
    def object_counts(self) -> dict[str, int]:
        """How many objects of each kind were numbered."""
        return {kind: first - 1 for kind, first in self._next_id.items()}

    def new_ids(self, kind: str, n: int) -> np.ndarray:
        """n fresh object numbers of a kind."""
        first = self._next_id.get(kind, 1)
        self._next_id[kind] = first + n
        return np.arange(first, first + n, dtype=np.int64)

    def add(
        self,
        event: str,
        ts: np.ndarray,
        partner: np.ndarray | int = -1,
        user: np.ndarray | int = -1,
        kind: str | None = None,
        number: np.ndarray | int = 0,
        prop: np.ndarray | int | str = "{}",
    ) -> None:
        """Add events; rows with ts < 0 are skipped."""
        ts = np.asarray(ts, np.int64)
        if isinstance(prop, str):
            prop = self.props.const(prop)
        cols = np.broadcast_arrays(
            ts, CODE[event], partner, user, -1 if kind is None else KIND[kind], number, prop
        )
        keep = ts >= 0
        self._batches.append(Batch(*(np.asarray(c[keep], d) for c, d in zip(cols, _DTYPES, strict=True))))

    def preamble(self, rng: np.random.Generator, ts: np.ndarray, partner: np.ndarray, user: np.ndarray) -> None:
        """A login and a page or two in the minutes before each action (the action's session)."""
        ok = ts >= 0
        ts, partner, user = ts[ok], partner[ok], user[ok]
        lead = (rng.uniform(1.0, 8.0, len(ts)) * 60e6).astype(np.int64)
        login = ts - lead
        self.add("Logged In", login, partner, user)
        for i in range(2):
            show = rng.random(len(ts)) < 0.6 - 0.25 * i
            page = login + (lead * (i + 1) / 3).astype(np.int64)
            path = self.props.choice(PAGE_PROPS, rng.integers(0, len(PAGE_PROPS), len(ts)))
            self.add("Page Viewed", np.where(show, page, -1), partner, user, prop=path)

    def finish(self) -> Batch:
        """All events, sorted by time, keeping only the ones the contract and the activity plan allow."""
        b = Batch.concat(self._batches) if self._batches else Batch(*(np.zeros(0, d) for d in _DTYPES))
        w, cal = self.world, self.world.cal
        has_p, has_u = b.partner >= 0, b.user >= 0
        p, u = np.where(has_p, b.partner, 0), np.where(has_u, b.user, 0)
        late_ok = b.code == CODE["Access Revoked"]
        early_ok = b.code == CODE["Access Granted"]
        ok = (b.ts < cal.end) & ((b.ts >= cal.start) | early_ok)
        ok &= ~has_p | ((b.ts >= w.onboarded[p]) & ((b.ts < w.offboarded[p]) | late_ok))
        ok &= ~has_u | ((w.user_partner[u] == b.partner) & (b.ts >= w.created[u]))
        ok &= ~has_u | (b.ts < w.deactivated[u]) | late_ok
        m = np.clip(cal.month_of(b.ts), 0, cal.months - 1)
        ok &= ~IS_ACTIVITY[b.code] | (has_p & w.active[p, m])
        b = b.take(ok)
        return b.take(np.argsort(b.ts, kind="stable"))


PAGES = (
    "/", "/dashboard", "/deals", "/deals/new", "/resources", "/resources/playbooks", "/training",
    "/training/certifications", "/tasks", "/support", "/announcements", "/compliance", "/profile",
    "/marketing/campaigns", "/pricing", "/reports",
)
PAGE_PROPS = tuple(f'{{"path":"{page}"}}' for page in PAGES)


class Chunk:
    """Turns batches into the events table of the import contract, numbering event ids as it goes."""

    def __init__(self, world: World, props: Props, objects: dict[str, int]) -> None:
        self.props, self.pool_offset = props.dictionary()
        self.partner_ids = world.partner_table.column("partner_id").combine_chunks()
        self.user_ids = world.user_table.column("user_id").combine_chunks()
        self.names = pa.array(EVENT_NAMES)
        counts = np.array([objects.get(prefix.rstrip("-"), 0) for prefix in OBJECT_PREFIXES], np.int64)
        self.object_base = np.concatenate([[0], np.cumsum(counts)[:-1]]) - 1
        self.objects = pa.concat_arrays(
            [object_ids(p.rstrip("-"), np.arange(1, c + 1)) for p, c in zip(OBJECT_PREFIXES, counts, strict=True)]
        )
        self.next_event = 1

    def table(self, batch: Batch) -> pa.Table:
        """The Arrow table of the batch's rows sorted by time, leaving out rows with ts < 0."""
        order = np.nonzero(batch.ts >= 0)[0]
        order = order[np.argsort(batch.ts[order], kind="stable")]
        b = batch.take(order)
        n = len(b)
        event_id = fixed_width_ids("ev-", np.arange(self.next_event, self.next_event + n), EVENT_ID_DIGITS)
        self.next_event += n
        prop = np.where(b.prop < 0, self.pool_offset - 1 - b.prop, b.prop)
        obj = np.where(b.okind >= 0, self.object_base[np.maximum(b.okind, 0)] + b.onum, -1)
        return pa.Table.from_arrays(
            [
                event_id,
                pa.array(b.ts).cast(pa.timestamp("us")),
                self.names.take(pa.array(b.code)),
                self.partner_ids.take(_nullable(b.partner)),
                self.user_ids.take(_nullable(b.user)),
                self.objects.take(_nullable(obj)),
                self.props.take(pa.array(prop)),
            ],
            schema=EVENTS_SCHEMA,
        )


EVENT_ID_DIGITS = 10


def fixed_width_ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """prefix + zero-padded numbers as a string array, built directly as bytes (fast for millions)."""
    numbers = np.asarray(numbers, np.int64)
    n, head = len(numbers), len(prefix)
    width = head + digits
    four = np.array([f"{i:04d}".encode() for i in range(10_000)], "S4")
    text = np.empty((n, width), np.uint8)
    text[:, :head] = np.frombuffer(prefix.encode(), np.uint8)
    rest, end = numbers.copy(), width
    while end - 4 >= head:
        text[:, end - 4 : end] = four[rest % 10_000].view(np.uint8).reshape(n, 4)
        rest //= 10_000
        end -= 4
    for k in range(end - 1, head - 1, -1):
        text[:, k] = 48 + rest % 10
        rest //= 10
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def _nullable(index: np.ndarray) -> pa.Array:
    index = np.asarray(index, np.int64)
    return pa.array(index, mask=index < 0)

