"""The viewer: a static page over what ``eval --visualize``, ``match --visualize`` and ``track`` write.

`build_site(directory)` writes ``<directory>/index.html``: one self-contained file (inline CSS, JS and
data; images by relative path) that works from ``file://`` with no server and no network. It finds:

- pairs: ``<directory>/vis/index.json`` or ``<directory>/index.json`` in the format of
  `vidcorr.eval.visualize` (eval writes it; `write_match_visuals` writes the same for ``vidcorr match``,
  with no ground truth: ``true_xy``, ``correct`` and ``pck`` are null);
- tracks: ``<directory>/keyframes/index.json`` (or ``<directory>/index.json``) written by
  `write_track_visuals`:

  ``{"version": 1, "kind": "tracks", "video", "size": [W, H], "fps", "trail",
  "points": [{"id", "query_frame" (null under global search), "query_xy": [x, y], "color": "#rrggbb"}],
  "rows": {"frames": [T], "points": [T][N] [x, y] or null, "visible": [T][N], "confidence": [T][N]},
  "frames": [{"frame", "row", "image", "heat": [N] file or null}],
  "references": [{"frame", "image", "heat": [N] file or null}]}``

  ``frames`` are the key frames (tracked rows) the page's slider runs over, ``references`` the query
  frames; ``heat`` files are the layer-mean attention map of each point on that frame, colour-mapped
  (JET, min-max per map) at ``HEAT_SIDE`` pixels in the model's square space (the page stretches them
  over the frame, which undoes the squash). File names are relative to the index's folder.

Every string from files reaches the page only inside a ``<script type="application/json">`` block with
``<``, ``>`` and ``&`` escaped, and the page's script builds its DOM with ``textContent``; a
Content-Security-Policy allows only the page's own script and style (by hash) and local images.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vidcorr.atomic import atomic_path
from vidcorr.config import Config
from vidcorr.embeddings import Embeddings
from vidcorr.errors import DataError, InputError
from vidcorr.eval.visualize import INDEX_FILE, INDEX_VERSION, PAIR_FILE, map_strip, pair_folder_name, write_index
from vidcorr.fit import Progress
from vidcorr.imageio import write_image
from vidcorr.locate import Location, locate
from vidcorr.model import LDM
from vidcorr.render import point_colors, side_by_side
from vidcorr.tracks import Tracks
from vidcorr.video import VideoReader
from vidcorr.view_page import PAGE_SCRIPT, PAGE_STYLE, PAGE_TEMPLATE

PAGE_FILE = "index.html"
VIS_DIR = "vis"
TRACKS_DIR = "keyframes"
TRACKS_INDEX_VERSION = 1
HEAT_SIDE = 128
DEFAULT_KEY_FRAMES = 8
NEUTRAL_RGB = (64, 180, 255)
"""Lines of pairs without ground truth (``vidcorr match``): neither correct nor wrong."""
_SOURCE_RGB = (255, 255, 255)
_JPEG_QUALITY = 90


# --------------------------------------------------------------------------------------------- match data


def write_match_visuals(vis_dir: str | Path, source: str | Path, target: str | Path, src_image: np.ndarray,
                        trg_image: np.ndarray, src_xy: np.ndarray, trg_xy: np.ndarray, confidence: np.ndarray,
                        src_maps: torch.Tensor | np.ndarray, trg_maps: torch.Tensor | np.ndarray,
                        layers: Sequence[int]) -> dict[str, Any]:
    """Write one matched pair's pictures, ``pair.json`` and the rebuilt ``index.json`` under `vis_dir`.

    The files and the entry are those of `vidcorr.eval.visualize.write_pair_visuals` for a pair without
    ground truth: the lines are neutral, the target maps mark the predicted point only, and ``true_xy``,
    ``correct``, ``pck``, ``protocol`` and ``alpha`` are null.

    Args:
        vis_dir: the folder (created if missing).
        source, target: the image files (their names become the pair id).
        src_image, trg_image: uint8 (H, W, 3) RGB.
        src_xy: float (K, 2) source points; trg_xy: float (K, 2) where they were located, image pixels.
        confidence: float (K,).
        src_maps, trg_maps: float (K, L, S, S) ``Location.maps`` of the embeddings on each image.
        layers: the seed's numbers of the L layers.

    Returns:
        The pair's index entry.
    """
    vis_dir = Path(vis_dir)
    src_xy, trg_xy = np.asarray(src_xy, np.float64), np.asarray(trg_xy, np.float64)
    pair_id = f"{Path(source).name} -> {Path(target).name}"
    folder = pair_folder_name(pair_id)
    pair_dir = vis_dir / folder
    pair_dir.mkdir(parents=True, exist_ok=True)
    num_points = len(src_xy)
    write_image(pair_dir / "pair.png", side_by_side(src_image, trg_image, src_xy, trg_xy,
                                                    colors=np.tile(np.array(NEUTRAL_RGB, np.uint8), (num_points, 1))))
    layers = tuple(int(n) for n in layers)
    points = []
    for k in range(num_points):
        src_file, trg_file = f"{folder}/point{k:02d}_src.png", f"{folder}/point{k:02d}_trg.png"
        write_image(vis_dir / src_file, map_strip(src_image, _numpy(src_maps[k]), layers, [(src_xy[k], _SOURCE_RGB)]))
        write_image(vis_dir / trg_file, map_strip(trg_image, _numpy(trg_maps[k]), layers, [(trg_xy[k], NEUTRAL_RGB)]))
        points.append({
            "index": k, "kps_id": None,
            "src_xy": [float(v) for v in src_xy[k]], "pred_xy": [float(v) for v in trg_xy[k]], "true_xy": None,
            "correct": None, "correct_by_protocol": {}, "confidence": float(confidence[k]),
            "maps": {"src": src_file, "trg": trg_file, "tiles": [f"layer {n}" for n in layers] + ["mean"]},
        })
    record = {"pair_id": pair_id, "dataset": "match", "category": None, "src_image": str(source),
              "trg_image": str(target), "image": f"{folder}/pair.png", "protocol": None, "alpha": None, "pck": None,
              "points": points}
    _write_json(pair_dir / PAIR_FILE, record)
    write_index(vis_dir)
    return record


def _numpy(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().to("cpu", torch.float32).numpy()
    return np.asarray(maps, dtype=np.float32)


# -------------------------------------------------------------------------------------------- track data


def choose_key_frames(frame_indices: Sequence[int] | np.ndarray, count: int,
                      always: Iterable[int] = ()) -> list[int]:
    """`count` evenly spaced frames of `frame_indices` (first and last included), plus those of `always`
    that are tracked, ascending. count 0 gives only `always`'s."""
    if count < 0:
        raise InputError(f"key frame count {count} is invalid: it must be >= 0")
    tracked = [int(f) for f in frame_indices]
    chosen = {tracked[round(i)] for i in np.linspace(0, len(tracked) - 1, min(count, len(tracked)))} \
        if tracked and count else set()
    members = set(tracked)
    chosen |= {int(f) for f in always if int(f) in members}
    return sorted(chosen)


class KeyFrameMaps:
    """The attention heat map of every point on chosen frames, collected while `vidcorr.track` runs.

    Pass it as ``track(..., on_frame=maps, return_maps=True)``; `add_reference_maps` fills the query
    frames, where tracking does not locate a point. `heat[frame][point]` is uint8 (HEAT_SIDE, HEAT_SIDE, 3)
    RGB: the layer-mean map, min-max normalised, JET colour-mapped, in the model's square space.
    """

    def __init__(self, frames: Iterable[int], side: int = HEAT_SIDE) -> None:
        self.frames = {int(f) for f in frames}
        self.side = int(side)
        self.heat: dict[int, dict[int, np.ndarray]] = {}

    def __call__(self, frame_index: int, point_ids: np.ndarray, location: Location) -> None:
        if int(frame_index) in self.frames and location.maps is not None:
            self.add(frame_index, point_ids, location.maps)

    def add(self, frame_index: int, point_ids: Sequence[int] | np.ndarray, maps: torch.Tensor | np.ndarray) -> None:
        """Keep the maps (M, L, S, S) of points `point_ids` (M,) on frame `frame_index`."""
        maps = _numpy(maps)
        if maps.ndim != 4 or maps.shape[0] != len(point_ids):
            raise ValueError(f"maps must be (M, L, S, S) for {len(point_ids)} points; got shape {maps.shape}")
        frame = self.heat.setdefault(int(frame_index), {})
        for point, layer_maps in zip(np.asarray(point_ids).tolist(), maps, strict=True):
            frame[int(point)] = colour_heat(layer_maps.mean(axis=0), self.side)


def colour_heat(heat: np.ndarray, side: int = HEAT_SIDE) -> np.ndarray:
    """A float (h, w) map -> uint8 (side, side, 3) RGB: min-max normalised (constant -> 0), JET."""
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if heat.shape != (side, side):
        smaller = heat.shape[0] > side
        heat = cv2.resize(heat, (side, side), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR)
    lo, hi = float(heat.min()), float(heat.max())
    unit = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    coloured = cv2.applyColorMap(np.round(unit * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)


def add_reference_maps(maps: KeyFrameMaps, ldm: LDM, video: VideoReader, embeddings: Embeddings,
                       cfg: Config | None = None, progress: Progress | None = None) -> dict[int, Location]:
    """Locate each point on its own query frame with maps, as `vidcorr.fit_queries` does for the confidence
    scale (same random streams and anchors: the same draws), and keep the maps in `maps`.

    Returns:
        query frame -> the Location of the points fitted on it (in query order).
    """
    if embeddings.frames is None:
        raise InputError("these embeddings were fitted on an image, not a video frame: they have no reference frame")
    frames = np.asarray(embeddings.frames, dtype=np.int64)
    located = {}
    for t in np.unique(frames).tolist():
        idx = np.flatnonzero(frames == t)
        loc = locate(ldm, video.get_frame(int(t)), embeddings.subset(idx), cfg, progress=progress,
                     return_maps=True, stream_key=int(t), point_ids=idx.tolist(), anchors_xy=embeddings.points[idx])
        maps.add(int(t), idx, loc.maps)
        located[int(t)] = loc
    return located


def write_track_visuals(out_dir: str | Path, video: VideoReader, tracks: Tracks, key_frames: Sequence[int],
                        maps: KeyFrameMaps | None = None, *, trail: int = 10, global_search: bool = False,
                        progress: Progress | None = None) -> Path:
    """Write ``<out_dir>/keyframes/``: key and query frames as JPEG, heat maps as PNG, ``index.json`` last
    (the format is in this module's docstring). Returns the index's path.

    Args:
        out_dir: the track output folder.
        video: the video `tracks` were made on.
        tracks: the tracks.
        key_frames: video frame indices for the page's slider; each must be a tracked frame.
        maps: heat maps collected during tracking (`KeyFrameMaps`), or None for none.
        trail: rows of trail the page draws behind each point.
        global_search: no frame was a reference (the queries' frames are meaningless).
        progress: called as progress("keyframes", done, total) after each frame written.
    """
    folder = Path(out_dir) / TRACKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    row_of = {int(f): r for r, f in enumerate(tracks.frame_indices.tolist())}
    missing = [f for f in key_frames if int(f) not in row_of]
    if missing:
        raise InputError(f"key frames {missing} were not tracked")
    heat = maps.heat if maps is not None else {}
    num_points = tracks.num_points
    query_frames = [] if global_search else sorted({int(t) for t in tracks.queries[:, 0]})

    def write_frame(frame: int) -> dict[str, Any]:
        image_file = f"frame{frame:06d}.jpg"
        _write_jpeg(folder / image_file, video.get_frame(frame))
        heat_files: list[str | None] = []
        for point in range(num_points):
            rgb = heat.get(frame, {}).get(point)
            name = None
            if rgb is not None:
                name = f"frame{frame:06d}_point{point:03d}.png"
                write_image(folder / name, rgb)
            heat_files.append(name)
        return {"frame": frame, "image": image_file, "heat": heat_files}

    to_write = sorted({int(f) for f in key_frames} | set(query_frames))
    written = {}
    for done, frame in enumerate(to_write, start=1):
        written[frame] = write_frame(frame)
        if progress is not None:
            progress("keyframes", done, len(to_write))
    colours = point_colors(num_points)
    index = {
        "version": TRACKS_INDEX_VERSION, "kind": "tracks",
        "video": str(tracks.meta.get("video", "")), "size": [int(tracks.size[0]), int(tracks.size[1])],
        "fps": float(tracks.fps), "trail": int(trail),
        "points": [{"id": i, "query_frame": None if global_search else int(tracks.queries[i, 0]),
                    "query_xy": _xy(tracks.queries[i, 1:]), "color": "#{:02x}{:02x}{:02x}".format(*colours[i])}
                   for i in range(num_points)],
        "rows": {"frames": [int(f) for f in tracks.frame_indices],
                 "points": [[_xy(p, 2) for p in row] for row in tracks.points],
                 "visible": tracks.visible.tolist(),
                 "confidence": [[round(float(c), 4) for c in row] for row in tracks.confidence]},
        "frames": [{**written[int(f)], "row": row_of[int(f)]} for f in sorted({int(f) for f in key_frames})],
        "references": [written[t] for t in query_frames],
    }
    return _write_json(folder / INDEX_FILE, index)


def _write_jpeg(path: Path, image: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=_JPEG_QUALITY)
    return path


def _xy(value: Any, digits: int | None = None) -> list[float] | None:
    """[x, y] floats, or None for a missing or non-finite point."""
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return [round(x, digits), round(y, digits)] if digits is not None else [x, y]


def _write_json(path: Path, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    return path


# ------------------------------------------------------------------------------------------------- the page


def find_indexes(directory: str | Path) -> tuple[Path | None, Path | None]:
    """(pairs index, tracks index) under `directory`, either None where absent.

    Raises:
        InputError: `directory` is not a folder, or holds neither.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{str(directory)!r} is not a folder")
    pairs = tracks = None
    for candidate in (directory / INDEX_FILE, directory / VIS_DIR / INDEX_FILE, directory / TRACKS_DIR / INDEX_FILE):
        if not candidate.is_file():
            continue
        kind = "tracks" if _read_json(candidate).get("kind") == "tracks" else "pairs"
        if kind == "pairs" and pairs is None:
            pairs = candidate
        elif kind == "tracks" and tracks is None:
            tracks = candidate
    if pairs is None and tracks is None:
        raise InputError(f"nothing to view in {str(directory)!r}: expected vis/{INDEX_FILE} (from `vidcorr eval "
                         f"--visualize` or `vidcorr match --visualize`) or {TRACKS_DIR}/{INDEX_FILE} (from `vidcorr "
                         "track`), or the folder holding one")
    return pairs, tracks


def build_site(directory: str | Path, title: str | None = None) -> Path:
    """Write ``<directory>/index.html`` over the pairs and tracks found there (see the module docstring).

    Returns:
        The page's path.

    Raises:
        InputError: nothing to view. DataError: an index is malformed (the message names the file).
    """
    directory = Path(directory)
    pairs_index, tracks_index = find_indexes(directory)
    data = {
        "title": title if title is not None else (directory.resolve().name or str(directory)),
        "pairs": _page_pairs(directory, pairs_index) if pairs_index is not None else [],
        "tracks": _page_tracks(directory, tracks_index) if tracks_index is not None else None,
    }
    page = directory / PAGE_FILE
    with atomic_path(page) as tmp:
        tmp.write_text(page_html(data), encoding="utf-8")
    return page


def page_html(data: dict[str, Any]) -> str:
    """The page with `data` embedded (see `embed_json`) and a Content-Security-Policy allowing only its own
    script and style (by their hashes) and images from the page's folder."""
    csp = ("default-src 'none'; "
           f"script-src '{_sha256(PAGE_SCRIPT)}'; style-src '{_sha256(PAGE_STYLE)}'; "
           "img-src 'self' file: data:; base-uri 'none'; form-action 'none'")
    replacements = {"@CSP@": csp, "@STYLE@": PAGE_STYLE, "@SCRIPT@": PAGE_SCRIPT, "@DATA@": embed_json(data)}
    return re.sub("|".join(map(re.escape, replacements)), lambda m: replacements[m.group(0)], PAGE_TEMPLATE)


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element: no ``<``, ``>`` or ``&`` (so no
    ``</script>`` or ``<!--``), and no U+2028/U+2029."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


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
        "src": _xy(point.get("src_xy")), "pred": _xy(point.get("pred_xy")), "truth": _xy(point.get("true_xy")),
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
        frames = [{"frame": int(f["frame"]), "row": int(f["row"]), "image": url(f["image"]),
                   "heat": [url(h) for h in f["heat"]]} for f in index["frames"]]
        references = [{"frame": int(f["frame"]), "image": url(f["image"]), "heat": [url(h) for h in f["heat"]]}
                      for f in index["references"]]
        points = [{"id": int(p["id"]), "query_frame": None if p.get("query_frame") is None else int(p["query_frame"]),
                   "query_xy": _xy(p.get("query_xy")),
                   "color": p["color"] if re.fullmatch(r"#[0-9a-fA-F]{6}", str(p.get("color"))) else "#ffffff"}
                  for p in index["points"]]
        if any(len(f["heat"]) != num_points for f in frames + references):
            raise DataError(f"{index_path}: a frame's 'heat' list does not have one entry per point ({num_points})")
        trail = int(index.get("trail", 10))
        page_rows = {"frames": [int(f) for f in rows["frames"]],
                     "points": [[_xy(p) for p in row] for row in rows["points"]],
                     "visible": [[bool(v) for v in row] for row in rows["visible"]],
                     "confidence": [[_number(c) for c in row] for row in rows["confidence"]]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{index_path}: malformed tracks index ({type(exc).__name__}: {exc})") from None
    return {"video": _file_name(index.get("video")), "size": [width, height], "fps": _number(index.get("fps")),
            "trail": trail, "points": points, "rows": page_rows, "frames": frames,
            "references": references}


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


__all__ = [
    "DEFAULT_KEY_FRAMES", "HEAT_SIDE", "KeyFrameMaps", "PAGE_FILE", "add_reference_maps", "build_site",
    "choose_key_frames", "colour_heat", "embed_json", "find_indexes", "page_html", "write_match_visuals",
    "write_track_visuals",
]
