"""`vidcorr match SRC TRG`: fit on the source points, locate them on the target."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from vidcorr.errors import InputError
from vidcorr.io.points import image_points, parse_points, read_points_file

from .common import (
    OUTPUT,
    ModelOptions,
    OverwriteOpt,
    console,
    elapsed,
    handle_errors,
    model_options,
    outputs_complete,
    warn_if_slow,
    warn_skipped_steps,
)
from .display import Display

STAGE_LABELS = {"fit": "fitting embeddings (steps)", "locate": "locating on target (crops)"}


def read_query_points(points: str | None, points_file: Path | None) -> np.ndarray:
    """(N, 2) x, y from exactly one of --points and --points-file."""
    if points is not None and points_file is None:
        return parse_points(points)
    if points is None and points_file is not None:
        return image_points(read_points_file(points_file))
    raise InputError("give the points with exactly one of --points 'x,y;x,y' or --points-file FILE")


@handle_errors
@model_options()
def match(
    source: Annotated[Path, typer.Argument(help="Source image (the points are on it).")],
    target: Annotated[Path, typer.Argument(help="Target image (where to find them).")],
    points: Annotated[str | None, typer.Option("--points", help="Source points 'x,y;x,y' in pixels.")] = None,
    points_file: Annotated[Path | None, typer.Option("--points-file", help="CSV or JSON of x,y rows.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help=r"Output folder \[default: SRC-TRG_vidcorr].", rich_help_panel=OUTPUT)] = None,
    overwrite: OverwriteOpt = False,
    save_embeddings: Annotated[Path | None, typer.Option(
        "--save-embeddings", help="Also write the fitted embeddings (safetensors) here.", rich_help_panel=OUTPUT)
    ] = None,
    visualize: Annotated[bool, typer.Option(
        "--visualize", help="Also write vis/ (attention maps per layer on both images) for `vidcorr view`.",
        rich_help_panel=OUTPUT)] = False,
    *,
    options: ModelOptions,
) -> None:
    """Find where SOURCE's points are in TARGET: prints a table and writes matches.json, matches.csv
    and matches.jpg (side by side, a coloured line per point) into --out; with --visualize also vis/,
    which `vidcorr view OUT` shows."""
    # The pipeline imports torch: loaded when the command runs, never for --help.
    from vidcorr.pipelines.match import MatchOptions, prepare_match, run_match

    outputs = MatchOptions(out=out, visualize=visualize, save_embeddings=save_embeddings, overwrite=overwrite)
    job = prepare_match(source, target, read_query_points(points, points_file), preset=options.preset,
                        overrides=options.overrides(), options=outputs, overwrite_hint="--overwrite",
                        model=options.model)
    ldm = options.load()
    warn_if_slow(ldm, job.cfg, len(job.src_xy), 1)
    start = time.perf_counter()
    with Display(stage_labels=STAGE_LABELS) as progress:
        result = run_match(ldm, job, progress=progress)
    outputs_complete()
    emb = result.embeddings
    warn_skipped_steps(emb.total_skipped_steps, emb.num_points * job.cfg.restarts * job.cfg.num_steps)

    table = Table(title=f"{source.name} -> {target.name}")
    for column in ("point", "source x,y", "target x,y", "confidence"):
        table.add_column(column, justify="right")
    for m in result.record["matches"]:
        table.add_row(str(m["point"]), "{:.1f}, {:.1f}".format(*m["source"]), "{:.1f}, {:.1f}".format(*m["target"]),
                      f"{m['confidence']:.3f}")
    console.print(table)
    console.print(f"{len(result.src_xy)} points in {elapsed(start)}; wrote "
                  + ", ".join(str(p) for p in result.written))
    if visualize:
        console.print(f"look at them with: vidcorr view {result.out_dir}", soft_wrap=True)
