"""The "import your data" state: what every data page and its JSON twin answer while the database holds
no partners or no events, instead of dashes, zeros or a 400.

Pages answer 200 with the state; JSON twins answer 200 with `{"empty": true, ...}` and the same commands.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from partnerkpi.errors import PartnerKPIError


class ImportCommand(BaseModel):
    """One way to get data in: what it is for and the exact command or address."""

    title: str
    command: str


class EmptyOut(BaseModel):
    """The answer of a data page on a database with nothing to compute from."""

    empty: Literal[True] = True
    message: str
    hint: str
    partners: int
    events: int
    commands: list[ImportCommand]


class NoDataYet(PartnerKPIError):
    """The database holds no partners or no events: the page shows how to import them (a 200, not an error)."""

    http_status = 200

    def __init__(self, partners: int, events: int) -> None:
        missing = " and no ".join(w for w, n in (("partners", partners), ("events", events)) if not n)
        super().__init__(f"there are no {missing} in this database yet",
                         hint="import your partners, users and events, then reload this page")
        self.partners, self.events = partners, events


def empty_view(error: NoDataYet, db: str, base_url: str) -> EmptyOut:
    """The import prompt of this server: its database file, its own URL and collector."""
    url = base_url.rstrip("/")
    commands = [
        ImportCommand(title="While this server runs, send the files to it (an admin's API token from "
                            f"{url}/admin/tokens)",
                      command=f"partnerkpi import --server {url} --token TOKEN partners.csv users.csv "
                              "events.parquet"),
        ImportCommand(title="With the server stopped, import into its database file",
                      command=f"partnerkpi import --db {db} partners.csv users.csv events.parquet"),
        ImportCommand(title=f"Or point Segment or its SDKs at the collector (a write key from {url}/admin/tokens)",
                      command=f"{url}/v1/batch"),
        ImportCommand(title="Or try the product on generated data, in a file of its own",
                      command="partnerkpi demo --db demo.duckdb"),
    ]
    return EmptyOut(message=error.message, hint=error.hint or "", partners=error.partners, events=error.events,
                    commands=commands)
