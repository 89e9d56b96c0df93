"""What the routers share, so none of them imports the app: the app's state, the request's actor and reader,
the page templates, and the query parameters several routes take.

`web/app.py` imports the routers; a router imports this module, never the app.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from partnerkpi.reports.exports import MEDIA_TYPES, Table, export, filename
from partnerkpi.web.auth import Actor, require_actor_api, require_actor_page, require_admin, require_admin_api
from partnerkpi.web.numbers import display_number
from partnerkpi.web.openapi import optional_day
from partnerkpi.web.reader import Insights, Reader
from partnerkpi.web.state import AppState, state
from partnerkpi.web.views import data_banner, stale_note

GRAINS = ("week", "month", "quarter", "year")


@cache
def templates() -> Jinja2Templates:
    """The page templates (built on first use, not at import)."""
    made = Jinja2Templates(directory=str(resources.files("partnerkpi.web") / "templates"))
    made.env.filters["fmt"] = display_number  # {{ value | fmt(unit) }}: the one way a page shows a number
    made.env.globals["data_banner"] = data_banner  # base.html: "Data as of ..." for signed-in users
    made.env.globals["stale_note"] = stale_note  # base.html: "Some figures are from 40 s ago ..." under a stream
    return made


def render(request: Request, name: str, **context: Any) -> HTMLResponse:
    """A page from its template; every page gets the grains its pickers offer."""
    return templates().TemplateResponse(request, name, {"grains": GRAINS, **context})


# -- the request's reader -----------------------------------------------------------------------------
def _reader(st: AppState, actor: Actor) -> Reader:
    reader = Reader(st.hub.snapshot(), st.write_lock, scope=actor.scope_partner, cache=st.results,
                    refresher=st.refresher)
    reader.insights = Insights(reader, st.settings)
    return reader


# Pages that mean something on an empty database; every other read answers with the import prompt.
WORKS_EMPTY = frozenset({"/catalog", "/data", "/api/v1/kpis", "/api/v1/segments", "/api/v1/data", "/api/v1/rejected",
                         "/api/v1/rejected.csv"})


def _checked(request: Request, reader: Reader) -> Iterator[Reader]:
    request.state.reader = reader  # the page's banner and the `Age` header say when it served a last result
    try:
        if request.method == "GET" and request.url.path not in WORKS_EMPTY:
            reader.require_data()
        yield reader
    finally:
        reader.done()


def page_reader(request: Request, st: Annotated[AppState, Depends(state)],
                actor: Annotated[Actor, Depends(require_actor_page)]) -> Iterator[Reader]:
    """The reader of a page request (anonymous visitors are sent to sign in; on an empty database a page
    that reads data shows how to import it); its snapshot is closed after the response."""
    yield from _checked(request, _reader(st, actor))


def api_reader(request: Request, st: Annotated[AppState, Depends(state)],
               actor: Annotated[Actor, Depends(require_actor_api)]) -> Iterator[Reader]:
    """The reader of an API request (anonymous requests get 401; on an empty database a read answers
    `{"empty": true, ...}`); its snapshot is closed after the response."""
    yield from _checked(request, _reader(st, actor))


St = Annotated[AppState, Depends(state)]
PageData = Annotated[Reader, Depends(page_reader)]
ApiData = Annotated[Reader, Depends(api_reader)]
PageActor = Annotated[Actor, Depends(require_actor_page)]
ApiActor = Annotated[Actor, Depends(require_actor_api)]
Admin = Annotated[Actor, Depends(require_admin)]
AdminApi = Annotated[Actor, Depends(require_admin_api)]

# -- query parameters of the JSON API ----------------------------------------------------------------
GrainParam = Annotated[str, Query(description="week, month, quarter or year",
                                  json_schema_extra={"enum": list(GRAINS)})]
FromParam = Annotated[str | None, Query(alias="from", description="First day (YYYY-MM-DD, 1900-01-01 .. 2200-01-01); "
                                       "default: 6 periods back", json_schema_extra=optional_day)]
ToParam = Annotated[str | None, Query(description="End day, exclusive (YYYY-MM-DD), after `from`; default: after the "
                                             "last event", json_schema_extra=optional_day)]
ByParam = Annotated[str | None, Query(description="Segment by a partner trait (see /api/v1/segments)")]
PartialParam = Annotated[bool, Query(description="Also the running period the data reaches into, its rows marked "
                                                 "partial (default: complete periods only)")]


# -- exports: ?format= on a JSON twin ------------------------------------------------------------------
ExportParam = Annotated[Literal["csv", "xlsx", "parquet"] | None, Query(
    alias="format", description="Download the rows as a csv, xlsx or parquet file instead of the JSON")]


def download(data: Table, format: str) -> Response:
    """An export as a file download (`Content-Disposition: attachment`)."""
    return Response(export(data, format), media_type=MEDIA_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{filename(data, format)}"'})


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()},
          "description": "The JSON twin, or with ?format= the rows as a file"}}


def records(rows: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Response models as the JSON API writes them (the rows an export holds)."""
    return [row.model_dump(mode="json") for row in rows]
