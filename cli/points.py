"""Parsing point lists from the command line and from files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vidcorr.errors import InputError
from vidcorr.validate import check_frame_index


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
    [x, y] / [t, x, y] lists, a list of {"x", "y"[, "t"]} objects, or {"points": ...}). For t,x,y
    files, rows of two values x,y are taken as frame 0."""
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


def grid_points(n: int, size_wh: tuple[int, int], margin: float = 0.1) -> np.ndarray:
    """An n x n grid of (x, y) pixel centres inside a margin of `margin` of each side; (n*n, 2)."""
    if n < 1:
        raise InputError(f"--grid must be at least 1, got {n}")
    width, height = size_wh
    xs = np.linspace(margin * width, (1 - margin) * width, n) if n > 1 else np.array([width / 2])
    ys = np.linspace(margin * height, (1 - margin) * height, n) if n > 1 else np.array([height / 2])
    return np.array([[x, y] for y in ys for x in xs], dtype=np.float64)


def video_queries(points: str | None, points_file: Path | None, grid: int | None, ref_frame: int,
                  num_frames: int, size_wh: tuple[int, int]) -> np.ndarray:
    """(N, 3) t, x, y queries from exactly one of --points (on --ref-frame), --points-file, --grid."""
    given = [name for name, value in (("--points", points), ("--points-file", points_file), ("--grid", grid))
             if value is not None]
    if len(given) != 1:
        raise InputError("give the points with exactly one of --points 'x,y;x,y', --points-file FILE or --grid N"
                         + (f" (got {' and '.join(given)})" if given else ""))
    check_frame_index(ref_frame, "--ref-frame", num_frames)
    if points_file is not None:
        return read_points_file(points_file, columns=3)
    xy = parse_points(points) if points is not None else grid_points(grid, size_wh)
    return np.column_stack([np.full(len(xy), float(ref_frame)), xy])
