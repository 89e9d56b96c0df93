"""One error hierarchy. Each error says what went wrong, where, and how to fix it.

The CLI maps `exit_code` to the process status in one place (cli.main); the web app will map
`http_status` the same way.
"""

from __future__ import annotations


class PartnerKPIError(Exception):
    """Base of every error partnerkpi raises on purpose."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  how to fix: {self.hint}" if self.hint else self.message


class UsageError(PartnerKPIError):
    """The caller asked for something that does not make sense (bad grain, bad date, unknown KPI)."""

    exit_code = 2
    http_status = 400


class InputFileError(PartnerKPIError):
    """A file cannot be imported at all: unreadable, wrong columns, wrong types. Nothing was written."""

    exit_code = 3
    http_status = 422

    def __init__(
        self,
        message: str,
        *,
        file: str,
        row: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}", hint=hint)
        self.file, self.row, self.field = file, row, field


class ConfigError(PartnerKPIError):
    """A configuration (the catalog, targets, the health score, alert rules) has problems; `problems`
    lists every one of them, each with its file and where in it."""

    exit_code = 4
    http_status = 500
    subject = "the configuration"

    def __init__(self, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.subject} has {len(problems)} problem(s):\n{lines}")
        self.problems = problems


class CatalogError(ConfigError):
    """The KPI catalog (built-in or a user's YAML) has problems."""

    subject = "the KPI catalog"


class StoreError(PartnerKPIError):
    """The database cannot be opened or written (locked by another process, wrong schema, ...)."""

    exit_code = 5
    http_status = 503


class NoDatabaseError(UsageError):
    """A read command was pointed at a database file that does not exist (reads never create one)."""

    http_status = 404

    def __init__(self, path: str, default: str) -> None:
        super().__init__(
            f"no database at {path}; the default is ./{default} (or $PARTNERKPI_DB)",
            hint="check the path, or create one with `partnerkpi import --db PATH FILES` or `partnerkpi demo`",
        )
        self.path = path


class UnknownKPIError(UsageError):
    """A KPI id that is not in the catalog."""

    http_status = 404


class ConflictError(UsageError):
    """The request conflicts with what exists (e.g. a user with that email)."""

    http_status = 409


class NotFoundError(UsageError):
    """The caller named an object (an alert, a token, a page of results) that does not exist."""

    http_status = 404
