"""`vidcorr pick VIDEO`: write a page to click query points on, and open it (or serve it)."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from vidcorr.errors import InputError

from .common import console, handle_errors, status
from .view import DEFAULT_PORT, QuietHandler


@handle_errors
def pick(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="The page to write [default: VIDEO_pick.html in the current folder].")] = None,
    frames: Annotated[int, typer.Option(
        "--frames", help="Frames to sample evenly from the video (first and last included).")] = 50,
    max_side: Annotated[int, typer.Option(
        "--max-side", help="Longest side of the embedded pictures in pixels (points stay in video pixels).")
                        ] = 960,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve the page's folder on 127.0.0.1 until Ctrl-C instead of opening the file.")] = False,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="Port for --serve; 0 picks a free one.")] = DEFAULT_PORT,
    no_open: Annotated[bool, typer.Option("--no-open", help="Write the page (and serve) without opening a browser.")
                       ] = False,
) -> None:
    """Write a page showing frames of VIDEO with a slider: click to add points, drag to move them, right-click
    or Delete to remove, Ctrl-Z to undo. It shows the `vidcorr track` command and saves points.json for
    --points-file. It needs no server and no network."""
    from vidcorr.pick import build_pick_page

    page = out if out is not None else Path(f"{video.stem}_pick.html")
    with status(f"reading up to {frames} frames of {video}"):
        page = build_pick_page(video, page, frames=frames, max_side=max_side, video_arg=str(video))
    console.print(f"wrote {page}", soft_wrap=True)
    if not serve:
        uri = page.resolve().as_uri()
        if not no_open and not webbrowser.open(uri):
            console.print(f"no browser found here: open {uri} in one", soft_wrap=True)
        return
    folder = page.resolve().parent
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise InputError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}; try another --port") from None
    with server:
        url = f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
        console.print(f"serving {folder} at {url} (Ctrl-C to stop)", soft_wrap=True)
        if not no_open and not webbrowser.open(url):
            console.print("no browser found here: open that address in one")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped")
