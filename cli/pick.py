"""`vidcorr pick VIDEO`: write a page to click query points on, and open it (or serve it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import OverwriteOpt, console, handle_errors, status
from .view import DEFAULT_PORT, NoOpenOpt, PortOpt, ServeOpt, show_page


@handle_errors
def pick(
    video: Annotated[Path, typer.Argument(help="Video file, or folder of JPEG/PNG frames.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="The page to write \\[default: VIDEO_pick.html in the current folder].")] = None,
    frames: Annotated[int, typer.Option(
        "--frames", help="Frames to sample evenly from the video (first and last included).")] = 50,
    max_side: Annotated[int, typer.Option(
        "--max-side", help="Longest side of the embedded pictures in pixels (points stay in video pixels).")
                        ] = 960,
    overwrite: OverwriteOpt = False,
    serve: ServeOpt = False,
    port: PortOpt = DEFAULT_PORT,
    no_open: NoOpenOpt = False,
) -> None:
    """Write a page showing frames of VIDEO with a slider: click to add points, drag to move them, right-click
    or Delete to remove, Ctrl-Z to undo; with a point selected, a click on another frame labels that point
    there too. It shows the `vidcorr track` command and saves points.json for --points-file. It needs no
    server and no network. An existing page is replaced only with --overwrite."""
    from vidcorr.web.pick import build_pick_page

    page = out if out is not None else Path(f"{video.stem}_pick.html")
    with status(f"reading up to {frames} frames of {video}"):
        page = build_pick_page(video, page, frames=frames, max_side=max_side, video_arg=str(video),
                               overwrite=overwrite, overwrite_hint="--overwrite")
    console.print(f"wrote {page}", soft_wrap=True)
    show_page(page, page.resolve().parent, serve=serve, port=port, open_browser=not no_open)
