"""POST /api/v1/imports: files sent to the server that owns the DuckDB file, imported as `partnerkpi import` does.

DuckDB allows one writing process per file, so while the server runs this is how files get in
(`partnerkpi import --server URL --token TOKEN FILES`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.ingest import infer_kind
from partnerkpi.web.app import AppState, state
from partnerkpi.web.auth import require_admin_api

router = APIRouter(prefix="/api/v1", tags=["api"])


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


@router.post("/imports", response_model=ImportsOut, dependencies=[Depends(require_admin_api)],
             responses={401: {"description": "No valid credentials"}, 403: {"description": "Not an admin"},
                        422: {"description": "A file cannot be imported (named with its row and field)"}})
def create_imports(
    st: Annotated[AppState, Depends(state)],
    files: Annotated[list[UploadFile], File(description="CSV, JSONL or Parquet files; the kind comes from "
                                                        "the file name unless `kind` is given")],
    kind: Annotated[str | None, Form(description="partners, users, events or segment")] = None,
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
            st.new_data()
        except PartnerKPIError as exc:
            _without(prefix, exc)
            raise
    return ImportsOut(imports=[
        ImportSummaryOut(file=name, **s.to_json()) for name, s in zip(names, summaries, strict=True)
    ])
