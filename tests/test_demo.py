"""The demo generator: the import contract, determinism, and the revamp story measured with plain DuckDB SQL."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partnerkpi.catalog.plan import load_plan
from partnerkpi.demo import DEFAULT_END, generate, revamp_date
from partnerkpi.demo.events import ACTIVITY, EVENT_NAMES

PARTNERS, MONTHS, SEED = 120, 24, 7
START, REVAMP, SETTLED = datetime(2024, 11, 1), datetime(2025, 9, 1), datetime(2026, 3, 1)
TS = pa.timestamp("us")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo"), partners=PARTNERS, months=MONTHS, seed=SEED)


@pytest.fixture(scope="module")
def db(demo):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW partners AS SELECT * FROM read_parquet('{demo.partners}')")
    con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet('{demo.users}')")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{demo.events}')")
    activity = list(load_plan().activity_events)
    con.execute("CREATE TABLE activity AS SELECT unnest(?::VARCHAR[]) AS event", [activity])
    con.execute(
        """CREATE TABLE months AS
           SELECT ms, ms + INTERVAL 1 MONTH AS me
           FROM (SELECT unnest(generate_series(?::TIMESTAMP, ?::TIMESTAMP, INTERVAL 1 MONTH)) AS ms)""",
        [START, datetime(2026, 10, 1)],
    )
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_summary_and_revamp_date(demo):
    assert (demo.partner_count, demo.start, demo.end) == (PARTNERS, START.date(), DEFAULT_END)
    assert demo.revamp == revamp_date() == REVAMP.date()
    assert demo.user_count == pq.read_metadata(demo.users).num_rows
    assert demo.event_count == pq.read_metadata(demo.events).num_rows > 50_000


def test_same_seed_same_bytes_and_other_seed_differs(demo, tmp_path):
    again = generate(tmp_path / "again", partners=PARTNERS, months=MONTHS, seed=SEED)
    for a, b in ((demo.partners, again.partners), (demo.users, again.users), (demo.events, again.events)):
        assert digest(a) == digest(b)
    other = generate(tmp_path / "other", partners=PARTNERS, months=MONTHS, seed=SEED + 1)
    assert digest(other.events) != digest(demo.events)
    assert digest(other.partners) != digest(demo.partners)


def test_schemas_follow_the_import_contract(demo):
    text = pa.string()
    assert pq.read_schema(demo.partners) == pa.schema(
        [("partner_id", text), ("name", text), ("type", text), ("tier", text), ("region", text),
         ("onboarded_at", TS), ("offboarded_at", TS)]
    )
    assert pq.read_schema(demo.users) == pa.schema(
        [("user_id", text), ("partner_id", text), ("email", text), ("role", text), ("created_at", TS),
         ("deactivated_at", TS)]
    )
    assert pq.read_schema(demo.events) == pa.schema(
        [("event_id", text), ("ts", TS), ("event", text), ("partner_id", text), ("user_id", text),
         ("object_id", text), ("properties", text)]
    )


def values(con: duckdb.DuckDBPyConnection, sql: str) -> set:
    return {r[0] for r in con.execute(sql).fetchall()}


def prop_values(con: duckdb.DuckDBPyConnection, event: str, key: str) -> set:
    """The distinct JSON texts of a property of an event (strings quoted, booleans as true/false)."""
    sql = "SELECT DISTINCT json_extract(properties, '$.' || ?)::VARCHAR FROM events WHERE event = ?"
    return {r[0] for r in con.execute(sql, [key, event]).fetchall()}


def test_partner_and_user_traits(db):
    assert values(db, "SELECT type FROM partners") == {"reseller", "distributor", "agency", "supplier", "referral"}
    assert values(db, "SELECT tier FROM partners") == {"gold", "silver", "bronze"}
    assert values(db, "SELECT region FROM partners") == {"NA", "EMEA", "APAC", "LATAM"}
    lo, hi = one(db, "SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM users GROUP BY partner_id)")
    assert lo >= 1 and hi <= 8
    new, gone = one(
        db, "SELECT count(*) FILTER (WHERE onboarded_at >= ?), count(offboarded_at) FROM partners", [START]
    )
    assert new >= 20 and gone >= 8
    assert one(db, "SELECT count(*) FROM users WHERE deactivated_at < created_at")[0] == 0
    assert one(db, "SELECT count(deactivated_at) FROM users")[0] > 0
    assert one(db, "SELECT count(*) - count(DISTINCT user_id), count(*) - count(DISTINCT email) FROM users") == (0, 0)
    assert one(db, "SELECT count(*) - count(DISTINCT partner_id) FROM partners")[0] == 0


def test_every_plan_event_appears_and_nothing_else(db):
    seen = {r[0] for r in db.execute("SELECT DISTINCT event FROM events").fetchall()}
    assert seen == set(load_plan().names)


def test_generator_marks_activity_as_the_plan_does():
    assert ACTIVITY == set(load_plan().activity_events)
    assert set(EVENT_NAMES) == set(load_plan().names)


def test_event_ids_unique_and_properties_are_json_objects(db):
    assert one(db, "SELECT count(*) - count(DISTINCT event_id), count(*) - count(event_id) FROM events") == (0, 0)
    not_objects = "SELECT count(*) FROM events WHERE NOT json_valid(properties) OR json_type(properties) <> 'OBJECT'"
    assert one(db, not_objects)[0] == 0


def test_references_and_ownership(db):
    assert one(db, "SELECT count(*) FROM users WHERE partner_id NOT IN (SELECT partner_id FROM partners)")[0] == 0
    assert one(db, "SELECT count(*) FROM events WHERE partner_id NOT IN (SELECT partner_id FROM partners)")[0] == 0
    assert one(db, "SELECT count(*) FROM events WHERE user_id NOT IN (SELECT user_id FROM users)")[0] == 0
    wrong = """SELECT count(*) FROM events e JOIN users u USING (user_id)
               WHERE e.partner_id IS DISTINCT FROM u.partner_id"""
    assert one(db, wrong)[0] == 0
    program_wide = db.execute("SELECT DISTINCT event FROM events WHERE partner_id IS NULL ORDER BY 1").fetchall()
    assert program_wide == [("Announcement Published",), ("Policy Published",)]
    assert one(db, "SELECT count(user_id) FROM events WHERE partner_id IS NULL")[0] == 0


def test_no_event_outside_its_partners_and_users_lifetime(db):
    # Access Revoked is the one event allowed after offboarding (that delay is a KPI); grants may predate
    # the range (the access log of users created before it).
    outside = db.execute(
        """SELECT event, count(*) FROM events JOIN partners USING (partner_id)
           WHERE ts < onboarded_at OR (ts >= offboarded_at AND event <> 'Access Revoked') GROUP BY 1"""
    ).fetchall()
    assert outside == []
    outside = db.execute(
        """SELECT event, count(*) FROM events JOIN users USING (user_id)
           WHERE ts < created_at OR (ts >= deactivated_at AND event <> 'Access Revoked') GROUP BY 1"""
    ).fetchall()
    assert outside == []
    early = db.execute("SELECT DISTINCT event FROM events WHERE ts < ?", [START]).fetchall()
    assert early == [("Access Granted",)]
    assert one(db, "SELECT max(ts) < ? FROM events", [datetime(2026, 11, 1)])[0]


def test_plan_properties_are_filled(db):
    kinds = {'"onboarding"', '"compliance"', '"deal"', '"training"', '"general"'}
    assert prop_values(db, "Task Assigned", "kind") == kinds
    bad_due = """SELECT count(*) FROM events WHERE event IN ('Task Assigned', 'Access Review Scheduled')
                 AND (TRY_CAST(properties->>'due_at' AS TIMESTAMP) IS NULL OR properties->>'due_at' NOT LIKE '%Z')"""
    assert one(db, bad_due)[0] == 0
    dangling = """SELECT count(*) FROM events WHERE event = 'Access Review Scheduled' AND properties->>'grant_id'
                  NOT IN (SELECT object_id FROM events WHERE event = 'Access Granted')"""
    assert one(db, dangling)[0] == 0
    no_holder = """SELECT count(*) FROM events
                   WHERE event = 'Access Granted' AND (user_id IS NULL OR properties->>'role' IS NULL)"""
    assert one(db, no_holder)[0] == 0
    assert {int(s) for s in prop_values(db, "Survey Responded", "score")} <= set(range(11))
    assert prop_values(db, "Reminder Sent", "manual") == {"true", "false"}
    assert prop_values(db, "Policy Published", "required") == {"true", "false"}
    assert prop_values(db, "Compliance Document Reviewed", "outcome") == {'"accepted"', '"rejected"'}
    assert prop_values(db, "Coordination Logged", "channel") == {'"email"', '"call"', '"meeting"'}
    assert '"partner_access"' in prop_values(db, "Audit Finding Recorded", "area")
    assert '"access"' in prop_values(db, "Security Incident Reported", "category")
    assert None not in prop_values(db, "Task Rejected", "reason")
    assert None not in prop_values(db, "Audit Finding Recorded", "severity")
    for event in ("Deal Registered", "Deal Closed", "Cost Recorded"):
        assert min(float(a) for a in prop_values(db, event, "amount")) > 0


MONTHLY_ACTIVE = """
    WITH pop AS (
        SELECT ms, partner_id FROM months, partners
        WHERE onboarded_at < me AND (offboarded_at IS NULL OR offboarded_at >= ms)),
    act AS (
        SELECT DISTINCT date_trunc('month', ts) AS ms, partner_id FROM events
        WHERE event IN (SELECT event FROM activity) AND partner_id IS NOT NULL)
    SELECT pop.ms, 100.0 * count(act.partner_id) / count(*) AS share
    FROM pop LEFT JOIN act USING (ms, partner_id) GROUP BY pop.ms ORDER BY pop.ms"""


def test_story_active_partner_share(db):
    rows = db.execute(MONTHLY_ACTIVE).fetchall()
    assert len(rows) == MONTHS
    before = [share for ms, share in rows if ms < REVAMP]
    settled = [share for ms, share in rows if ms >= SETTLED]
    assert len(before) == 10 and len(settled) == 8
    assert all(40 <= s <= 50 for s in before), before
    assert all(75 <= s <= 85 for s in settled), settled


MONTHLY_USAGE = """
    WITH pop AS (
        SELECT ms, me, u.user_id FROM months, users u JOIN partners p USING (partner_id)
        WHERE u.created_at < me AND (u.deactivated_at IS NULL OR u.deactivated_at >= ms)
          AND p.onboarded_at < me AND (p.offboarded_at IS NULL OR p.offboarded_at >= ms)),
    act AS (
        SELECT DISTINCT pop.ms, pop.user_id FROM pop JOIN events e
            ON e.user_id = pop.user_id AND e.ts >= pop.ms AND e.ts < pop.me
        WHERE e.event IN (SELECT event FROM activity))
    SELECT pop.ms, 100.0 * count(act.user_id) / count(*) AS share
    FROM pop LEFT JOIN act USING (ms, user_id) GROUP BY pop.ms ORDER BY pop.ms"""


def test_story_portal_usage_share(db):
    """portal_usage_rate (KPI-SPEC v2): 100 × users active in the month / users in it (their partner too).
    About 45 % before the revamp and 80 % from six months after it. The program has about 450 users, so one
    month's share wavers by about ±2.5 points (binomial); the means get ±3 points, each month ±7."""
    rows = db.execute(MONTHLY_USAGE).fetchall()
    before = [share for ms, share in rows if ms < REVAMP]
    settled = [share for ms, share in rows if ms >= SETTLED]
    assert len(before) == 10 and len(settled) == 8
    assert 42 <= sum(before) / len(before) <= 48, before
    assert 77 <= sum(settled) / len(settled) <= 83, settled
    assert all(38 <= s <= 52 for s in before) and all(73 <= s <= 87 for s in settled), (before, settled)


def test_tasks_and_policies_have_titles(db):
    untitled = """SELECT count(*) FROM events WHERE event IN ('Task Assigned', 'Policy Published')
                  AND coalesce(trim(properties->>'title'), '') = ''"""
    assert one(db, untitled)[0] == 0
    assert len(prop_values(db, "Task Assigned", "title")) >= 15
    assert one(db, "SELECT count(DISTINCT properties->>'title') FROM events WHERE event = 'Policy Published'")[0] == 8


TASK_LATENESS = """
    WITH t AS (SELECT object_id, min((properties->>'due_at')::TIMESTAMPTZ::TIMESTAMP) AS due
               FROM events WHERE event = 'Task Assigned' GROUP BY 1),
         c AS (SELECT object_id, min(ts) AS closed FROM events
               WHERE event IN ('Task Completed', 'Task Cancelled') GROUP BY 1)
    SELECT max(epoch(coalesce(closed, ?) - due)) FILTER (WHERE closed IS NULL) / 86400,
           max(epoch(closed - due)) / 86400
    FROM t LEFT JOIN c USING (object_id)"""


def test_stale_tasks_are_chased_then_withdrawn(db):
    """No task rots: one still open 21 to 45 days past due is withdrawn (cancelled), so at the demo's end
    no open task is more than 45 days overdue (a few are overdue by weeks); a task finished late closes
    at most about two months past due (resubmitted by due + 60 days, then reviewed)."""
    end = datetime(2026, 11, 1)
    open_at_end, closed_late = one(db, TASK_LATENESS, [end])
    assert open_at_end <= 45 + 1, open_at_end  # + 1: a cancellation waits a day after the task's last event
    assert closed_late <= 75, closed_late
    weeks_late = one(db, """WITH t AS (SELECT object_id, min((properties->>'due_at')::TIMESTAMPTZ::TIMESTAMP) AS due
                                       FROM events WHERE event = 'Task Assigned' GROUP BY 1)
                            SELECT count(*) FROM t WHERE due < ? - INTERVAL 14 DAY AND object_id NOT IN
                              (SELECT object_id FROM events WHERE event IN ('Task Completed', 'Task Cancelled'))""",
                     [end])[0]
    assert 1 <= weeks_late <= 40, weeks_late
    chased_and_escalated = one(db, """
        SELECT count(*) FROM events c JOIN events x ON x.partner_id = c.partner_id
            AND x.ts = c.ts + INTERVAL 2 HOUR AND x.event = 'Escalation Raised'
        WHERE c.event = 'Coordination Logged' AND c.properties->>'channel' = 'call'""")[0]
    assert chased_and_escalated >= 10, chased_and_escalated


def test_required_policies_are_read_or_escalated(db):
    """A required policy unread a month after it reached the partner is chased; most partners then read it."""
    unread, pairs = one(db, """
        WITH pol AS (SELECT object_id, ts FROM events WHERE event = 'Policy Published'
                     AND (properties->>'required')::BOOLEAN),
             live AS (SELECT partner_id, onboarded_at FROM partners WHERE offboarded_at IS NULL),
             ack AS (SELECT DISTINCT partner_id, object_id FROM events WHERE event = 'Policy Acknowledged')
        SELECT count(*) FILTER (WHERE ack.object_id IS NULL), count(*)
        FROM live CROSS JOIN pol LEFT JOIN ack ON ack.partner_id = live.partner_id AND ack.object_id = pol.object_id
        WHERE greatest(pol.ts, live.onboarded_at) < TIMESTAMP '2026-09-01'""")
    assert pairs > 100 and unread / pairs < 0.15, (unread, pairs)


def per_partner(db, event: str) -> tuple[float, float]:
    """(before the revamp, from six months after it): the event's count per partner-month."""
    return one(
        db,
        """WITH pop AS (SELECT ms, count(*) AS n FROM months, partners
                        WHERE onboarded_at < me AND (offboarded_at IS NULL OR offboarded_at >= ms) GROUP BY ms),
                v AS (SELECT date_trunc('month', ts) AS ms, count(*) AS v FROM events WHERE event = ? GROUP BY 1)
           SELECT sum(coalesce(v, 0)) FILTER (WHERE ms < ?) / sum(n) FILTER (WHERE ms < ?),
                  sum(coalesce(v, 0)) FILTER (WHERE ms >= ?) / sum(n) FILTER (WHERE ms >= ?)
           FROM pop LEFT JOIN v USING (ms)""",
        [event, REVAMP, REVAMP, SETTLED, SETTLED],
    )


def test_story_revenue_per_partner_up_about_15_percent(db):
    before, after = one(
        db,
        """WITH pop AS (SELECT ms, count(*) AS n FROM months, partners
                        WHERE onboarded_at < me AND (offboarded_at IS NULL OR offboarded_at >= ms) GROUP BY ms),
                rev AS (SELECT date_trunc('month', ts) AS ms, sum((properties->>'amount')::DOUBLE) AS r
                        FROM events WHERE event = 'Deal Closed' GROUP BY 1)
           SELECT sum(coalesce(r, 0)) FILTER (WHERE ms < ?) / sum(n) FILTER (WHERE ms < ?),
                  sum(coalesce(r, 0)) FILTER (WHERE ms >= ?) / sum(n) FILTER (WHERE ms >= ?)
           FROM pop LEFT JOIN rev USING (ms)""",
        [REVAMP, REVAMP, REVAMP, REVAMP],
    )
    assert 1.10 <= after / before <= 1.20, after / before


def test_story_support_and_coordination_fall_tasks_get_done(db):
    support_before, support_after = per_partner(db, "Support Requested")
    assert support_after < 0.75 * support_before
    touches_before, touches_after = per_partner(db, "Coordination Logged")
    assert touches_after < 0.6 * touches_before
    before, after = one(
        db,
        """WITH t AS (SELECT object_id, min((properties->>'due_at')::TIMESTAMPTZ::TIMESTAMP) AS due
                      FROM events WHERE event = 'Task Assigned' GROUP BY 1),
                c AS (SELECT object_id, min(ts) AS done FROM events WHERE event = 'Task Completed' GROUP BY 1),
                x AS (SELECT object_id, min(ts) AS gone FROM events WHERE event = 'Task Cancelled' GROUP BY 1)
           SELECT avg(coalesce(done <= due, false)::INT) FILTER (WHERE due < ?),
                  avg(coalesce(done <= due, false)::INT) FILTER (WHERE due >= ?)
           FROM t LEFT JOIN c USING (object_id) LEFT JOIN x USING (object_id)
           WHERE due < ? AND (gone IS NULL OR gone >= due)""",
        [REVAMP, SETTLED, datetime(2026, 11, 1)],
    )
    assert after > before + 0.2, (before, after)


def test_churned_partners_log_in_less_before_leaving(db):
    late, early, churners = one(
        db,
        """WITH c AS (SELECT partner_id, offboarded_at AS off, greatest(onboarded_at, ?) AS seen FROM partners
                      WHERE offboarded_at - INTERVAL 150 DAY >= greatest(onboarded_at, ?)),
                per AS (SELECT c.partner_id,
                               count(e.ts) FILTER (WHERE e.ts >= off - INTERVAL 90 DAY) / 3.0 AS late,
                               count(e.ts) FILTER (WHERE e.ts < off - INTERVAL 90 DAY)
                                   / (epoch(off - INTERVAL 90 DAY - seen) / 86400 / 30.4) AS early
                        FROM c LEFT JOIN events e ON e.partner_id = c.partner_id AND e.event = 'Logged In'
                        GROUP BY c.partner_id, off, seen)
           SELECT avg(late), avg(early), count(*) FROM per""",
        [START, START],
    )
    assert churners >= 8
    assert late < 0.8 * early, (late, early)


def test_access_story_has_late_and_missing_revocations(db):
    hours, orphaned = one(
        db,
        """WITH g AS (SELECT object_id, any_value(user_id) AS uid FROM events
                      WHERE event = 'Access Granted' GROUP BY 1),
                r AS (SELECT object_id, min(ts) AS rt FROM events WHERE event = 'Access Revoked' GROUP BY 1),
                h AS (SELECT g.object_id, least(u.deactivated_at, p.offboarded_at) AS gone
                      FROM g JOIN users u ON u.user_id = g.uid JOIN partners p USING (partner_id))
           SELECT median(epoch(rt - gone) / 3600) FILTER (WHERE rt > gone),
                  count(*) FILTER (WHERE gone IS NOT NULL AND rt IS NULL)
           FROM h LEFT JOIN r USING (object_id)""",
    )
    assert 1 <= hours <= 24 * 7 and orphaned > 0


def test_sessions_are_several_events_minutes_apart(db):
    events, minutes = one(
        db,
        """WITH a AS (SELECT user_id, ts FROM events
                      WHERE user_id IS NOT NULL AND event IN (SELECT event FROM activity)),
                g AS (SELECT user_id, ts, CASE WHEN ts - lag(ts) OVER w <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END AS new
                      FROM a WINDOW w AS (PARTITION BY user_id ORDER BY ts)),
                s AS (SELECT user_id, ts,
                             sum(new) OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM g),
                ss AS (SELECT count(*) AS n, epoch(max(ts) - min(ts)) / 60 AS mins FROM s GROUP BY user_id, sid)
           SELECT median(n), median(mins) FROM ss""",
    )
    assert events >= 3 and 3 <= minutes <= 20


def test_support_topics_repeat(db):
    repeats = one(
        db,
        """SELECT count(*) FROM (SELECT partner_id, properties->>'topic' AS topic FROM events
           WHERE event = 'Support Requested' GROUP BY 1, 2 HAVING count(*) > 1)""",
    )[0]
    assert repeats > 10


def test_events_target_scales_the_volume(tmp_path):
    files = generate(tmp_path, partners=60, months=12, seed=3, events_target=300_000, progress=True)
    assert 270_000 <= files.event_count <= 330_000
    assert files.revamp == date(2026, 4, 1)


def test_end_must_be_a_month_start(tmp_path):
    with pytest.raises(ValueError, match="first day of a month"):
        generate(tmp_path, partners=5, end=date(2026, 11, 15))


@pytest.mark.parametrize(("partners", "months"), [(1, 1), (2, 3), (5, 24)])
def test_tiny_programs_still_generate(tmp_path, partners, months):
    files = generate(tmp_path, partners=partners, months=months, seed=1)
    assert files.partner_count == partners and files.event_count > 0
    assert len(pq.read_table(files.events).column("event_id").unique()) == files.event_count
