"""How hard the reliability proofs push: a quick scale in `make test`, the full one in `make reliability`."""

from __future__ import annotations

import os

FULL = os.environ.get("PARTNERKPI_RELIABILITY") == "full"


def scaled(quick: int, full: int) -> int:
    """`full` under `make reliability` (PARTNERKPI_RELIABILITY=full), else `quick`."""
    return full if FULL else quick
