"""`vidcorr track VIDEO`: fit on the reference frame(s), follow every point through the video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD
from vidcorr.visuals import DEFAULT_KEY_FRAMES

from .common import (
    OUTPUT,
    GridOpt,
    ModelOptions,
    PointsOpt,
    RefFrameOpt,
    StageProgress,
    console,
    elapsed,
    err_console,
    handle_errors,
    model_options,
    warn_if_slow,
    warn_skipped_steps,
)
from .points import FpsOpt, MaskIdOpt, MaskOpt, video_queries

PRESET_TRACK_HELP = ("paper (5 restarts x 20 crops per frame and point), balanced (2 x 8) or fast (1 x 4); "
                     "default: paper, or the embeddings file's own settings with --embeddings.")
STAGE_LABELS = {"fit": "fitting embeddings (steps)", "locate": "locating (crops)", "track": "tracking (frames)"}


@handle_errors
@model_options(preset_default=None, preset_help=PRESET_TRACK_HELP)
def track(
    video: Annotated[Path, typer.Argument(help="Video file, or folder of JPEG/PNG frames.")],
    points: PointsOpt = None,
    points_file: Annotated[Path | None, typer.Option("--points-file", help="CSV or JSON of t,x,y rows.")] = None,
    grid: GridOpt = None,
    ref_frame: RefFrameOpt = 0,
    mask: MaskOpt = None,
    mask_id: MaskIdOpt = None,
    fps: FpsOpt = None,
    embeddings_file: Annotated[Path | None, typer.Option(
        "--embeddings", help="Track with embeddings from `vidcorr fit` instead of fitting.")] = None,
    start: Annotated[int, typer.Option("--start", help="First frame tracked.")] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame tracked.")] = None,
    stride: Annotated[int, typer.Option("--stride", help="Track every k-th frame.")] = 1,
    visibility_threshold: Annotated[float, typer.Option(
        "--visibility-threshold", help="visible = confidence >= this.")] = DEFAULT_VISIBILITY_THRESHOLD,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder [default: VIDEO_vidcorr].", rich_help_panel=OUTPUT)] = None,
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip annotated.mp4.", rich_help_panel=OUTPUT)] = False,
    trail: Annotated[int, typer.Option(
        "--trail", min=0, help="Frames of trail behind each marker.", rich_help_panel=OUTPUT)] = 10,
    heatmap: Annotated[int | None, typer.Option(
        "--heatmap", help="Blend this point's attention map in.", rich_help_panel=OUTPUT)] = None,
    keyframes: Annotated[int, typer.Option(
        "--keyframes", min=0, help="Key frames saved for `vidcorr view` (evenly spaced, plus the query frames), "
        "with every point's attention heat map; 0 for none.", rich_help_panel=OUTPUT)] = DEFAULT_KEY_FRAMES,
    *,
    options: ModelOptions,
) -> None:
    """Track points through VIDEO: writes tracks.npz, tracks.csv, tracks.json, embeddings.safetensors,
    annotated.mp4 and keyframes/ (frames and heat maps that `vidcorr view OUT` shows) into --out."""
    from vidcorr import pipelines

    given = points is not None or points_file is not None or grid is not None or mask is not None
    queries = ((lambda info: video_queries(points, points_file, grid, ref_frame, info.num_frames, info.size, mask,
                                           mask_id))
               if given or embeddings_file is None else None)
    job = pipelines.prepare_track(
        video, out, queries=queries, embeddings=embeddings_file, preset=options.preset,
        overrides=options.overrides(), start=start, end=end, stride=stride,
        visibility_threshold=visibility_threshold, video_out=not no_video, trail=trail, heatmap=heatmap,
        keyframes=keyframes, fps=fps)
    ldm = options.load()
    warn_if_slow(ldm, job.cfg, job.points_to_fit, len(job.frames))
    began = time.perf_counter()
    with StageProgress(STAGE_LABELS) as progress:
        result = pipelines.run_track(ldm, job, progress=progress)

    if result.fitted:
        cfg = job.cfg
        warn_skipped_steps(result.embeddings.total_skipped_steps,
                           result.embeddings.num_points * cfg.restarts * cfg.num_steps)
    for warning in result.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
    tracks = result.tracks
    table = Table(title=f"vidcorr track {video.name}")
    for column in ("points", "frames", "mean confidence", "visible", "time"):
        table.add_column(column, justify="right")
    table.add_row(str(tracks.num_points), str(tracks.num_frames), f"{float(tracks.confidence.mean()):.3f}",
                  f"{100 * float(tracks.visible.mean()):.0f} %", elapsed(began))
    console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in result.written))
    if keyframes:
        console.print(f"look at them with: vidcorr view {result.out_dir}", soft_wrap=True)
