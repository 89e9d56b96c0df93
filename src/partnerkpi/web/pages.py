"""Server-rendered dashboard pages (filled in)."""

from fastapi import APIRouter

router = APIRouter()
