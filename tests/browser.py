"""Browser fixtures: Debian chromium driven by Playwright (filled in)."""
