"""The `vidcorr` command: a thin Typer app over the library, one module per command."""

from __future__ import annotations

import os
import warnings

import typer

from vidcorr.io.staging import raise_on_sigterm

from .eval import eval_app
from .export import export
from .fit import fit
from .helpfmt import show_flags_without_a_value
from .match import match
from .pick import pick
from .render import render
from .review import review
from .track import track
from .view import view

show_flags_without_a_value()
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


app.command("track")(track)
app.command("fit")(fit)
app.command("match")(match)
app.command("render")(render)
app.command("view")(view)
app.command("pick")(pick)
app.command("review")(review)
app.command("export")(export)
app.add_typer(eval_app, name="eval")


def quiet_warnings() -> None:
    """The CLI owns the terminal: third-party deprecation chatter stays out of it (VIDCORR_DEBUG=1 keeps it);
    the model stack's own logging is quietened where it is loaded (``common.quiet_model_libraries``)."""
    if os.environ.get("VIDCORR_DEBUG", "") not in ("", "0"):
        return
    # OpenCV's FFmpeg decoder threads log a damaged stream even after a read returns, outside the windows
    # in which vidcorr.video silences fd 2; FFmpeg reads this once, before the first capture opens.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    """The console script's entry point."""
    raise_on_sigterm()
    quiet_warnings()
    app()
