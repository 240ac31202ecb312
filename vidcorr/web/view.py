"""The viewer: a static page over what ``eval --visualize``, ``match --visualize`` and ``track`` write.

`build_site(directory)` writes ``<directory>/index.html``: one self-contained file (inline CSS, JS and
data; images by relative path) that works from ``file://`` with no server and no network. It finds the
pairs index (``<directory>/vis/index.json`` or ``<directory>/index.json``) and the tracks index
(``<directory>/keyframes/index.json``) whose formats ``vidcorr.visuals`` gives. The page's HTML, style and
script are the package data files ``vidcorr/assets/view.{html,css,js}``. The run's ``annotated.mp4`` (beside
``keyframes/``) is played inline under the key frames; one in a codec browsers do not play (the mp4v
fallback) gets a note instead.

Every string from files reaches the page only inside a ``<script type="application/json">`` block with
``<``, ``>`` and ``&`` escaped, and the page's script builds its DOM with ``textContent``; a
Content-Security-Policy allows only the page's own script and style (by hash) and local images.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from vidcorr.errors import DataError, InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.names import ANNOTATED_VIDEO, BATCH_INDEX, KEYFRAMES_DIR, PAGE, VIEW_INDEX, VIS_DIR
from vidcorr.web.pages import fill_page
from vidcorr.web.visuals import INDEX_VERSION, TRACKS_INDEX_VERSION, as_xy

# Codecs vidcorr may write that browsers do not play (the mp4v fallback).
_UNPLAYABLE_CODECS = {"mpeg4", "mjpeg", "ffv1"}




def find_indexes(directory: str | Path) -> tuple[Path | None, Path | None]:
    """(pairs index, tracks index) under `directory`, either None where absent.

    Raises:
        InputError: `directory` is not a folder, or holds neither.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{str(directory)!r} is not a folder")
    pairs = tracks = None
    for candidate in (directory / VIEW_INDEX, directory / VIS_DIR / VIEW_INDEX, directory / KEYFRAMES_DIR / VIEW_INDEX):
        if not candidate.is_file():
            continue
        kind = "tracks" if _read_json(candidate).get("kind") == "tracks" else "pairs"
        if kind == "pairs" and pairs is None:
            pairs = candidate
        elif kind == "tracks" and tracks is None:
            tracks = candidate
    if pairs is None and tracks is None:
        raise InputError(f"nothing to view in {str(directory)!r}: expected vis/{VIEW_INDEX} (from `vidcorr eval "
                         f"--visualize` or `vidcorr match --visualize`) or {KEYFRAMES_DIR}/{VIEW_INDEX} (from `vidcorr "
                         "track`), or the folder holding one")
    return pairs, tracks


def build_site(directory: str | Path, title: str | None = None) -> Path:
    """Write ``<directory>/index.html`` over the pairs and tracks found there (see the module docstring).

    A batch's folder (``batch.json``) gets a page listing its videos, each linking to the page written into
    that video's own folder.

    Returns:
        The page's path.

    Raises:
        InputError: nothing to view. DataError: an index is malformed (the message names the file).
    """
    directory = Path(directory)
    title = title if title is not None else (directory.resolve().name or str(directory))
    if (directory / BATCH_INDEX).is_file():
        data: dict[str, Any] = {"title": title, "pairs": [], "tracks": None, "videos": _page_videos(directory)}
    else:
        pairs_index, tracks_index = find_indexes(directory)
        data = {
            "title": title,
            "pairs": _page_pairs(directory, pairs_index) if pairs_index is not None else [],
            "tracks": _page_tracks(directory, tracks_index) if tracks_index is not None else None,
        }
    page = directory / PAGE
    with atomic_path(page) as tmp:
        tmp.write_text(page_html(data), encoding="utf-8")
    return page


def _page_videos(directory: Path) -> list[dict[str, Any]]:
    """A batch's videos for the page, writing each finished video's own page on the way."""
    index = _read_json(directory / BATCH_INDEX)
    entries = index.get("entries")
    if not isinstance(entries, list):
        raise DataError(f"{directory / BATCH_INDEX}: expected a batch index with an 'entries' list")
    videos = []
    for entry in entries:
        output = _file_name(entry.get("output")) if isinstance(entry, dict) else None
        page = None
        if output not in (None, ".", "..") and (directory / output / KEYFRAMES_DIR / VIEW_INDEX).is_file():
            build_site(directory / output, title=output)
            page = f"{quote(output)}/{PAGE}"
        entry = entry if isinstance(entry, dict) else {}
        videos.append({"name": _text(entry.get("name")), "video": _text(entry.get("video")),
                       "status": _text(entry.get("status")), "frames": _number(entry.get("frames")),
                       "points": _number(entry.get("points")), "error": _text(entry.get("error")), "page": page})
    return videos


def page_html(data: dict[str, Any]) -> str:
    """The page with `data` embedded (see `embed_json`) and a Content-Security-Policy allowing only its own
    script and style (by their hashes) and images from the page's folder."""
    return fill_page("view", data, img_src="'self' file: data:", media_src="'self' file:")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _url_maker(directory: Path, index_path: Path) -> Callable[[Any], str | None]:
    """file name relative to the index's folder -> URL relative to the page, percent-encoded; None if the
    name is not a string."""
    prefix = os.path.relpath(index_path.parent, directory).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"

    def url(name: Any) -> str | None:
        return quote(prefix + name) if isinstance(name, str) and name else None

    return url


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _page_pairs(directory: Path, index_path: Path) -> list[dict[str, Any]]:
    """The pairs index, checked and reduced to what the page shows, with URLs relative to the page."""
    index = _read_json(index_path)
    if index.get("version") != INDEX_VERSION or not isinstance(index.get("pairs"), list):
        raise DataError(f"{index_path}: expected a pairs index version {INDEX_VERSION} with a 'pairs' list")
    url = _url_maker(directory, index_path)
    vis_dir = index_path.parent
    pairs = []
    for n, record in enumerate(index["pairs"]):
        if not isinstance(record, dict) or not isinstance(record.get("points"), list) or "pair_id" not in record:
            raise DataError(f"{index_path}: pair {n} has no 'pair_id' or 'points'")
        image = record.get("image")
        size = _image_size(vis_dir / image) if isinstance(image, str) else None
        points = [_page_point(index_path, n, k, p, url) for k, p in enumerate(record["points"])]
        pairs.append({
            "id": str(record["pair_id"]), "dataset": _text(record.get("dataset")),
            "category": _text(record.get("category")),
            "src_name": _file_name(record.get("src_image")), "trg_name": _file_name(record.get("trg_image")),
            "image": url(image) if size is not None else None,
            "width": size[0] if size else None, "height": size[1] if size else None,
            "src_width": _source_width(record, vis_dir),
            "protocol": _text(record.get("protocol")), "alpha": _number(record.get("alpha")),
            "pck": _number(record.get("pck")), "points": points,
        })
    return pairs


def _page_point(index_path: Path, pair: int, k: int, point: Any, url: Callable[[Any], str | None]) -> dict[str, Any]:
    if not isinstance(point, dict):
        raise DataError(f"{index_path}: pair {pair}, point {k} is not an object")
    maps = point.get("maps")
    page_maps = None
    if isinstance(maps, dict) and isinstance(maps.get("tiles"), list):
        page_maps = {"src": url(maps.get("src")), "trg": url(maps.get("trg")), "tiles": [str(t) for t in maps["tiles"]]}
    verdicts = point.get("correct_by_protocol")
    correct = point.get("correct")
    return {
        "index": k, "kps_id": _text(point.get("kps_id")),
        "src": as_xy(point.get("src_xy")), "pred": as_xy(point.get("pred_xy")), "truth": as_xy(point.get("true_xy")),
        "correct": correct if isinstance(correct, bool) else None,
        "confidence": _number(point.get("confidence")),
        "verdicts": ({str(name): {str(a): bool(v) for a, v in flags.items()} for name, flags in verdicts.items()
                      if isinstance(flags, dict)} if isinstance(verdicts, dict) else {}),
        "maps": page_maps,
    }


def _source_width(record: dict[str, Any], vis_dir: Path) -> int | None:
    """The source image's width, where the target starts in the pair picture: from a source map strip (one
    tile per layer and the mean, each as wide as the source), else from the source image itself."""
    for point in record["points"]:
        maps = point.get("maps") if isinstance(point, dict) else None
        if isinstance(maps, dict) and isinstance(maps.get("src"), str) and maps.get("tiles"):
            size = _image_size(vis_dir / maps["src"])
            if size is not None:
                return size[0] // len(maps["tiles"])
    source = record.get("src_image")
    if isinstance(source, str) and source:
        for path in (Path(source), vis_dir / source):
            size = _image_size(path) if path.is_file() else None
            if size is not None:
                return size[0]
    return None


def _page_tracks(directory: Path, index_path: Path) -> dict[str, Any]:
    """The tracks index with URLs relative to the page."""
    index = _read_json(index_path)
    if index.get("version") != TRACKS_INDEX_VERSION:
        raise DataError(f"{index_path}: expected a tracks index version {TRACKS_INDEX_VERSION}, "
                        f"got {index.get('version')!r}")
    try:
        width, height = (int(v) for v in index["size"])
        num_points = len(index["points"])
        rows = index["rows"]
        url = _url_maker(directory, index_path)
        frames: list[dict[str, Any]] = [{"frame": int(f["frame"]), "row": int(f["row"]), "image": url(f["image"]),
                   "heat": [url(h) for h in f["heat"]]} for f in index["frames"]]
        references: list[dict[str, Any]] = [
            {"frame": int(f["frame"]), "image": url(f["image"]), "heat": [url(h) for h in f["heat"]]}
                      for f in index["references"]]
        points = [{"id": int(p["id"]), "query_frame": None if p.get("query_frame") is None else int(p["query_frame"]),
                   "query_xy": as_xy(p.get("query_xy")),
                   "color": p["color"] if re.fullmatch(r"#[0-9a-fA-F]{6}", str(p.get("color"))) else "#ffffff"}
                  for p in index["points"]]
        if any(len(f["heat"]) != num_points for f in frames + references):
            raise DataError(f"{index_path}: a frame's 'heat' list does not have one entry per point ({num_points})")
        trail = int(index.get("trail", 10))
        page_rows = {"frames": [int(f) for f in rows["frames"]],
                     "points": [[as_xy(p) for p in row] for row in rows["points"]],
                     "visible": [[bool(v) for v in row] for row in rows["visible"]],
                     "confidence": [[_number(c) for c in row] for row in rows["confidence"]]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{index_path}: malformed tracks index ({type(exc).__name__}: {exc})") from None
    return {"video": _file_name(index.get("video")), "size": [width, height], "fps": _number(index.get("fps")),
            "trail": trail, "points": points, "rows": page_rows, "frames": frames,
            "references": references, "annotated": _annotated_video(directory, index_path)}



def _annotated_video(directory: Path, index_path: Path) -> dict[str, Any] | None:
    """The run's annotated video (next to the key frames' folder, or beside the index), for the page to play:
    {"url", "name", "codec" (or None), "playable" (False for a codec browsers do not play, else True)}."""
    run_dir = index_path.parent.parent if index_path.parent.name == KEYFRAMES_DIR else index_path.parent
    video = run_dir / ANNOTATED_VIDEO
    if not video.is_file():
        return None
    codec = _video_codec(video)
    rel = os.path.relpath(video, directory).replace(os.sep, "/")
    return {"url": quote(rel), "name": video.name, "codec": codec, "playable": codec not in _UNPLAYABLE_CODECS}


def _video_codec(path: Path) -> str | None:
    """The first video stream's codec name ('h264', 'mpeg4', ...) read with PyAV; None where it cannot tell."""
    try:
        # PyAV only to probe a video's codec, when there is a video to probe
        import av

        with av.open(str(path)) as container:
            return container.streams.video[0].codec_context.name if container.streams.video else None
    except Exception:  # PyAV missing, or FFmpeg's own error types for an unreadable file
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _file_name(value: Any) -> str | None:
    """The last component of a path written by another machine or OS (either separator)."""
    if not isinstance(value, str) or not value:
        return None
    return re.split(r"[\\/]", value.rstrip("/\\"))[-1] or value

