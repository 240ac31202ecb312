"""`vidcorr track VIDEO`: fit on the reference frame(s), follow every point through the video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from vidcorr.config import Config
from vidcorr.embeddings import Embeddings
from vidcorr.errors import InputError
from vidcorr.staging import check_output, staged_folder
from vidcorr.track import DEFAULT_VISIBILITY_THRESHOLD, check_queries
from vidcorr.validate import check_fraction, check_frame_index, check_video_file, refuse_options
from vidcorr.view import DEFAULT_KEY_FRAMES

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
    RefFrameOpt,
    RestartsOpt,
    SeedOpt,
    StageProgress,
    StepsOpt,
    build_config,
    console,
    elapsed,
    handle_errors,
    load_model,
    warn_if_slow,
)
from .points import video_queries

PRESET_TRACK_HELP = ("paper (5 restarts x 20 crops per frame and point), balanced (2 x 8) or fast (1 x 4); "
                     "default: paper, or the embeddings file's own settings with --embeddings.")


@handle_errors
def track(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    points: PointsOpt = None,
    points_file: Annotated[Path | None, typer.Option("--points-file", help="CSV or JSON of t,x,y rows.")] = None,
    grid: GridOpt = None,
    ref_frame: RefFrameOpt = 0,
    embeddings_file: Annotated[Path | None, typer.Option(
        "--embeddings", help="Track with embeddings from `vidcorr fit` instead of fitting.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help=r"Output folder \[default: VIDEO_vidcorr].")] = None,
    overwrite: OverwriteOpt = False,
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip annotated.mp4.")] = False,
    trail: Annotated[int, typer.Option("--trail", min=0, help="Frames of trail behind each marker.")] = 10,
    heatmap: Annotated[int | None, typer.Option("--heatmap", help="Blend this point's attention map in.")] = None,
    visibility_threshold: Annotated[float, typer.Option(
        "--visibility-threshold", help="visible = confidence >= this.")] = DEFAULT_VISIBILITY_THRESHOLD,
    start: Annotated[int, typer.Option("--start", help="First frame tracked.")] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame tracked.")] = None,
    stride: Annotated[int, typer.Option("--stride", help="Track every k-th frame.")] = 1,
    keyframes: Annotated[int, typer.Option(
        "--keyframes", min=0, help="Key frames saved for `vidcorr view` (evenly spaced, plus the query frames), "
        "with every point's attention heat map; 0 for none.")] = DEFAULT_KEY_FRAMES,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: Annotated[str | None, typer.Option("--preset", help=PRESET_TRACK_HELP)] = None,
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
    """Track points through VIDEO: writes tracks.npz, tracks.csv, tracks.json, embeddings.safetensors,
    annotated.mp4 and keyframes/ (frames and heat maps that `vidcorr view OUT` shows) into --out."""
    import vidcorr
    from vidcorr.render import render_video
    from vidcorr.video import open_video
    from vidcorr.view import KeyFrameMaps, add_reference_maps, choose_key_frames, write_track_visuals

    # Every argument is checked before any work (the video is opened, not decoded, to check frame numbers).
    check_fraction(visibility_threshold, "--visibility-threshold")
    for name, value in (("--ref-frame", ref_frame), ("--start", start), ("--end", end)):
        check_frame_index(value, name)
    if embeddings_file is not None:
        refuse_options({"--steps": steps, "--restarts": restarts, "--init-prompt": init_prompt},
                       "applies to fitting; it has no effect with --embeddings")
    out = check_output(out or Path(f"{video.stem}_vidcorr"), folder=True, overwrite=overwrite,
                       overwrite_hint="--overwrite")
    reader = open_video(check_video_file(video))
    info = reader.info
    reader.frame_indices(start, end, stride)  # a bad range fails before any model work

    embeddings = None
    global_search = False
    if embeddings_file is not None:
        if points is not None or points_file is not None or grid is not None:
            raise InputError("give either --embeddings or points to fit (--points, --points-file, --grid), not both")
        embeddings = Embeddings.load(embeddings_file)
        cfg = _reuse_config(embeddings.config, preset, seed=seed, crops=crops, max_batch=max_batch,
                            image_size=image_size)
        num_points = embeddings.num_points
        # Embeddings from another video: their reference frames mean nothing here.
        global_search = (embeddings.frames is None or embeddings.extra.get("video_size") != list(info.size)
                         or embeddings.extra.get("video_frames") != info.num_frames)
    else:
        queries = check_queries(video_queries(points, points_file, grid, ref_frame, info.num_frames, info.size),
                                info.num_frames, info.size)
        cfg = build_config(preset or "paper", seed=seed, num_steps=steps, restarts=restarts, crops=crops,
                           image_size=image_size, init_prompt=init_prompt, max_batch=max_batch)
        num_points = len(queries)
    if heatmap is not None and not 0 <= heatmap < num_points:
        raise InputError(f"--heatmap {heatmap} is not a point id (0..{num_points - 1})")

    ldm = load_model(model, device, dtype, autocast, compile_model)
    num_frames = len(reader.frame_indices(start, end, stride))
    warn_if_slow(ldm, cfg, num_points if embeddings is None else 0, num_frames)
    heat: dict[int, np.ndarray] = {}
    query_frames = [] if global_search else (embeddings.frames if embeddings is not None else queries[:, 0])
    key_frames = choose_key_frames(reader.frame_indices(start, end, stride), keyframes, always=query_frames)
    key_maps = KeyFrameMaps([*key_frames, *query_frames]) if keyframes else None

    def on_frame(frame: int, active: np.ndarray, loc: vidcorr.Location) -> None:
        hit = np.flatnonzero(active == heatmap) if heatmap is not None else []
        if len(hit) and loc.maps is not None:
            heat[frame] = loc.maps[hit[0]].mean(dim=0).numpy()
        if key_maps is not None:
            key_maps(frame, active, loc)

    began = time.perf_counter()
    labels = {"fit": "fitting embeddings (steps)", "locate": "locating (crops)", "track": "tracking (frames)",
              "render": "writing annotated.mp4 (frames)", "keyframes": "writing key frames"}
    with StageProgress(labels) as progress:
        if embeddings is None:
            embeddings = vidcorr.fit_queries(ldm, reader, queries, cfg, progress=progress)
            fitted_here = True
        else:
            fitted_here = False
        tracks = vidcorr.track(ldm, reader, cfg=cfg, embeddings=embeddings, global_search=global_search, start=start,
                               end=end, stride=stride, visibility_threshold=visibility_threshold,
                               progress=progress, on_frame=on_frame,
                               return_maps=True if heatmap is not None else {int(f) for f in key_frames})
        if key_maps is not None and not global_search:
            # Tracking does not locate a point on its own query frame: the reference maps come from here.
            add_reference_maps(key_maps, ldm, reader, embeddings, cfg, progress=progress)
        tracks.meta["video"] = str(video)
        # Everything goes to a hidden staging folder that becomes --out whole, or is deleted.
        with staged_folder(out, overwrite=overwrite, overwrite_hint="--overwrite") as staged:
            written = []
            if not no_video:
                frames = tracks.frame_indices
                rendered = render_video(reader, tracks, staged.path / "annotated.mp4", trail=trail,
                                        heatmaps=(lambda row: heat.get(int(frames[row]))) if heat else None,
                                        progress=lambda done, total: progress("render", done, total))
                written.append(rendered.path)
            written += list(tracks.save_all(staged.path).values())
            if fitted_here:
                written.append(embeddings.save(staged.path / "embeddings.safetensors"))
            if keyframes:
                written.append(write_track_visuals(staged.path, reader, tracks, key_frames, key_maps, trail=trail,
                                                   global_search=global_search, progress=progress))
            written = [staged.final_name(path) for path in written]

    table = Table(title=f"vidcorr track {video.name}")
    for column in ("points", "frames", "mean confidence", "visible", "time"):
        table.add_column(column, justify="right")
    table.add_row(str(tracks.num_points), str(tracks.num_frames), f"{float(tracks.confidence.mean()):.3f}",
                  f"{100 * float(tracks.visible.mean()):.0f} %", elapsed(began))
    console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in written))
    if keyframes:
        console.print(f"look at them with: vidcorr view {out}", soft_wrap=True)


def _reuse_config(fitted: Config, preset: str | None, **overrides: object) -> Config:
    """The embeddings' own config, with the locate-time settings the user set (preset's crops too)."""
    if preset is not None:
        overrides = {"crops": Config.preset(preset).crops, **{k: v for k, v in overrides.items() if v is not None}}
    return fitted.replace(**{k: v for k, v in overrides.items() if v is not None})

