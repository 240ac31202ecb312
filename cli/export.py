"""`vidcorr export TRACKS --format F`: tracks in SLEAP, NWB, DeepLabCut, TAP-Vid or CoTracker files, or a
DeepLabCut labelled-data folder for training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import OverwriteOpt, console, handle_errors, outputs_complete

FORMAT_HELP = ("slp (SLEAP: labels as user instances, tracked frames as predictions), nwb (NWB, ndx-pose), "
               "dlc (DeepLabCut analysis CSV), dlc-project (DeepLabCut labelled data for training: "
               "labeled-data/<video>/img*.png and CollectedData_<scorer>.csv/.h5), tapvid (points (N,T,2) in [0,1], "
               "occluded (N,T); .npz or .pkl), cotracker (pred_tracks (1,T,N,2), pred_visibility (1,T,N)). "
               'slp, nwb and dlc-project need pip install "vidcorr[pose]".')


@handle_errors
def export(
    tracks: Annotated[Path, typer.Argument(help="A tracks.npz written by `vidcorr track`, or its output folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file; for dlc-project the DeepLabCut project folder (created, or added to) "
        "\\[default: next to TRACKS: tracks.slp, tracks.nwb, tracks_dlc.csv, tracks_dlc_project, "
        "tracks_tapvid.npz, tracks_cotracker.npz].")] = None,
    names: Annotated[str | None, typer.Option(
        "--names", help="Comma-separated point names for the skeleton \\[default: point_0, point_1, ...].")] = None,
    scorer: Annotated[str | None, typer.Option(
        "--scorer", help="dlc, dlc-project: DeepLabCut's scorer (a project uses only its config's scorer's "
        "labels) \\[default: vidcorr].")] = None,
    video: Annotated[Path | None, typer.Option(
        "--video", help="dlc-project: the video (file or frame folder) the tracks were made on \\[default: the one "
        "they record].")] = None,
    frames: Annotated[int | None, typer.Option(
        "--frames", min=0, help="dlc-project: tracked frames to add to the labelled ones, spread over the video, "
        "where every point is visible with --min-confidence \\[default: 20].")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        "--min-confidence", min=0.0, max=1.0, help="dlc-project: the confidence every point needs on a tracked "
        "frame exported for training \\[default: 0.5].")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write TRACKS in another tool's format: points as skeleton nodes, confidence as the score or likelihood,
    the video's frame numbers and times. Never writes over TRACKS itself."""
    from vidcorr.io.export import DlcOptions, export_tracks

    node_names = [n.strip() for n in names.split(",")] if names is not None else None
    given = {"scorer": scorer, "tracked_frames": frames, "min_confidence": min_confidence}
    dlc = DlcOptions(**{name: value for name, value in given.items() if value is not None})
    written = export_tracks(tracks, fmt, out, names=node_names, overwrite=overwrite, video=video, dlc=dlc)
    outputs_complete()
    console.print(f"wrote {written}", soft_wrap=True)
