"""The `partnerkpi` command: builds a Hub and calls it. Errors map to exit codes here, in one place.

Each module of this package holds the commands of one subject; they are added to `app` below, in the order
`partnerkpi --help` lists them."""

from __future__ import annotations

import typer

from partnerkpi.cli import (
    admin,
    alerts,
    backup,
    data,
    health,
    insights,
    kpis,
    lake,
    report,
    serve,
    subscriptions,
    templates,
)
from partnerkpi.cli.common import err
from partnerkpi.errors import PartnerKPIError

app = typer.Typer(
    help="KPIs of a partner hub: adoption, engagement, efficiency, experience, access, compliance, outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data.register(app)
kpis.register(app)
serve.register(app)
backup.register(app)
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.tokens_app, name="tokens")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
insights.register(app)
health.register(app)
alerts.register(app)
report.register(app)
templates.register(app)
app.add_typer(lake.lake_app, name="lake")


def main() -> None:
    """Entry point: run the app, turning partnerkpi errors into a message and an exit code."""
    try:
        app(standalone_mode=False)
    except PartnerKPIError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise

