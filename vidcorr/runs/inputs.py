"""The inputs of a batch of videos: which videos, their output folder names, their shards, their points.

Pure functions (no model, no torch), each with one-line InputErrors:

- `expand_inputs`: paths, folders, shell globs and ``--list`` files -> the batch's videos, in order.
- `output_names`: a stable, file-system-safe folder name per video; collisions resolved deterministically.
- `assign_shards` / `shard_videos`: videos split over n shards balanced by frame count; `batch_shard`
  reads ``--shard i/n`` and the launcher's environment (torchrun, srun, SLURM arrays).
- `read_video_points_file` / `points_for_videos`: per-video queries from a points file with a ``video``
  column.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.frames import FRAME_SUFFIXES, natural_key
from vidcorr.io.names import safe_name

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".m2ts", ".3gp", ".ogv")
"""Files of a folder taken as videos (other files in it are ignored)."""
_GLOB_CHARS = re.compile(r"[*?\[]")
MAX_PARENT_LEVELS = 2
"""Parent folder names tried in front of a colliding name before a short hash is added."""


def _natural_paths(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: natural_key(str(p)))


def is_frame_folder(folder: Path) -> bool:
    """A folder holding at least one frame file and nothing but frame files (dot-names skipped)."""
    entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    return bool(entries) and all(e.is_file() and Path(e.name).suffix.lower() in FRAME_SUFFIXES for e in entries)


def folder_videos(folder: Path) -> list[Path]:
    """The videos in `folder`: its video files and its frame sub-folders, in natural order (not recursive).

    A folder that is itself a frame folder is one video: `[folder]`.

    Raises:
        InputError: the folder holds no video.
    """
    if is_frame_folder(folder):
        return [folder]
    found = []
    for entry in os.scandir(folder):
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            found.append(path)
        elif entry.is_dir() and is_frame_folder(path):
            found.append(path)
    if not found:
        raise InputError(f"folder {str(folder)!r} holds no videos (files {', '.join(VIDEO_SUFFIXES[:5])}, ... "
                         "or sub-folders of frames)")
    return sorted(found, key=lambda p: natural_key(p.name))


def _expand_one(text: str, base: Path) -> list[Path]:
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.exists():
        return folder_videos(path) if path.is_dir() else [path]
    if _GLOB_CHARS.search(text):
        matches = [Path(m) for m in glob.glob(str(path), recursive=True)]
        if not matches:
            raise InputError(f"{text!r} matches no files")
        found: list[Path] = []
        for match in _natural_paths(matches):
            if match.is_file() and match.suffix.lower() in VIDEO_SUFFIXES:
                found.append(match)
            elif match.is_dir() and is_frame_folder(match):
                found.append(match)
        if not found:
            raise InputError(f"{text!r} matches no video files or frame folders")
        return found
    raise InputError(f"input {text!r} does not exist")


def read_list_file(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The entries of a ``--list`` file: (line number, text), one per line, without blank lines and lines
    whose first non-blank character is ``#``.

    Raises:
        InputError: the file cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"list file {str(path)!r} does not exist")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read list file {str(path)!r}: {exc}") from None
    return [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#")]


def expand_inputs(inputs: Sequence[str | os.PathLike], list_file: str | os.PathLike | None = None, *,
                  cwd: str | os.PathLike | None = None) -> list[Path]:
    """The videos of a batch, as absolute paths, in the order given, each path once.

    inputs: video files, frame folders, folders (their video files and frame sub-folders, natural order)
    and shell globs (``*``, ``?``, ``[...]``, ``**``; expanded in natural order; their video files, by
    suffix, and frame folders), relative to `cwd` (default: the working folder). A path that exists is never taken as
    a glob. list_file: more inputs, one per line (see `read_list_file`), relative to the list's folder;
    they follow `inputs`.

    Raises:
        InputError: a path that does not exist, a glob or folder with no video, an empty batch; entries of
            the list file are named by ``FILE:LINE``.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    videos: list[Path] = []
    for item in inputs:
        videos += _expand_one(os.fspath(item), base)
    if list_file is not None:
        list_path = Path(list_file)
        if not list_path.is_absolute():
            list_path = base / list_path
        entries = read_list_file(list_path)
        if not entries:
            raise InputError(f"list file {str(list_file)!r} lists no videos")
        for line, text in entries:
            try:
                videos += _expand_one(text, list_path.parent)
            except InputError as exc:
                raise InputError(f"{list_file}:{line}: {exc}") from None
    if not videos:
        raise InputError("give at least one video (a file, a folder, a glob or --list FILE)")
    unique: dict[str, Path] = {}
    for video in videos:
        unique.setdefault(os.path.normcase(os.path.abspath(video)), Path(os.path.abspath(video)))
    return list(unique.values())


# ----------------------------------------------------------------------------------------- output names


def _candidate(video: Path, level: int) -> str:
    stem = video.name if video.is_dir() else video.stem
    parents = [p.name for p in video.parents if p.name][:level]
    return "__".join(safe_name(part, "video") for part in [*reversed(parents), stem])


def output_names(videos: Sequence[Path], previous: Mapping[str, str] | None = None) -> dict[Path, str]:
    """A distinct output folder name per video (the mapping to record beside the outputs).

    The name is the video's stem (a frame folder's name), sanitised (`safe_name`). Names that collide
    (case-blind, since some file systems are) get their parent folders' names in front, one level more
    at a time up to MAX_PARENT_LEVELS (``cam1__clip``), and then the first 8 hex digits of the sha256 of
    the video's path (``clip-1a2b3c4d``). The result depends on the set of videos, not their order.
    previous: an earlier run's mapping (path -> name); its videos keep their names, so that adding a
    video to a batch never renames a finished one.
    """
    previous = previous or {}
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for video in videos:
        old = previous.get(str(video))
        if old is not None and old.casefold() not in taken:
            names[video] = old
            taken.add(old.casefold())
    remaining = [v for v in videos if v not in names]
    for level in range(MAX_PARENT_LEVELS + 1):
        groups: dict[str, list[Path]] = {}
        for video in remaining:
            groups.setdefault(_candidate(video, level).casefold(), []).append(video)
        for key, group in groups.items():
            if len(group) == 1 and key not in taken:
                names[group[0]] = _candidate(group[0], level)
                taken.add(key)
        remaining = [v for v in remaining if v not in names]
    for video in sorted(remaining, key=str):
        digest = hashlib.sha256(str(video).encode()).hexdigest()
        name = f"{_candidate(video, 0)}-{digest[:8]}"
        suffix = 8
        while name.casefold() in taken:  # only if two sha256 prefixes agree
            suffix += 4
            name = f"{_candidate(video, 0)}-{digest[:suffix]}"
        names[video] = name
        taken.add(name.casefold())
    return {video: names[video] for video in videos}


# ---------------------------------------------------------------------------------------- points files


def read_video_points_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Per-video queries: video (as written in the file) -> float64 (N, 3) t, x, y, rows in file order.

    CSV: a header naming the columns ``video``, ``x``, ``y`` and optionally ``t`` (any order, other columns
    ignored), or no header and rows ``video,t,x,y`` (or ``video,x,y``: frame 0). JSON: a list of objects
    with ``video``, ``x``, ``y`` and optionally ``t`` (or ``{"points": [...]}``), or an object mapping each
    video to a list of ``[t, x, y]`` / ``[x, y]`` rows. Missing t means frame 0, as in a plain points file.

    Raises:
        InputError: a missing or unreadable file, a row without a video or with values that are not finite
            numbers (named by line or entry), or no points at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"points file {str(path)!r} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read points file {str(path)!r}: {exc}") from None
    where = f"points file {path.name}"
    rows = _json_rows(text, path, where) if path.suffix.lower() == ".json" else _csv_rows(text, where)
    by_video: dict[str, list[list[float]]] = {}
    for label, video, values in rows:
        if not isinstance(video, str) or not video.strip():
            raise InputError(f"{where} {label}: no video")
        if len(values) == 2:
            values = [0, *values]
        if len(values) != 3:
            raise InputError(f"{where} {label}: expected t, x, y (or x, y), got {len(values)} values")
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError(f"{where} {label}: {values!r} are not numbers") from None
        if not all(math.isfinite(v) for v in numbers):
            raise InputError(f"{where} {label}: {values!r} are not finite numbers")
        by_video.setdefault(video.strip(), []).append(numbers)
    if not by_video:
        raise InputError(f"{where} has no points")
    return {video: np.array(points, dtype=np.float64) for video, points in by_video.items()}


def _csv_rows(text: str, where: str) -> list[tuple[str, Any, list[Any]]]:
    lines = [(n, row) for n, row in enumerate(csv.reader(text.splitlines()), 1) if row and any(c.strip() for c in row)]
    if not lines:
        return []
    header = [c.strip().lower() for c in lines[0][1]]
    if "video" in header:
        missing = [c for c in ("x", "y") if c not in header]
        if missing:
            raise InputError(f"{where} has a header without the column {missing[0]!r}")
        columns = [header.index(c) for c in (("t", "x", "y") if "t" in header else ("x", "y"))]
        vid = header.index("video")
        out = []
        for n, row in lines[1:]:
            if len(row) < len(header):
                raise InputError(f"{where} line {n}: {len(row)} values for {len(header)} columns")
            out.append((f"line {n}", row[vid], [row[c].strip() for c in columns]))
        return out
    return [(f"line {n}", row[0], [c.strip() for c in row[1:]]) for n, row in lines]


def _json_rows(text: str, path: Path, where: str) -> list[tuple[str, Any, list[Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"points file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and "points" in data:
        data = data["points"]
    if isinstance(data, dict):
        out = []
        for video, points in data.items():
            if not isinstance(points, list):
                raise InputError(f"{where} entry {video!r}: expected a list of [t, x, y] rows")
            for k, point in enumerate(points):
                out.append((f"entry {video!r} row {k}", video, point if isinstance(point, list) else [point]))
        return out
    if not isinstance(data, list):
        raise InputError(f"{where} must hold a list of points or an object of video -> points")
    out = []
    for k, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"{where} entry {k}: expected an object with video, t, x, y")
        keys = ("t", "x", "y") if "t" in item else ("x", "y")
        out.append((f"entry {k}", item.get("video"), [item.get(key) for key in keys]))
    return out


def points_for_videos(points: Mapping[str, np.ndarray], videos: Sequence[Path],
                      base: str | os.PathLike | None = None) -> dict[Path, np.ndarray]:
    """Match a points file's videos to the batch's: each video of the batch -> its (N, 3) queries.

    An entry names a video by its path (relative to `base`, the points file's folder, or absolute), by
    its file name, or by its stem (a frame folder's name), whichever is unambiguous in the batch.

    Raises:
        InputError: an entry that names no video of the batch, or several; a video of the batch with no
            points.
    """
    base_path = Path(base) if base is not None else Path.cwd()
    by_path = {os.path.normcase(os.path.abspath(v)): v for v in videos}
    by_name: dict[str, list[Path]] = {}
    for video in videos:
        for key in {video.name, video.stem}:
            by_name.setdefault(key, []).append(video)
    matched: dict[Path, np.ndarray] = {}
    for entry, queries in points.items():
        as_path = Path(entry).expanduser()
        full = os.path.normcase(os.path.abspath(as_path if as_path.is_absolute() else base_path / as_path))
        if full in by_path:
            video = by_path[full]
        else:
            candidates = by_name.get(entry, [])
            if len(candidates) > 1:
                raise InputError(f"points for video {entry!r} match {len(candidates)} videos of the batch "
                                 f"({', '.join(str(c) for c in candidates[:2])}, ...): name it by its path")
            if not candidates:
                raise InputError(f"points for video {entry!r}: no such video in the batch")
            video = candidates[0]
        if video in matched:
            raise InputError(f"points for video {entry!r}: {str(video)!r} already has points under another name")
        matched[video] = queries
    missing = [v for v in videos if v not in matched]
    if missing:
        raise InputError(f"the points file has no points for video {str(missing[0])!r}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return {video: matched[video] for video in videos}
