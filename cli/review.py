"""`vidcorr review OUT`: write OUT/review.html to check a track output's doubtful frames and correct them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, handle_errors, status
from .view import DEFAULT_PORT, NoOpenOpt, PortOpt, ServeOpt, show_page


@handle_errors
def review(
    out: Annotated[Path, typer.Argument(help="A `vidcorr track` output folder, or a batch's folder.")],
    video: Annotated[Path | None, typer.Option(
        "--video", help="The video of a single output, where the path its tracks.npz recorded no longer leads to "
        "it.")] = None,
    frames: Annotated[int, typer.Option(
        "--frames", help="Frames spread evenly over the tracked frames (the frames to check and the labelled frames "
        "come on top).")] = 50,
    check: Annotated[int, typer.Option("--check", help="Frames to check listed, most doubtful first.")] = 20,
    max_side: Annotated[int, typer.Option(
        "--max-side", help="Longest side of the pictures in pixels (points stay in video pixels).")] = 960,
    trail: Annotated[int, typer.Option("--trail", min=0, help="Tracked frames of trail behind each point.")] = 10,
    serve: ServeOpt = False,
    port: PortOpt = DEFAULT_PORT,
    no_open: NoOpenOpt = False,
) -> None:
    """Write OUT/review.html: every tracked point on the frames (trail, visible or not), the frames to check
    first with their score, and a strip chart of confidence and speed (click: go there). Drag a point to correct
    it (a new label), Delete removes a label, H marks a point not visible there, Ctrl-Z undoes; Save writes
    points.json with every label, for `vidcorr track VIDEO --points-file points.json --reuse OUT`. A batch's
    folder gets one page with a list of its videos. It needs no server and no network."""
    from vidcorr.web.review import build_review

    with status(f"writing the review page of {out}"):
        page = build_review(out, video=video, frames=frames, check=check, max_side=max_side, trail=trail)
    console.print(f"wrote {page}", soft_wrap=True)
    show_page(page, page.resolve().parent, serve=serve, port=port, open_browser=not no_open)
