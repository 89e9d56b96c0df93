"""Segment-compatible collector (filled in)."""

from fastapi import APIRouter

router = APIRouter()
