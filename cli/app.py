"""The `vidcorr` command: a thin Typer app over the library, one module per command."""

from __future__ import annotations

import typer

from .match import match

app = typer.Typer(
    name="vidcorr",
    help="Track keypoints through videos with Stable Diffusion cross-attention (Hedlin et al. 2023).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """Track keypoints through videos with Stable Diffusion cross-attention (Hedlin et al. 2023)."""


app.command("match")(match)


def main() -> None:
    app()
