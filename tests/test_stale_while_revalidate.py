"""Slow results under a live stream (web/state.ResultCache): after a data change, a view that took longer than
the pages' budget to compute is served from its last result at once while the fresh one is computed after
the request, once; cheap views and a person's own upload are always fresh."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import httpx

from partnerkpi.credentials import Credentials
from partnerkpi.web.state import Refresher, ResultCache
from tests.test_collector import serve
from tests.web_fixtures import ANALYST, sign_in


def _slow(value: str, seconds: float = 0.02):
    def make() -> str:
        time.sleep(seconds)
        return value
    return make


class _Job:
    """A request's refresh as the refresher sees it: records when it ran and whether another ran meanwhile."""

    running: list[str] = []

    def __init__(self, name: str, log: list[str], seconds: float = 0.02) -> None:
        self.name, self.log, self.seconds = name, log, seconds

    def refresh(self) -> None:
        _Job.running.append(self.name)
        self.log.append(f"start {self.name} with {len(_Job.running) - 1} others")
        time.sleep(self.seconds)
        _Job.running.remove(self.name)
        self.log.append(f"end {self.name}")

    def discard(self) -> None:
        self.log.append(f"discard {self.name}")


def test_the_refresher_runs_the_requests_refreshes_one_at_a_time_in_the_order_they_came():
    log: list[str] = []
    refresher = Refresher()
    for i in range(3):  # three requests end one after another, faster than their refreshes run
        refresher.submit(_Job(str(i), log))
    deadline = time.monotonic() + 10
    while len(log) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log == ["start 0 with 0 others", "end 0", "start 1 with 0 others", "end 1", "start 2 with 0 others",
                   "end 2"]
    refresher.stop()


def test_a_stopped_refresher_discards_the_refreshes_not_started_and_every_later_one():
    log: list[str] = []
    refresher = Refresher()
    refresher.submit(_Job("slow", log, seconds=0.3))
    refresher.submit(_Job("queued", log))
    while not log:  # the slow one runs
        time.sleep(0.005)
    refresher.stop()
    refresher.submit(_Job("late", log))
    assert log == ["start slow with 0 others", "end slow", "discard queued", "discard late"]


def test_a_slow_result_is_served_while_one_fresh_computation_runs_after_the_request():
    cache, queued = ResultCache(live_after=0.01), []
    assert cache.get(("v1", "scorecard"), _slow("old", 0.5), family=("scorecard",), refresh=queued.append) == "old"
    assert queued == []  # nothing to serve before the first result: it is computed in the request

    # the data changed (v2): the last result at once; its fresh computation waits until the last result has
    # been served as long as it took to make (0.5 s), then it is handed over once, also for later versions
    assert cache.get(("v2", "scorecard"), _slow("new"), family=("scorecard",), refresh=queued.append) == "old"
    assert queued == []
    time.sleep(cache.latest[("scorecard",)][2] + 0.05)
    for version in ("v2", "v2", "v3"):
        assert cache.get((version, "scorecard"), _slow(version), family=("scorecard",),
                         refresh=queued.append) == "old"
    assert len(queued) == 1
    queued.pop()()
    assert cache.get(("v2", "scorecard"), _slow("never"), family=("scorecard",), refresh=queued.append) == "v2"
    assert queued == []

    # a reader that must be fresh (no refresh to hand over) waits for the computation
    assert cache.get(("v4", "scorecard"), _slow("v4"), family=("scorecard",), refresh=None) == "v4"


def test_cheap_results_and_results_after_clear_are_computed_fresh():
    cache, queued = ResultCache(live_after=10.0), []
    cache.get(("v1", "partners"), _slow("old"), family=("partners",), refresh=queued.append)
    assert cache.get(("v2", "partners"), _slow("new"), family=("partners",), refresh=queued.append) == "new"

    slow = ResultCache(live_after=0.0)
    slow.get(("v1", "at_risk"), _slow("old"), family=("at_risk",), refresh=queued.append)
    slow.clear()  # an upload or an override: its author sees its effect at once
    assert slow.get(("v2", "at_risk"), _slow("new"), family=("at_risk",), refresh=queued.append) == "new"
    assert queued == []


def test_a_result_pushed_out_of_the_entries_is_still_served_as_current_for_its_own_data_version():
    cache, queued, ages = ResultCache(size=2, live_after=0.0), [], []
    cache.get(("v1", "partners"), _slow("list"), family=("partners",), refresh=queued.append)
    for i in range(3):  # other views push it out of the two entries
        cache.get(("v1", "kpi", i), _slow(f"kpi {i}"), family=("kpi", i), refresh=queued.append)
    assert ("v1", "partners") not in cache.entries
    again = cache.get(("v1", "partners"), _slow("recomputed"), family=("partners",), refresh=queued.append,
                      served=ages.append)
    assert (again, queued, ages) == ("list", [], [])  # the same data: no stale age, no refresh
    assert ("v1", "partners") in cache.entries
    assert cache.get(("v2", "partners"), _slow("new"), family=("partners",), refresh=queued.append,
                     served=ages.append) == "list" and len(queued) == 1 and len(ages) == 1  # new data: stale


def test_the_last_results_kept_for_serving_stale_are_bounded_the_least_recently_made_going_first():
    cache = ResultCache(families=3, live_after=0.0)
    for i in range(5):
        cache.get(("v1", "scorecard", i), _slow(str(i), 0.0), family=("scorecard", i), refresh=[].append)
    assert list(cache.latest) == [("scorecard", 2), ("scorecard", 3), ("scorecard", 4)]


def _refreshing(cache: ResultCache, queued: list, gate: threading.Event, fresh: str) -> threading.Thread:
    """Key k made once ("old") at v1, then its fresh v2 computation running on a thread until `gate` is set."""
    cache.get(("v1", "k"), _slow("old"), family=("k",), refresh=queued.append)
    time.sleep(0.03)
    cache.get(("v2", "k"), lambda: gate.wait(5) and fresh, family=("k",), refresh=queued.append)
    worker = threading.Thread(target=queued.pop())
    worker.start()
    return worker


def test_reads_during_a_fresh_computation_get_the_last_result_without_waiting():
    cache, queued, gate = ResultCache(live_after=0.0), [], threading.Event()
    worker = _refreshing(cache, queued, gate, "new")
    started = time.perf_counter()
    assert cache.get(("v2", "k"), _slow("other"), family=("k",), refresh=queued.append) == "old"
    assert time.perf_counter() - started < 1  # did not wait for the computation under way
    gate.set()
    worker.join(5)
    assert cache.get(("v2", "k"), _slow("other"), family=("k",), refresh=queued.append) == "new"


def test_a_result_made_while_the_cache_is_cleared_is_not_served_stale_afterwards():
    cache, queued, gate = ResultCache(live_after=0.0), [], threading.Event()
    worker = _refreshing(cache, queued, gate, "from before the upload")
    cache.clear()  # an upload lands while the refresh computes on the snapshot taken before it
    gate.set()
    worker.join(5)
    assert cache.get(("v3", "k"), _slow("after the upload"), family=("k",), refresh=queued.append) == (
        "after the upload")
    assert queued == []


def test_a_stale_result_says_how_old_it_is_and_a_fresh_one_does_not():
    cache, queued, ages = ResultCache(live_after=0.0), [], []
    cache.get(("v1", "k"), _slow("old"), family=("k",), refresh=queued.append, served=ages.append)
    assert ages == []  # computed in the request: fresh
    time.sleep(0.3)
    assert cache.get(("v2", "k"), _slow("new"), family=("k",), refresh=queued.append, served=ages.append) == "old"
    [age] = ages
    assert 0.3 <= age < 5
    queued.pop()()
    assert cache.get(("v2", "k"), _slow("never"), family=("k",), refresh=queued.append, served=ages.append) == "new"
    assert len(ages) == 1


def _scorecard(url: str, token: str, month: date) -> httpx.Response:
    end = (month + timedelta(days=32)).replace(day=1)
    response = httpx.get(f"{url}/api/v1/scorecard", params={"from": str(month), "to": str(end),
                                                             "kpi": "active_partner_rate"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _rate(url: str, token: str, month: date) -> float:
    response = _scorecard(url, token, month)
    [row] = [r for r in response.json()["rows"] if not r["segment"] and r["period_start"].startswith(str(month))]
    return row["value"]


def test_a_live_server_serves_the_last_scorecard_then_the_fresh_one(tmp_path):
    month = (datetime.now().date().replace(day=1) - timedelta(days=1)).replace(day=1)  # last month, covered

    def track(user: str, message: str) -> dict:
        return {"type": "track", "event": "Logged In", "userId": user, "messageId": message,
                "timestamp": f"{month + timedelta(days=9)}T10:00:00Z"}

    with serve(tmp_path) as served:
        token = Credentials(served.hub.store).create_token(ANALYST[0])
        since, pairs = f"{month}T00:00:00Z", (("p1", "u1"), ("p2", "u2"))  # both in the program all month
        setup = [{"type": "group", "groupId": p, "userId": u, "traits": {"name": p}, "timestamp": since}
                 for p, u in pairs]
        setup += [{"type": "identify", "userId": u, "traits": {"partner_id": p}, "timestamp": since}
                  for p, u in pairs]
        assert served.post("/v1/batch", {"batch": [*setup, track("u1", "m1")]}).status_code == 200
        served.wait_loaded(5)
        assert _rate(served.url, token, month) == 50.0  # p1 active, p2 not: computed in the request
        assert "Age" not in _scorecard(served.url, token, month).headers
        page = httpx.Client(base_url=served.url, timeout=60)
        assert sign_in(page, *ANALYST).status_code == 303
        assert "Some figures are from" not in page.get("/").text

        served.app.state.partnerkpi.results.live_after = 0.0  # every result counts as slow
        assert served.post("/v1/batch", {"batch": [track("u2", "m2")]}).status_code == 200
        served.wait_loaded(6)
        stale = _scorecard(served.url, token, month)  # the last result, at once; the fresh one follows
        assert [r["value"] for r in stale.json()["rows"] if not r["segment"]] == [50.0]
        assert int(stale.headers["Age"]) >= 0
        assert "Some figures are from" in page.get("/").text  # the page says so too
        deadline = time.monotonic() + 30
        while (value := _rate(served.url, token, month)) != 100.0:
            assert value == 50.0 and time.monotonic() < deadline, value
            time.sleep(0.05)
        assert "Age" not in _scorecard(served.url, token, month).headers


def test_the_alert_run_waits_for_the_refresh_under_way(tmp_path):
    from partnerkpi.hub import Hub
    from partnerkpi.web.state import AppState
    from tests.web_fixtures import build_program

    with Hub.open(build_program(tmp_path)) as hub:
        st, log, gate = AppState(hub), [], threading.Event()

        class Held(_Job):
            def refresh(self) -> None:
                log.append("refresh starts")
                gate.wait(10)
                log.append("refresh ends")

        st.refresher.submit(Held("held", log))
        while not log:
            time.sleep(0.005)
        alerts = threading.Thread(target=lambda: (st.watch(), log.append("alerts ran")))
        alerts.start()
        time.sleep(0.3)
        assert log == ["refresh starts"]  # the alert run waits: the two share one core
        gate.set()
        alerts.join(30)
        st.refresher.stop()
    assert log == ["refresh starts", "refresh ends", "alerts ran"]
