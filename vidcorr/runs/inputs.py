"""The inputs of a batch of videos: which videos, and their output folder names.

Pure functions (no model, no torch), each with one-line InputErrors:

- `expand_inputs`: paths, folders, shell globs and ``--list`` files -> the batch's videos, in order.
- `output_names`: a stable, file-system-safe folder name per video; collisions resolved deterministically.

Which process takes which videos is ``vidcorr.runs.shards``' (weighted by frame count).

A batch's per-video points files are read where every points file is: ``vidcorr.io.points``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from vidcorr.errors import InputError
from vidcorr.io.frames import FRAME_SUFFIXES, natural_key
from vidcorr.io.names import safe_name

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".m2ts", ".3gp", ".ogv")
"""Files of a folder taken as videos (other files in it are ignored)."""
_GLOB_CHARS = re.compile(r"[*?\[]")
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


def _candidate(video: Path, level: int, suffix: bool = False) -> str:
    """The video's stem (a frame folder's name) with `level` parent folder names in front (``cam1__clip``) and,
    with `suffix`, its file suffix after it (``clip-mp4``), each part made safe (`safe_name`)."""
    stem = video.name if video.is_dir() else video.stem
    if suffix and not video.is_dir() and video.suffix:
        stem = f"{stem}-{video.suffix[1:]}"
    parents = [p.name for p in video.parents if p.name][:level]
    return "__".join(safe_name(part, "video") for part in [*reversed(parents), stem])


def output_names(videos: Sequence[Path], previous: Mapping[str, str] | None = None) -> dict[Path, str]:
    """A distinct output folder name per video (the mapping to record beside the outputs).

    The name is the video's stem (a frame folder's name), sanitised (`safe_name`). Names that collide
    (case-blind, since some file systems are) get their parent folders' names in front, one level more
    at a time, as far up as the paths go (``cam1__clip``, ``data__cam1__clip``); videos of one folder that
    share a stem then get their suffix (``clip-mp4``, ``clip-avi``); only videos whose paths differ in case
    alone get the first 8 hex digits of the sha256 of the path (``clip-1a2b3c4d``). The result depends on
    the set of videos, not their order.
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
    depth = max((len(v.parents) for v in remaining), default=0)
    tries = [(level, False) for level in range(depth + 1)] + [(0, True)]
    for level, suffix in tries:
        groups: dict[str, list[Path]] = {}
        for video in remaining:
            groups.setdefault(_candidate(video, level, suffix).casefold(), []).append(video)
        for key, group in groups.items():
            if len(group) == 1 and key not in taken:
                names[group[0]] = _candidate(group[0], level, suffix)
                taken.add(key)
        remaining = [v for v in remaining if v not in names]
    for video in sorted(remaining, key=str):
        digest = hashlib.sha256(str(video).encode()).hexdigest()
        name = f"{_candidate(video, 0)}-{digest[:8]}"
        width = 8
        while name.casefold() in taken:  # only if two sha256 prefixes agree
            width += 4
            name = f"{_candidate(video, 0)}-{digest[:width]}"
        names[video] = name
        taken.add(name.casefold())
    return {video: names[video] for video in videos}
