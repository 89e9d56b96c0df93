"""Static files and the chart bundle, served by the app itself (no CDN, no third-party hosts)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png"}


@cache
def vega_bundle() -> bytes:
    """Vega, Vega-Lite and vega-embed as one offline bundle, made on first request and kept in memory."""
    import vl_convert

    return vl_convert.javascript_bundle().encode()


@router.get("/static/vega.js")
def vega_js() -> Response:
    """The chart bundle, served by the app itself (no CDN)."""
    return Response(vega_bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """A file of web/static (flat: no sub-folders)."""
    suffix = name[name.rfind("."):] if "." in name else ""
    path = resources.files("partnerkpi.web") / "static" / name
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPException(404, f"no static file '{name}'")
    return Response(path.read_bytes(), media_type=STATIC_TYPES[suffix])
