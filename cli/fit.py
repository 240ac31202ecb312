"""`vidcorr fit IMAGE|VIDEO`: optimize the embeddings only and save them for later tracking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidcorr.geometry import check_points
from vidcorr.imageio import read_image
from vidcorr.staging import check_output, staged_file
from vidcorr.track import check_queries

from .common import (
    Autocast,
    AutocastOpt,
    CompileOpt,
    CropsOpt,
    Device,
    DeviceOpt,
    DType,
    DTypeOpt,
    GridOpt,
    ImageSizeOpt,
    InitPromptOpt,
    MaxBatchOpt,
    ModelOpt,
    OverwriteOpt,
    PointsOpt,
    PresetOpt,
    RefFrameOpt,
    RestartsOpt,
    SeedOpt,
    StageProgress,
    StepsOpt,
    build_config,
    console,
    handle_errors,
    load_model,
    warn_if_slow,
)
from .points import video_queries

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


@handle_errors
def fit(
    source: Annotated[Path, typer.Argument(help="An image, or a video (points on --ref-frame).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the embeddings (.safetensors).")],
    overwrite: OverwriteOpt = False,
    points: PointsOpt = None,
    points_file: Annotated[Path | None, typer.Option(
        "--points-file", help="CSV or JSON: x,y rows for an image, t,x,y rows for a video.")] = None,
    grid: GridOpt = None,
    ref_frame: RefFrameOpt = 0,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: PresetOpt = "paper",
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    autocast: AutocastOpt = Autocast.auto,
    compile_model: CompileOpt = False,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    restarts: RestartsOpt = None,
    crops: CropsOpt = None,
    image_size: ImageSizeOpt = None,
    init_prompt: InitPromptOpt = None,
    max_batch: MaxBatchOpt = None,
) -> None:
    """Fit one embedding per point and save them (safetensors), to track later with
    `vidcorr track VIDEO --embeddings FILE`."""
    import vidcorr
    from vidcorr.video import open_video

    check_output(out, folder=False, overwrite=overwrite, overwrite_hint="--overwrite")
    cfg = build_config(preset, seed=seed, num_steps=steps, restarts=restarts, crops=crops, image_size=image_size,
                       init_prompt=init_prompt, max_batch=max_batch)
    if source.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(source)
        size = (image.shape[1], image.shape[0])
        # An image is a one-frame video here: x,y rows (or t,x,y rows with t ignored).
        xy = video_queries(points, points_file, grid, 0, 1, size)[:, 1:]
        xy = check_points(xy, size, name=f"image {source.name}")
        ldm = load_model(model, device, dtype, autocast, compile_model)
        warn_if_slow(ldm, cfg, len(xy), 0)
        with StageProgress({"fit": "fitting embeddings (steps)"}) as progress:
            embeddings = vidcorr.fit(ldm, image, xy, cfg, progress=progress)
    else:
        reader = open_video(source)
        info = reader.info
        queries = check_queries(video_queries(points, points_file, grid, ref_frame, info.num_frames, info.size),
                                info.num_frames, info.size)
        ldm = load_model(model, device, dtype, autocast, compile_model)
        warn_if_slow(ldm, cfg, len(queries), 0)
        with StageProgress({"fit": "fitting embeddings (steps)"}) as progress:
            embeddings = vidcorr.fit_queries(ldm, reader, queries, cfg, progress=progress)
    with staged_file(out, overwrite=overwrite, overwrite_hint="--overwrite") as staged:
        embeddings.save(staged)
    console.print(f"{embeddings.num_points} points x {embeddings.num_restarts} restarts; wrote {out}")
