"""Parsing point lists from the command line and from files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vidcorr.errors import InputError
from vidcorr.io import masks
from vidcorr.io.masks import DEFAULT_GRID_MARGIN
from vidcorr.validate import check_frame_index
from vidcorr.web.pick import POINTS_FORMAT as PICKED_FORMAT
from vidcorr.web.pick import POINTS_VERSION as PICKED_VERSION

MaskOpt = Annotated[Path | None, typer.Option(
    "--mask", help="With --grid: a binary or palette (indexed, e.g. DAVIS) PNG of the reference frame; the grid's "
    "points inside it are the queries (CoTracker's segm_mask rule).")]
MaskIdOpt = Annotated[int | None, typer.Option(
    "--mask-id", min=1, help="The object label to keep in a palette --mask \\[default: every non-zero label].")]
FpsOpt = Annotated[float | None, typer.Option(
    "--fps", help="Frame rate of a folder of frames \\[default: 30]; a video file has its own.")]


def parse_points(text: str, columns: int = 2, option: str = "--points") -> np.ndarray:
    """'x,y;x,y' (or 't,x,y;...' with columns=3) -> (N, columns) float64."""
    rows = [part.strip() for part in text.split(";") if part.strip()]
    if not rows:
        raise InputError(f"{option} is empty; expected {_shape(columns)}")
    values = []
    for row in rows:
        fields = [f.strip() for f in row.split(",")]
        if len(fields) != columns:
            raise InputError(f"malformed {option} entry {row!r}: expected {_shape(columns)}")
        try:
            values.append([float(f) for f in fields])
        except ValueError:
            raise InputError(f"malformed {option} entry {row!r}: not numbers") from None
    points = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise InputError(f"{option} has a value that is not a finite number")
    return points


def read_points_file(path: Path, columns: int = 2) -> np.ndarray:
    """Points from a CSV (rows of x,y or t,x,y; a header row is allowed) or a JSON file (a list of
    [x, y] / [t, x, y] lists, a list of {"x", "y"[, "t"]} objects, or {"points": ...}, such as the
    points.json of `vidcorr pick`: {"format": "vidcorr-points", "version": 1, "points": [{"t", "x", "y"}]}).
    For t,x,y files, rows of two values x,y are taken as frame 0."""
    if not path.is_file():
        raise InputError(f"points file {str(path)!r} does not exist")
    keys = ("x", "y") if columns == 2 else ("t", "x", "y")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read points file {str(path)!r}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"points file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if isinstance(data, dict):
            if data.get("format") == PICKED_FORMAT and data.get("version") != PICKED_VERSION:
                raise InputError(f"points file {str(path)!r} is {PICKED_FORMAT} version {data.get('version')!r}; "
                                 f"this vidcorr reads version {PICKED_VERSION}")
            data = data.get("points")
        if not isinstance(data, list):
            raise InputError(f"points file {str(path)!r} must hold a list of points")
        rows = [[item.get(k) for k in keys] if isinstance(item, dict) else item for item in data]
    else:
        rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
        if rows and not _numeric(rows[0]):
            rows = rows[1:]  # header
    if columns == 3:
        rows = [[0, *row] if isinstance(row, list) and len(row) == 2 else row for row in rows]
    joined = ";".join(",".join(str(v) for v in row) if isinstance(row, list) else str(row) for row in rows)
    return parse_points(joined, columns, option=f"points file {path.name}")


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def _shape(columns: int) -> str:
    return "'x,y;x,y'" if columns == 2 else "'t,x,y;t,x,y'"


def grid_points(n: int, size_wh: tuple[int, int], margin: float = DEFAULT_GRID_MARGIN) -> np.ndarray:
    """An n x n grid of (x, y) pixel centres inside a margin of `margin` of each side; (n*n, 2)."""
    if n < 1:
        raise InputError(f"--grid must be at least 1, got {n}")
    return masks.grid_points(n, size_wh, margin)


def video_queries(points: str | None, points_file: Path | None, grid: int | None, ref_frame: int,
                  num_frames: int, size_wh: tuple[int, int], mask: Path | None = None,
                  mask_id: int | None = None) -> np.ndarray:
    """(N, 3) t, x, y queries: --points-file, or --points and/or --grid N (inside --mask) on --ref-frame.

    --points and --grid together give the typed points first, then the grid's."""
    if mask_id is not None and mask is None:
        raise InputError("--mask-id needs --mask FILE")
    if mask is not None and grid is None:
        raise InputError("--mask needs --grid N: the grid's points inside the mask are the queries")
    if points_file is not None and (points is not None or grid is not None):
        raise InputError("give --points-file FILE alone, not with --points or --grid")
    if points_file is None and points is None and grid is None:
        raise InputError("give the points with --points 'x,y;x,y', --grid N [--mask FILE] or --points-file FILE")
    check_frame_index(ref_frame, "--ref-frame", num_frames)
    if points_file is not None:
        return read_points_file(points_file, columns=3)
    parts = [parse_points(points)] if points is not None else []
    if grid is not None:
        if mask is None:
            parts.append(grid_points(grid, size_wh))
        else:
            if grid < 1:
                raise InputError(f"--grid must be at least 1, got {grid}")
            parts.append(masks.grid_in_mask(grid, masks.read_mask(mask, size_wh, mask_id)))
    xy = np.concatenate(parts)
    return np.column_stack([np.full(len(xy), float(ref_frame)), xy])
