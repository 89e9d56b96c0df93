"""Warming at start: the default views are computed in the background once the server is up, so the first
view after a restart is served from the kept results (engine/results.py) and the result cache."""

from __future__ import annotations

import logging
import threading

from partnerkpi.web.empty import NoDataYet
from partnerkpi.web.insight_views import at_risk_view
from partnerkpi.web.partner_views import partners_view
from partnerkpi.web.reader import Insights, Reader
from partnerkpi.web.routes.kpis import kpi_page_chart
from partnerkpi.web.routes.partners import partner_page_parts
from partnerkpi.web.state import AppState
from partnerkpi.web.views import kpi_view, resolve_query, scorecard_view

log = logging.getLogger(__name__)


def warm(st: AppState, stop: threading.Event) -> None:
    """Compute the scorecard's default range, each KPI page's default (with its chart), the partner list,
    at-risk and the first partner's page, as an internal user would see them, and that page as its
    partner's user sees it (with what every partner page shares: the per-partner rows, the peers' figures
    and the health scores); stops between views once `stop` is set."""
    hub = st.hub.snapshot()
    reader = Reader(hub, st.write_lock, cache=st.results, fresh_only=True)
    reader.insights = Insights(reader, st.settings)
    try:
        reader.require_data()
        query = resolve_query(reader, "month", None, None)
        partner_id = min(p["partner_id"] for p in reader.hub.partners())
        own = Reader(hub, st.write_lock, scope=partner_id, cache=st.results, fresh_only=True)
        own.insights = Insights(own, st.settings)
        steps = [lambda: scorecard_view(reader, query), lambda: partners_view(reader, query),
                 lambda: at_risk_view(reader), lambda: partner_page_parts(reader, partner_id, query, None, None),
                 lambda: partner_page_parts(own, partner_id, query, None, None)]
        steps += [lambda kpi=kpi: kpi_page_chart(reader, kpi, query, kpi_view(reader, kpi.id, query))
                  for kpi in reader.kpis()]
        for step in steps:
            if stop.is_set():
                return
            step()
    except NoDataYet:
        return
    except Exception:  # a view that fails here fails again for its request, which reports it
        log.exception("warming the default views failed")
    finally:
        reader.hub.close_snapshot()


def start_warming(st: AppState) -> tuple[threading.Thread, threading.Event]:
    """Start `warm` on a daemon thread; set the event to make it stop early."""
    stop = threading.Event()
    thread = threading.Thread(target=warm, args=(st, stop), name="partnerkpi-warm", daemon=True)
    thread.start()
    return thread, stop
