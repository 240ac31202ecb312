"""`vidcorr track VIDEO`: fit on the reference frame(s), follow every point through the video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD
from vidcorr.errors import InputError
from vidcorr.pipelines.options import TrackOptions
from vidcorr.validate import check_fraction, check_frame_index, refuse_options
from vidcorr.web.visuals import DEFAULT_KEY_FRAMES

from .common import (
    OUTPUT,
    GridOpt,
    ModelOptions,
    OverwriteOpt,
    PointsOpt,
    RefFrameOpt,
    console,
    elapsed,
    err_console,
    handle_errors,
    model_options,
    outputs_complete,
    warn_if_slow,
    warn_skipped_steps,
)
from .display import Display
from .points import FpsOpt, MaskIdOpt, MaskOpt, PointsArgs

PRESET_TRACK_HELP = ("paper (5 restarts x 20 crops per frame and point), balanced (2 x 8) or fast (1 x 4); "
                     "default: paper, or the embeddings file's own settings with --embeddings.")
BATCH = "Batch"
STAGE_LABELS = {"fit": "fitting embeddings (steps)", "locate": "locating (crops)", "track": "tracking (frames)",
                "render": "writing annotated.mp4 (frames)", "keyframes": "writing key frames"}


@handle_errors
@model_options(preset_default=None, preset_help=PRESET_TRACK_HELP)
def track(
    inputs: Annotated[list[str] | None, typer.Argument(
        metavar="VIDEO", help="Video file or folder of JPEG/PNG frames; several (files, folders of videos, "
        "globs) make a batch.", show_default=False)] = None,
    points: PointsOpt = None,
    points_file: Annotated[Path | None, typer.Option(
        "--points-file", help="CSV or JSON of t,x,y rows; for a batch, rows may name their video (a 'video' "
        "column or key: per-video points).")] = None,
    grid: GridOpt = None,
    ref_frame: RefFrameOpt = 0,
    mask: MaskOpt = None,
    mask_id: MaskIdOpt = None,
    fps: FpsOpt = None,
    embeddings_file: Annotated[Path | None, typer.Option(
        "--embeddings", help="Track with embeddings from `vidcorr fit` instead of fitting.")] = None,
    same_video: Annotated[bool | None, typer.Option(
        "--same-video/--other-video", help="With --embeddings: they were fitted on this video (anchor on their "
        "labelled frames) or on another one (search every point globally) \\[default: decided from the labelled "
        "frames' pixels, recorded when fitted].", show_default=False)] = None,
    reuse: Annotated[Path | None, typer.Option(
        "--reuse", help="An earlier output of this video (a batch's folder for a batch): points whose labels did "
        "not change keep its embeddings, byte for byte; the others are fitted again on all their labels (after "
        "`vidcorr review OUT`).")] = None,
    start: Annotated[int, typer.Option("--start", help="First frame tracked.")] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame tracked.")] = None,
    stride: Annotated[int, typer.Option("--stride", help="Track every k-th frame.")] = 1,
    visibility_threshold: Annotated[float, typer.Option(
        "--visibility-threshold", help="visible = confidence >= this.")] = DEFAULT_VISIBILITY_THRESHOLD,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help=r"Output folder \[default: VIDEO_vidcorr; a batch: vidcorr_batch, one folder per "
        "video and batch.json].", rich_help_panel=OUTPUT)] = None,
    overwrite: OverwriteOpt = False,
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip annotated.mp4.", rich_help_panel=OUTPUT)] = False,
    trail: Annotated[int, typer.Option(
        "--trail", min=0, help="Frames of trail behind each marker.", rich_help_panel=OUTPUT)] = 10,
    heatmap: Annotated[int | None, typer.Option(
        "--heatmap", help="Blend this point's attention map in.", rich_help_panel=OUTPUT)] = None,
    keyframes: Annotated[int, typer.Option(
        "--keyframes", min=0, help="Key frames saved for `vidcorr view` (evenly spaced, plus the query frames), "
        "with every point's attention heat map; 0 for none.", rich_help_panel=OUTPUT)] = DEFAULT_KEY_FRAMES,
    list_file: Annotated[Path | None, typer.Option(
        "--list", help="A batch: more videos, one path per line (# comments).", rich_help_panel=BATCH)] = None,
    shard: Annotated[str | None, typer.Option(
        "--shard", help="A batch: track shard i of n ('i/n', from 0; balanced by frames); under torchrun/srun "
        "each process takes its part of it.", rich_help_panel=BATCH)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        "--checkpoint-every", min=1, help="A batch: checkpoint each video every K frames, so a killed run resumes "
        "within it \\[default: about one minute of work].", rich_help_panel=BATCH)] = None,
    as_batch: Annotated[bool, typer.Option(
        "--batch", help="Run even one video as a batch (its folder under --out, batch.json, resumable).",
        rich_help_panel=BATCH)] = False,
    *,
    options: ModelOptions,
) -> None:
    """Track points through VIDEO: writes tracks.npz, tracks.csv, tracks.json, embeddings.safetensors,
    annotated.mp4 and keyframes/ (frames and heat maps that `vidcorr view OUT` shows) into --out.

    Several videos (paths, folders, globs, --list) make a batch: each video's outputs in its own folder under
    --out, batch.json listing them; sharded over --shard and torchrun/srun; re-running resumes it."""
    # Every argument is checked before any work.
    check_fraction(visibility_threshold, "--visibility-threshold")
    for name, value in (("--ref-frame", ref_frame), ("--start", start), ("--end", end)):
        check_frame_index(value, name)
    if embeddings_file is not None:
        refuse_options({"--steps": options.steps, "--restarts": options.restarts,
                        "--init-prompt": options.init_prompt},
                       "applies to fitting; it has no effect with --embeddings")
    wanted = PointsArgs(points, points_file, grid, ref_frame, mask, mask_id)
    if reuse is not None:
        if embeddings_file is not None:
            raise InputError("give either --reuse OUT or --embeddings, not both")
        if not wanted.given:
            raise InputError("--reuse needs the points to track: --points-file FILE (the points.json that "
                             "`vidcorr review` saves)")
        refuse_options({"--steps": options.steps, "--restarts": options.restarts,
                        "--init-prompt": options.init_prompt},
                       "applies to fitting; with --reuse the changed points are fitted as the earlier output's were")
    track_options = TrackOptions(start, end, stride, visibility_threshold, not no_video, trail, heatmap, keyframes,
                                 fps, same_video)
    inputs = inputs or []
    if is_batch(inputs, list_file, shard, checkpoint_every, as_batch):
        if overwrite:
            raise InputError("--overwrite does not apply to a batch: running it again resumes it (delete its "
                             "folder to start afresh)")
        from .batch import BatchArgs, run_batch_command  # the batch's display: loaded for batches only

        run_batch_command(inputs, wanted, embeddings_file, out, track_options, options,
                          BatchArgs(list_file, shard, checkpoint_every, reuse))
        return
    if not inputs:
        raise InputError("give a video (a file or a folder of frames), several, or --list FILE")
    _track_one(Path(inputs[0]), wanted, embeddings_file, out, overwrite, track_options, options, reuse)


def _track_one(video: Path, wanted: PointsArgs, embeddings_file: Path | None, out: Path | None, overwrite: bool,
               track_options: TrackOptions, options: ModelOptions, reuse: Path | None = None) -> None:
    """Track one video into --out and print the summary."""
    # The pipeline imports torch: loaded when the command runs, never for --help.
    from vidcorr.pipelines.track import prepare_track, run_track

    queries = wanted.labels if wanted.given or embeddings_file is None else None
    job = prepare_track(video, out, queries=queries, embeddings=embeddings_file, preset=options.preset,
                        overrides=options.overrides(), options=track_options, overwrite=overwrite,
                        overwrite_hint="--overwrite", reuse=reuse, model=options.model)
    ldm = options.load()
    warn_if_slow(ldm, job.cfg, job.points_to_fit, len(job.frames))
    began = time.perf_counter()
    with Display(stage_labels=STAGE_LABELS) as progress:
        result = run_track(ldm, job, progress=progress)
    outputs_complete()
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
    if result.refitted is not None:
        kept = tracks.num_points - len(result.refitted)
        console.print(f"kept the embeddings of {kept} point(s) from {reuse}; fitted again: "
                      + (", ".join(result.refitted) or "none"), soft_wrap=True, highlight=False)
    if track_options.keyframes:
        console.print(f"look at them with: vidcorr view {result.out_dir}", soft_wrap=True)


def is_batch(inputs: list[str], list_file: Path | None, shard: str | None, checkpoint_every: int | None,
             as_batch: bool) -> bool:
    """Whether `vidcorr track` runs a batch: several inputs, a folder of videos, a glob, --list, --shard,
    --checkpoint-every, --batch, or a launcher's environment (torchrun, srun). One video file or frame folder
    without any of them is tracked as always, into --out itself."""
    import glob as globbing

    from vidcorr.runs.shards import shard_from_env

    if len(inputs) != 1 or list_file is not None or shard is not None or checkpoint_every is not None or as_batch:
        return True
    if shard_from_env() is not None:
        return True
    path = Path(inputs[0]).expanduser()
    if path.is_dir():
        from vidcorr.runs.inputs import VIDEO_SUFFIXES, is_frame_folder

        return any(not entry.name.startswith(".") and (
            (entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES) or (entry.is_dir() and is_frame_folder(entry)))
            for entry in path.iterdir())
    return not path.exists() and globbing.has_magic(inputs[0])
