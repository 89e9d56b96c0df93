"""The web app: internal dashboard, partner view, JSON API and the Segment-compatible collector."""

from partnerkpi.web.app import create_app

__all__ = ["create_app"]
