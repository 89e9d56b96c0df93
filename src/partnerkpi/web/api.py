"""The JSON API under /api/v1 (filled in)."""

from fastapi import APIRouter

router = APIRouter()
