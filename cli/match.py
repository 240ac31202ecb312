"""`vidcorr match SRC TRG`: fit on the source points, locate them on the target."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from vidcorr.atomic import atomic_path
from vidcorr.errors import InputError
from vidcorr.geometry import check_points
from vidcorr.imageio import read_image, write_image
from vidcorr.staging import check_output, staged_file, staged_folder

from .common import (
    Autocast,
    AutocastOpt,
    CompileOpt,
    CropsOpt,
    Device,
    DeviceOpt,
    DType,
    DTypeOpt,
    ImageSizeOpt,
    InitPromptOpt,
    MaxBatchOpt,
    ModelOpt,
    OverwriteOpt,
    PresetOpt,
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
from .points import parse_points, read_points_file


def read_query_points(points: str | None, points_file: Path | None) -> np.ndarray:
    if (points is None) == (points_file is None):
        raise InputError("give the points with exactly one of --points 'x,y;x,y' or --points-file FILE")
    return parse_points(points) if points is not None else read_points_file(points_file)


@handle_errors
def match(
    source: Annotated[Path, typer.Argument(help="Source image (the points are on it).")],
    target: Annotated[Path, typer.Argument(help="Target image (where to find them).")],
    points: Annotated[str | None, typer.Option("--points", help="Source points 'x,y;x,y' in pixels.")] = None,
    points_file: Annotated[Path | None, typer.Option("--points-file", help="CSV or JSON of x,y rows.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help=r"Output folder \[default: SRC-TRG_vidcorr].")
                   ] = None,
    overwrite: OverwriteOpt = False,
    save_embeddings: Annotated[Path | None, typer.Option(
        "--save-embeddings", help="Also write the fitted embeddings (safetensors) here.")] = None,
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
    visualize: Annotated[bool, typer.Option(
        "--visualize", help="Also write vis/ (attention maps per layer on both images) for `vidcorr view`.")] = False,
) -> None:
    """Find where SOURCE's points are in TARGET: prints a table and writes matches.json, matches.csv
    and matches.jpg (side by side, a coloured line per point) into --out; with --visualize also vis/,
    which `vidcorr view OUT` shows."""
    import vidcorr
    from vidcorr.render import side_by_side

    query = read_query_points(points, points_file)
    src_image, trg_image = read_image(source), read_image(target)
    query = check_points(query, (src_image.shape[1], src_image.shape[0]), name=f"source image {source.name}")
    cfg = build_config(preset, seed=seed, num_steps=steps, restarts=restarts, crops=crops, image_size=image_size,
                       init_prompt=init_prompt, max_batch=max_batch)
    out = check_output(out or Path(f"{source.stem}-{target.stem}_vidcorr"), folder=True, overwrite=overwrite,
                       overwrite_hint="--overwrite")
    if save_embeddings is not None:
        check_output(save_embeddings, folder=False, overwrite=overwrite, overwrite_hint="--overwrite")

    ldm = load_model(model, device, dtype, autocast, compile_model)
    warn_if_slow(ldm, cfg, len(query), 1)
    start = time.perf_counter()
    with StageProgress({"fit": "fitting embeddings (steps)", "locate": "locating on target (crops)"}) as progress:
        embeddings = vidcorr.fit(ldm, src_image, query, cfg, progress=progress)
        location = vidcorr.locate(ldm, trg_image, embeddings, cfg, progress=progress, return_maps=visualize)
        # The source's maps, for the viewer: the embeddings located on their own image.
        src_maps = vidcorr.locate(ldm, src_image, embeddings, cfg, return_maps=True).maps if visualize else None

    result = {
        "source": str(source), "target": str(target),
        "source_size": [src_image.shape[1], src_image.shape[0]],
        "target_size": [trg_image.shape[1], trg_image.shape[0]],
        "model": ldm.model_id, "autocast": ldm.autocast_name, "config": cfg.to_dict(),
        "matches": [{"point": i, "source": [float(x) for x in query[i]],
                     "target": [float(x) for x in location.points[i]],
                     "confidence": float(location.confidence[i])} for i in range(len(query))],
    }
    # A hidden staging folder becomes --out whole, or is deleted (vidcorr.staging).
    with staged_folder(out, overwrite=overwrite, overwrite_hint="--overwrite") as staged:
        folder = staged.path
        written = [_write_json(folder / "matches.json", result), _write_csv(folder / "matches.csv", query, location),
                   write_image(folder / "matches.jpg", side_by_side(src_image, trg_image, query, location.points))]
        if visualize:
            from vidcorr.eval.visualize import INDEX_FILE
            from vidcorr.view import VIS_DIR, write_match_visuals

            write_match_visuals(folder / VIS_DIR, source, target, src_image, trg_image, query, location.points,
                                location.confidence, src_maps, location.maps, cfg.layers)
            written.append(folder / VIS_DIR / INDEX_FILE)
        written = [staged.final_name(path) for path in written]
    if save_embeddings is not None:
        with staged_file(save_embeddings, overwrite=overwrite, overwrite_hint="--overwrite") as staged_embeddings:
            embeddings.save(staged_embeddings)
        written.append(save_embeddings)

    table = Table(title=f"{source.name} -> {target.name}")
    for column in ("point", "source x,y", "target x,y", "confidence"):
        table.add_column(column, justify="right")
    for m in result["matches"]:
        table.add_row(str(m["point"]), "{:.1f}, {:.1f}".format(*m["source"]), "{:.1f}, {:.1f}".format(*m["target"]),
                      f"{m['confidence']:.3f}")
    console.print(table)
    console.print(f"{len(query)} points in {elapsed(start)}; wrote " + ", ".join(str(p) for p in written))
    if visualize:
        console.print(f"look at them with: vidcorr view {out}", soft_wrap=True)


def _write_json(path: Path, data: dict) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return path


def _write_csv(path: Path, query: np.ndarray, location: object) -> Path:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["point", "src_x", "src_y", "trg_x", "trg_y", "confidence"])
        for i, (src, trg, conf) in enumerate(zip(query, location.points, location.confidence, strict=True)):
            writer.writerow([i, f"{src[0]:.3f}", f"{src[1]:.3f}", f"{trg[0]:.3f}", f"{trg[1]:.3f}", f"{conf:.6f}"])
    return path
