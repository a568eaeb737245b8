"""The ``royaltysim`` console command.

Subcommands per area: ``royaltysim attribution ...`` (the attribution core; imports torch only when a
command runs) and the economy commands (``run``, ``validate``, ...).
"""

from __future__ import annotations

import typer

from attribution.cli import app as attribution_app

app = typer.Typer(
    name="royaltysim",
    help=(
        "Who should be paid when an AI music model makes money? "
        "Build attribution runs on real music, then simulate royalty schemes in an agent-based economy."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(attribution_app, name="attribution")


def main() -> None:  # pragma: no cover - console entry point
    app()
