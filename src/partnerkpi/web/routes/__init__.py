"""The routers, one module per subject; each holds a page and its JSON twin. `ROUTERS` is what `web/app.py`
includes, in order (the API before the pages, the static files last)."""

from __future__ import annotations

from partnerkpi.web.routes import (
    admin,
    assets,
    auth,
    collector,
    data,
    insights,
    kpis,
    ops,
    partners,
    reports,
    scorecard,
    snapshot,
    subscriptions,
    tokens,
)

ROUTERS = (
    ops.router, auth.router, admin.router, tokens.router, subscriptions.router, collector.router,
    scorecard.api, kpis.api, partners.api, data.api, data.uploads, snapshot.router, insights.api, reports.router,
    insights.pages, scorecard.pages, kpis.pages, partners.pages, data.pages, assets.router,
)
