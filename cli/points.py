"""The points options shared by commands (their Typer declarations only; the points themselves, typed or in
files, are read by ``vidcorr.io.points``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MaskOpt = Annotated[Path | None, typer.Option(
    "--mask", help="With --grid: a binary or palette (indexed, e.g. DAVIS) PNG of the reference frame; the grid's "
    "points inside it are the queries (CoTracker's segm_mask rule).")]
MaskIdOpt = Annotated[int | None, typer.Option(
    "--mask-id", min=1, help="The object label to keep in a palette --mask \\[default: every non-zero label].")]
FpsOpt = Annotated[float | None, typer.Option(
    "--fps", help="Frame rate of a folder of frames \\[default: 30]; a video file has its own.")]
