"""What the viewer reads: the pictures and index files of pairs (eval, match) and of tracked key frames.

Pairs: per pair, under ``<vis>/<pair folder>/`` (``vidcorr.io.names.safe_name`` of the pair id), ``pair.png``
(source and target side by side with a line per point), ``point<k>_src.png`` / ``point<k>_trg.png`` (one
tile per layer and their mean, each map blended over its image; see :func:`map_strip`) and ``pair.json``, the
pair's entry of ``<vis>/index.json``, which :func:`write_index` rebuilds from every ``pair.json`` (so shards
and resumed runs writing into one folder end with one index). ``vidcorr.eval.visualize`` writes benchmark
pairs (with ground truth); :func:`write_match_visuals` writes a ``vidcorr match`` pair (without).

Tracks: ``<out>/keyframes/index.json`` written by :func:`write_track_visuals`:

  ``{"version": 1, "kind": "tracks", "video", "size": [W, H], "fps", "trail",
  "points": [{"id", "query_frame" (null under global search), "query_xy": [x, y], "color": "#rrggbb",
  "name" (optional)}],
  "rows": {"frames": [T], "points": [T][N] [x, y] or null, "visible": [T][N], "confidence": [T][N]},
  "truth" (optional, a benchmark's ground truth): [T][N] [x, y] or null,
  "frames": [{"frame", "row", "image", "heat": [N] file or null}],
  "references": [{"frame", "image", "heat": [N] file or null}]}``

  ``frames`` are the key frames (tracked rows) the page's slider runs over, ``references`` the query
  frames; ``heat`` files are the layer-mean attention map of each point on that frame, colour-mapped
  (JET, min-max per map) at ``HEAT_SIDE`` pixels in the model's square space (the page stretches them
  over the frame, which undoes the squash). File names are relative to the index's folder.

``vidcorr.view`` builds the page over these files. Nothing here needs torch: maps arrive as tensors or
arrays and are read through numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path, write_json
from vidcorr.io.images import write_image
from vidcorr.io.names import KEYFRAMES_DIR, VIEW_INDEX, safe_name
from vidcorr.io.reader import VideoReader, evenly_spaced
from vidcorr.io.render import blend_heatmap, default_radius, draw_marker, point_colors, side_by_side
from vidcorr.io.tracks import Tracks

PAIR_FILE = "pair.json"
INDEX_VERSION = 1
TRACKS_INDEX_VERSION = 1
HEAT_SIDE = 128
DEFAULT_KEY_FRAMES = 8
NEUTRAL_RGB = (64, 180, 255)
"""Lines of pairs without ground truth (``vidcorr match``): neither correct nor wrong."""
_SOURCE_RGB = (255, 255, 255)
_JPEG_QUALITY = 90


# --------------------------------------------------------------------------------------------- pairs


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    """`tile` with a black strip and `text` above it."""
    height = max(12, tile.shape[0] // 12)
    strip = np.zeros((height, tile.shape[1], 3), dtype=np.uint8)
    scale = max(0.25, height / 30)
    cv2.putText(strip, text, (2, height - max(2, height // 5)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def map_strip(image: np.ndarray, maps: np.ndarray, layers: tuple[int, ...], marks: list[tuple[np.ndarray, tuple]]
              ) -> np.ndarray:
    """One row of tiles: each layer's map blended over `image`, then their mean; `marks` drawn on each.

    image: uint8 (H, W, 3). maps: float (L, S, S) in the model's square space (resized to H x W).
    marks: (x, y) in image pixels and an RGB colour each.
    """
    radius = default_radius(image.shape[1], image.shape[0])
    names = [f"layer {n}" for n in layers] if len(layers) == len(maps) else [f"map {i}" for i in range(len(maps))]
    tiles = []
    for heat, name in [*zip(maps, names, strict=True), (maps.mean(axis=0), "mean")]:
        tile = blend_heatmap(image, heat)
        for xy, rgb in marks:
            if np.isfinite(xy).all():
                draw_marker(tile, (float(xy[0]), float(xy[1])), rgb, radius)
        tiles.append(_caption(tile, name))
    return np.concatenate(tiles, axis=1)


def write_index(vis_dir: str | Path) -> Path:
    """Rebuild ``<vis_dir>/index.json`` from every ``<pair folder>/pair.json``, pairs sorted by id."""
    vis_dir = Path(vis_dir)
    records = []
    for path in sorted(vis_dir.glob(f"*/{PAIR_FILE}")):
        try:
            records.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a pair whose writing was killed: its next run rewrites it
    records.sort(key=lambda r: r["pair_id"])
    # Several shards may rebuild the index at once: write_json renames a private temporary into place.
    return write_json(vis_dir / VIEW_INDEX, {"version": INDEX_VERSION, "pairs": records})



@dataclass(frozen=True)
class MatchedImage:
    """One image of a ``vidcorr match`` pair, as its pictures show it (`write_match_visuals`).

    Attributes:
        path: the image file (its name goes into the pair id).
        image: uint8 (H, W, 3) RGB.
        xy: float (K, 2) x, y in its pixels: the source's points, or where they were located on the target.
        maps: float (K, L, S, S) ``Location.maps`` of the embeddings on it (a tensor or an array).
    """

    path: str | Path
    image: np.ndarray
    xy: np.ndarray
    maps: Any


def write_match_visuals(vis_dir: str | Path, source: MatchedImage, target: MatchedImage, confidence: np.ndarray,
                        layers: Sequence[int]) -> dict[str, Any]:
    """Write one matched pair's pictures, ``pair.json`` and the rebuilt ``index.json`` under `vis_dir`.

    The files and the entry are those of `vidcorr.eval.visualize.write_pair_visuals` for a pair without
    ground truth: the lines are neutral, the target maps mark the predicted point only, and ``true_xy``,
    ``correct``, ``pck``, ``protocol`` and ``alpha`` are null.

    Args:
        vis_dir: the folder (created if missing).
        source, target: the two images, their K points and maps (`MatchedImage`).
        confidence: float (K,).
        layers: the seed's numbers of the L layers.

    Returns:
        The pair's index entry.
    """
    vis_dir = Path(vis_dir)
    src_xy, trg_xy = np.asarray(source.xy, np.float64), np.asarray(target.xy, np.float64)
    pair_id = f"{Path(source.path).name} -> {Path(target.path).name}"
    folder = safe_name(pair_id)
    pair_dir = vis_dir / folder
    pair_dir.mkdir(parents=True, exist_ok=True)
    num_points = len(src_xy)
    write_image(pair_dir / "pair.png", side_by_side(source.image, target.image, src_xy, trg_xy,
                                                    colors=np.tile(np.array(NEUTRAL_RGB, np.uint8), (num_points, 1))))
    layers = tuple(int(n) for n in layers)
    points = []
    for k in range(num_points):
        src_file, trg_file = f"{folder}/point{k:02d}_src.png", f"{folder}/point{k:02d}_trg.png"
        write_image(vis_dir / src_file,
                    map_strip(source.image, _numpy(source.maps[k]), layers, [(src_xy[k], _SOURCE_RGB)]))
        write_image(vis_dir / trg_file,
                    map_strip(target.image, _numpy(target.maps[k]), layers, [(trg_xy[k], NEUTRAL_RGB)]))
        points.append({
            "index": k, "kps_id": None,
            "src_xy": [float(v) for v in src_xy[k]], "pred_xy": [float(v) for v in trg_xy[k]], "true_xy": None,
            "correct": None, "correct_by_protocol": {}, "confidence": float(confidence[k]),
            "maps": {"src": src_file, "trg": trg_file, "tiles": [f"layer {n}" for n in layers] + ["mean"]},
        })
    record = {"pair_id": pair_id, "dataset": "match", "category": None, "src_image": str(source.path),
              "trg_image": str(target.path), "image": f"{folder}/pair.png", "protocol": None, "alpha": None,
              "pck": None, "points": points}
    write_json(pair_dir / PAIR_FILE, record)
    write_index(vis_dir)
    return record


def _numpy(maps: Any) -> np.ndarray:
    """float32 numpy of a torch tensor (on any device, any dtype) or an array."""
    if hasattr(maps, "detach"):
        maps = maps.detach().float().cpu().numpy()
    return np.asarray(maps, dtype=np.float32)


# -------------------------------------------------------------------------------------------- track data



def choose_key_frames(frame_indices: Sequence[int] | np.ndarray, count: int,
                      always: Iterable[int] = ()) -> list[int]:
    """`count` evenly spaced frames of `frame_indices` (first and last included), plus those of `always`
    that are tracked, ascending. count 0 gives only `always`'s."""
    if count < 0:
        raise InputError(f"key frame count {count} is invalid: it must be >= 0")
    tracked = [int(f) for f in frame_indices]
    chosen = {tracked[i] for i in evenly_spaced(len(tracked), count)}
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

    def __call__(self, frame_index: int, point_ids: np.ndarray, location: Any) -> None:
        if int(frame_index) in self.frames and location.maps is not None:
            self.add(frame_index, point_ids, location.maps)

    def add(self, frame_index: int, point_ids: Sequence[int] | np.ndarray, maps: Any) -> None:
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


@dataclass(frozen=True)
class ViewOptions:
    """What the tracks page shows beside the tracks and the key frames (`write_track_visuals`).

    Attributes:
        trail: rows of trail the page draws behind each point.
        global_search: no frame was a reference (the queries' frames are meaningless): no reference frames.
        truth: float (T, N, 2) ground truth per tracked row (a benchmark's), drawn beside the predictions;
            written as ``truth`` ([T][N] [x, y] or null). None: none.
        names: one name per point (a benchmark's joints), written as each point's ``name``. None: none.
    """

    trail: int = 10
    global_search: bool = False
    truth: np.ndarray | None = None
    names: Sequence[str] | None = None


def write_track_visuals(out_dir: str | Path, video: VideoReader, tracks: Tracks, key_frames: Sequence[int],
                        maps: KeyFrameMaps | None = None, *, view: ViewOptions | None = None,
                        progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Write ``<out_dir>/keyframes/``: key and query frames as JPEG, heat maps as PNG, ``index.json`` last
    (the format is in this module's docstring). Returns the index's path.

    Args:
        out_dir: the track output folder.
        video: the video `tracks` were made on.
        tracks: the tracks.
        key_frames: video frame indices for the page's slider; each must be a tracked frame.
        maps: heat maps collected during tracking (`KeyFrameMaps`), or None for none.
        view: the trail, whether it was a global search, a benchmark's ground truth and point names
            (`ViewOptions`; None: its defaults).
        progress: called as progress("keyframes", done, total) after each frame written.
    """
    view = view or ViewOptions()
    folder = Path(out_dir) / KEYFRAMES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    row_of = {int(f): r for r, f in enumerate(tracks.frame_indices.tolist())}
    missing = [f for f in key_frames if int(f) not in row_of]
    if missing:
        raise InputError(f"key frames {missing} were not tracked")
    heat = maps.heat if maps is not None else {}
    query_frames = [] if view.global_search else sorted({int(t) for t in tracks.queries[:, 0]})
    to_write = sorted({int(f) for f in key_frames} | set(query_frames))
    written = {}
    for done, frame in enumerate(to_write, start=1):
        written[frame] = _write_key_frame(folder, frame, video.get_frame(frame), heat.get(frame, {}),
                                          tracks.num_points)
        if progress is not None:
            progress("keyframes", done, len(to_write))
    index = _tracks_index(tracks, view)
    index["frames"] = [{**written[int(f)], "row": row_of[int(f)]} for f in sorted({int(f) for f in key_frames})]
    index["references"] = [written[t] for t in query_frames]
    if view.truth is not None:
        index["truth"] = [[as_xy(p, 2) for p in row] for row in np.asarray(view.truth, dtype=np.float64)]
    return write_json(folder / VIEW_INDEX, index, indent=1, allow_nan=False)


def _write_key_frame(folder: Path, frame: int, image: np.ndarray, heat: dict[int, np.ndarray],
                     num_points: int) -> dict[str, Any]:
    """Write one frame's JPEG and its points' heat maps (those in `heat`) into `folder`; its index entry."""
    image_file = f"frame{frame:06d}.jpg"
    _write_jpeg(folder / image_file, image)
    heat_files: list[str | None] = []
    for point in range(num_points):
        rgb = heat.get(point)
        name = None
        if rgb is not None:
            name = f"frame{frame:06d}_point{point:03d}.png"
            write_image(folder / name, rgb)
        heat_files.append(name)
    return {"frame": frame, "image": image_file, "heat": heat_files}


def _tracks_index(tracks: Tracks, view: ViewOptions) -> dict[str, Any]:
    """The index's header, points and rows (its ``frames`` and ``references`` are the caller's)."""
    colours = point_colors(tracks.num_points)
    names = view.names
    return {
        "version": TRACKS_INDEX_VERSION, "kind": "tracks",
        "video": str(tracks.meta.get("video", "")), "size": [int(tracks.size[0]), int(tracks.size[1])],
        "fps": float(tracks.fps), "trail": int(view.trail),
        "points": [{"id": i, "query_frame": None if view.global_search else int(tracks.queries[i, 0]),
                    "query_xy": as_xy(tracks.queries[i, 1:]), "color": "#{:02x}{:02x}{:02x}".format(*colours[i]),
                    **({"name": str(names[i])} if names is not None else {})}
                   for i in range(tracks.num_points)],
        "rows": {"frames": [int(f) for f in tracks.frame_indices],
                 "points": [[as_xy(p, 2) for p in row] for row in tracks.points],
                 "visible": tracks.visible.tolist(),
                 "confidence": [[round(float(c), 4) for c in row] for row in tracks.confidence]},
    }


def _write_jpeg(path: Path, image: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=_JPEG_QUALITY)
    return path


def as_xy(value: Any, digits: int | None = None) -> list[float] | None:
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
