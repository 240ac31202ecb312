"""`vidcorr fit IMAGE|VIDEO`: optimize the embeddings only and save them for later tracking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidcorr.io.points import check_points, given_labels, image_points, video_labels
from vidcorr.io.staging import check_output, staged_file

from .common import (
    OUTPUT,
    GridOpt,
    ModelOptions,
    OverwriteOpt,
    PointsOpt,
    RefFrameOpt,
    console,
    handle_errors,
    model_options,
    warn_if_slow,
    warn_skipped_steps,
)
from .display import Display
from .points import FpsOpt, MaskIdOpt, MaskOpt

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


@handle_errors
@model_options()
def fit(
    source: Annotated[Path, typer.Argument(
        help="An image, or a video or folder of frames (points on --ref-frame).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the embeddings (.safetensors).", rich_help_panel=OUTPUT)],
    points: PointsOpt = None,
    points_file: Annotated[Path | None, typer.Option(
        "--points-file", help="CSV or JSON: x,y rows for an image, t,x,y rows for a video.")] = None,
    grid: GridOpt = None,
    ref_frame: RefFrameOpt = 0,
    mask: MaskOpt = None,
    mask_id: MaskIdOpt = None,
    fps: FpsOpt = None,
    overwrite: OverwriteOpt = False,
    *,
    options: ModelOptions,
) -> None:
    """Fit one embedding per point and save them (safetensors), to track later with
    `vidcorr track VIDEO --embeddings FILE`."""
    import vidcorr
    from vidcorr.io.images import read_image
    from vidcorr.io.video import open_video

    check_output(out, folder=False, overwrite=overwrite, overwrite_hint="--overwrite")
    cfg = options.config()
    if source.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(source)
        size = (image.shape[1], image.shape[0])
        # An image is one frame: x,y rows (or t,x,y rows with t ignored), one label per point.
        xy = check_points(image_points(given_labels(points, points_file, grid, 0, size, mask, mask_id)), size,
                          name=f"image {source.name}")
        ldm = options.load()
        warn_if_slow(ldm, cfg, len(xy), 0)
        with Display(stage_labels={"fit": "fitting embeddings (steps)"}) as progress:
            embeddings = vidcorr.fit(ldm, image, xy, cfg, progress=progress)
    else:
        reader = open_video(source, fps=fps)
        info = reader.info
        labels = video_labels(points, points_file, grid, ref_frame, info.num_frames, info.size, mask, mask_id)
        ldm = options.load()
        warn_if_slow(ldm, cfg, labels.num_points, 0)
        with Display(stage_labels={"fit": "fitting embeddings (steps)"}) as progress:
            embeddings = vidcorr.fit_queries(ldm, reader, labels, cfg, progress=progress)
    warn_skipped_steps(embeddings.total_skipped_steps, embeddings.num_points * cfg.restarts * cfg.num_steps)
    with staged_file(out, overwrite=overwrite, overwrite_hint="--overwrite") as staged:
        embeddings.save(staged)
    console.print(f"{embeddings.num_points} points x {embeddings.num_restarts} restarts; wrote {out}")
