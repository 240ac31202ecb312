"""`vidcorr export TRACKS --format F`: tracks in SLEAP, NWB, DeepLabCut, TAP-Vid or CoTracker files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, handle_errors

FORMAT_HELP = ("slp (SLEAP), nwb (NWB, ndx-pose), dlc (DeepLabCut analysis CSV), tapvid (points (N,T,2) in [0,1], "
               "occluded (N,T); .npz or .pkl), cotracker (pred_tracks (1,T,N,2), pred_visibility (1,T,N)). "
               'slp and nwb need pip install "vidcorr[pose]".')


@handle_errors
def export(
    tracks: Annotated[Path, typer.Argument(help="A tracks.npz written by `vidcorr track`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file \\[default: next to TRACKS: tracks.slp, tracks.nwb, tracks_dlc.csv, "
        "tracks_tapvid.npz, tracks_cotracker.npz].")] = None,
    names: Annotated[str | None, typer.Option(
        "--names", help="Comma-separated point names for the skeleton \\[default: point_0, point_1, ...].")] = None,
) -> None:
    """Write TRACKS in another tool's format: points as skeleton nodes, NaN where not visible (slp, nwb),
    confidence as the score or likelihood."""
    from vidcorr.io.export import export_tracks

    node_names = [n.strip() for n in names.split(",")] if names is not None else None
    written = export_tracks(tracks, fmt, out, names=node_names)
    console.print(f"wrote {written}", soft_wrap=True)
