"""The data page and its JSON twins: table counts, imports, tracking-plan coverage, rejected rows (also as
CSV); and POST /api/v1/imports, files sent to the server that owns the DuckDB file, imported as
`partnerkpi import` does (DuckDB allows one writing process per file, so while the server runs this is how
files get in: `partnerkpi import --server URL --token TOKEN FILES`)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.ingest import infer_kind
from partnerkpi.web.auth import require_admin_api
from partnerkpi.web.deps import ApiData, PageData, render
from partnerkpi.web.empty import NoDataYet, empty_view
from partnerkpi.web.openapi import READ_ERRORS, errors
from partnerkpi.web.state import AppState, state
from partnerkpi.web.views import (
    DataOut,
    RejectedFilter,
    RejectedOut,
    RejectedRowOut,
    TwinRoute,
    data_view,
    rejected_view,
)

api = APIRouter(prefix="/api/v1", tags=["api"], route_class=TwinRoute, responses=READ_ERRORS)
pages = APIRouter(include_in_schema=False)
uploads = APIRouter(prefix="/api/v1", tags=["api"])

Filters = Annotated[RejectedFilter, Query()]
UPLOAD_KINDS = ("partners", "users", "events", "segment")

@pages.get("/data", response_class=HTMLResponse)
def data_page(request: Request, data: PageData, filters: Annotated[RejectedFilter, Query()]) -> HTMLResponse:
    """Imports, table counts, rejected rows with their reasons (filterable, downloadable), plan coverage."""
    view = data_view(data, filters)
    query = urlencode({k: v for k, v in filters.model_dump().items() if v not in (None, "", 0)})
    try:
        data.require_data()
        empty = None
    except NoDataYet as exc:  # the page still shows its tables: rejected rows say why an import stored nothing
        empty = empty_view(exc, request.app.state.partnerkpi.settings.db, str(request.base_url))
    return render(request, "data.html", view=view, query=query, empty=empty, page="data")


@api.get("/data", response_model=DataOut)
def data_quality(data: ApiData, filters: Filters) -> DataOut:
    """Table counts, every import, tracking-plan coverage and the first rejected rows."""
    return data_view(data, filters)


@api.get("/rejected", response_model=RejectedOut)
def rejected(
    data: ApiData, filters: Filters, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> RejectedOut:
    """Rejected rows with their source, row, field, raw content and reason, filtered and paged."""
    return rejected_view(data, filters, limit)


@api.get("/rejected.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def rejected_csv(data: ApiData, filters: Filters) -> Response:
    """Every rejected row matching the filters, as CSV (to fix and import again)."""
    view = rejected_view(data, filters, limit=None)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(RejectedRowOut.model_fields), lineterminator="\n")
    writer.writeheader()
    for row in view.rows:
        writer.writerow(row.model_dump())
    return Response(
        out.getvalue(), media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rejected_rows.csv"'},
    )


class ImportSummaryOut(BaseModel):
    """What one file's import did (rows_read = accepted + duplicates + rejected)."""

    file: str = Field(description="The file's name as uploaded")
    source: str = Field(description="The source recorded in the import log and on its rejected rows")
    kind: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]
    skipped_same_file: bool = Field(description="True when the same file was imported before: nothing added")
    import_id: int | None
    ignored_columns: list[str]
    seconds: float


class ImportsOut(BaseModel):
    """One summary per uploaded file, in the order they were sent."""

    imports: list[ImportSummaryOut]


def _file_name(upload: UploadFile) -> str:
    name = Path((upload.filename or "").replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise UsageError("an uploaded file has no name",
                         hint="send each file with its name (partners*, users*, events*, *segment*)")
    return name


def _save(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as fh:
        shutil.copyfileobj(upload.file, fh)


def _without(prefix: str, exc: PartnerKPIError) -> None:
    """The error with the temporary directory taken out of its text, so it names the file as sent."""
    exc.message = exc.message.replace(prefix, "")
    exc.hint = exc.hint.replace(prefix, "") if exc.hint else exc.hint
    exc.args = (exc.message,)


@uploads.post("/imports", response_model=ImportsOut, dependencies=[Depends(require_admin_api)],
             responses=errors(400, 401, 403, 422, 503))
def create_imports(
    st: Annotated[AppState, Depends(state)],
    files: Annotated[list[UploadFile], File(description="CSV, JSONL or Parquet files; the kind comes from "
                                                        "the file name unless `kind` is given",
                                            json_schema_extra={"minItems": 1})],
    kind: Annotated[str | None, Form(description="partners, users, events or segment",
                                     json_schema_extra={"enum": [*UPLOAD_KINDS, ""]})] = None,
    mapping: Annotated[UploadFile | None, File(description="YAML mapping of the source's columns/events")] = None,
) -> ImportsOut:
    """Import files without losing anything (admins only): each file lands whole or not at all, bad rows are
    kept with their reason, and the same file twice adds nothing."""
    names = [_file_name(f) for f in files]
    if len(set(names)) < len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"two uploaded files are both named {duplicate}", hint="send each file once")
    kind = kind or None
    with tempfile.TemporaryDirectory(prefix="partnerkpi-upload-") as tmp:
        prefix = tmp + os.sep
        try:
            if kind is None:
                for name in names:  # an unguessable name fails before any file is written
                    infer_kind(Path(tmp) / name)
            paths = [Path(tmp) / name for name in names]
            for upload, path in zip(files, paths, strict=True):
                _save(upload, path)
            mapping_path = None
            if mapping is not None:
                (Path(tmp) / "mapping").mkdir()
                mapping_path = Path(tmp) / "mapping" / _file_name(mapping)
                _save(mapping, mapping_path)
            with st.write_lock:
                summaries = st.hub.import_files(paths, kind=kind, mapping=mapping_path)
            st.results.clear()  # the person who uploaded sees its effect at once, not a result from before
            st.new_data()
        except PartnerKPIError as exc:
            _without(prefix, exc)
            raise
    return ImportsOut(imports=[
        ImportSummaryOut(file=name, **s.to_json()) for name, s in zip(names, summaries, strict=True)
    ])
