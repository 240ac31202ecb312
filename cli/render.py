"""`vidcorr render VIDEO tracks.npz`: redraw the annotated video from saved tracks, no model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidcorr.io.staging import check_not_input, check_output, staged_file

from .common import OverwriteOpt, console, err_console, handle_errors, outputs_complete
from .points import FpsOpt


@handle_errors
def render(
    video: Annotated[Path, typer.Argument(help="The video (file or folder of frames) the tracks were made on.")],
    tracks_file: Annotated[Path, typer.Argument(help="tracks.npz written by `vidcorr track`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output video (.mp4).")] = Path("annotated.mp4"),
    trail: Annotated[int, typer.Option("--trail", min=0, help="Frames of trail behind each marker.")] = 10,
    fps: FpsOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Draw saved tracks on every frame of VIDEO (same size, fps and pixel aspect ratio): coloured markers,
    trails, hollow markers where a point is not visible, point ids. Never writes over VIDEO or TRACKS_FILE."""
    from vidcorr.io.render import RenderStyle, render_video
    from vidcorr.io.tracks import Tracks
    from vidcorr.io.video import open_video

    check_not_input(out, {"the video being drawn on": video, "the tracks file": tracks_file})
    check_output(out, folder=False, overwrite=overwrite, overwrite_hint="--overwrite")
    tracks = Tracks.load_npz(tracks_file)
    # A frame folder's frame rate is the tracks' own unless --fps says otherwise.
    reader = open_video(video, fps=fps if fps is not None or not video.is_dir() else tracks.fps)
    with staged_file(out, overwrite=overwrite, overwrite_hint="--overwrite") as staged:
        rendered = render_video(reader, tracks, staged, RenderStyle(trail=trail))
    outputs_complete()
    if rendered.warning:
        err_console.print(f"[bold yellow]warning:[/] {rendered.warning}", soft_wrap=True)
    console.print(f"{rendered.num_frames} frames at {rendered.fps:g} fps ({rendered.codec}); wrote {out}")
