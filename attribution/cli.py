"""``royaltysim attribution ...``: build and inspect attribution runs.

Commands import torch inside their bodies, so ``royaltysim --help`` and the economy commands stay
light.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Train a music transformer on real music, generate pieces, and score which training pieces "
    "(and creators) each generated piece draws on.",
    no_args_is_help=True,
)
