"""`Tracks`: points tracked through a video, and their files (.npz, .csv, .json).

Coordinates are (x, y) in the video's own pixels with pixel centres at +0.5: the centre of the
top-left pixel is (0.5, 0.5). Rows are tracked frames; `frame_indices` maps each row to its frame
in the video (rows skip frames when tracking used a start, an end or a stride).

File formats (all written atomically):

- ``.npz``: ``points`` float32 (T, N, 2), ``visible`` bool (T, N), ``confidence`` float32 (T, N),
  ``queries`` float32 (N, 3) t, x, y, ``frame_indices`` int64 (T,), ``fps`` float64 scalar,
  ``size`` int64 (2,) W, H, and ``meta`` (a JSON string); where the points' labels are known, ``label_ids``
  unicode (M,) and ``labels`` float64 (M, 3) t, x, y: one row per label, point by point (rows sharing an id are
  one point's labels, in point order); where a point is marked "not visible here" (`PointLabels.hidden`),
  ``hidden_ids`` unicode (H,) and ``hidden`` int64 (H,) frames, one row per mark. Loadable without pickle.
- ``.csv``: header ``frame,point,x,y,visible,confidence``, one row per tracked frame and point,
  ``frame`` being the video frame index and ``visible`` 1 or 0.
- ``.json``: the npz's content as nested lists plus ``meta`` (config, model id, ...); the labels as
  ``"labels": [{"id", "point", "t", "x", "y"}, ...]`` (``point`` the point's index), the marks as
  ``"hidden": [{"id", "point", "t"}, ...]``.

These are the shapes CoTracker (points (T, N, 2), visibility (T, N)) and TAP-Vid users handle.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.names import TRACKS_STEM
from vidcorr.io.points import PointLabels

FORMAT_NAME = "vidcorr-tracks"
FORMAT_VERSION = 1
CSV_HEADER = "frame,point,x,y,visible,confidence"
REQUIRED_NPZ_KEYS = ("points", "visible", "confidence", "queries", "fps", "size")


@dataclass(eq=False)
class Tracks:
    """Points tracked through a video.

    Attributes:
        points: float32 (T, N, 2) x, y in the video's pixels (pixel centres at +0.5).
        visible: bool (T, N), False where a point is judged occluded or out of frame.
        confidence: float32 (T, N), higher is surer.
        queries: float32 (N, 3) t, x, y: the frame and position each point was chosen at.
        frame_indices: int64 (T,) the video frame index of each row, strictly increasing.
        fps: frame rate of the video, frames per second.
        size: (W, H) of the video in pixels.
        meta: JSON-able provenance (config, model id, ...); not used by any computation.
        labels: the frames and positions each point was labelled at (`PointLabels`, in point order), or None
            where unknown (a global search, a file from an older vidcorr or another tool).
    """

    points: np.ndarray
    visible: np.ndarray
    confidence: np.ndarray
    queries: np.ndarray
    frame_indices: np.ndarray
    fps: float
    size: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)
    labels: PointLabels | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32)
        if self.points.ndim != 3 or self.points.shape[2] != 2:
            raise ValueError(f"points must be (T, N, 2); got shape {self.points.shape}")
        t, n = self.points.shape[:2]
        self.visible = np.asarray(self.visible)
        if self.visible.shape != (t, n):
            raise ValueError(f"visible must be (T, N) = ({t}, {n}); got shape {self.visible.shape}")
        self.visible = self.visible.astype(bool)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        if self.confidence.shape != (t, n):
            raise ValueError(f"confidence must be (T, N) = ({t}, {n}); got shape {self.confidence.shape}")
        self.queries = np.asarray(self.queries, dtype=np.float32)
        if self.queries.shape != (n, 3):
            raise ValueError(f"queries must be (N, 3) = ({n}, 3) t, x, y; got shape {self.queries.shape}")
        frame_indices = np.asarray(self.frame_indices)
        if frame_indices.shape != (t,):
            raise ValueError(f"frame_indices must be (T,) = ({t},); got shape {frame_indices.shape}")
        if frame_indices.size and not np.array_equal(frame_indices, np.round(frame_indices)):
            raise ValueError(f"frame_indices must be integers; got {frame_indices[:5].tolist()}...")
        self.frame_indices = frame_indices.astype(np.int64)
        if t and (self.frame_indices[0] < 0 or np.any(np.diff(self.frame_indices) <= 0)):
            raise ValueError("frame_indices must be >= 0 and strictly increasing")
        fps = float(self.fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a finite number > 0; got {self.fps!r}")
        self.fps = fps
        size = tuple(int(v) for v in np.asarray(self.size).reshape(-1))
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (W, H) with W, H >= 1; got {self.size!r}")
        self.size = (size[0], size[1])
        self.meta = dict(self.meta) if self.meta is not None else {}
        if self.labels is not None and self.labels.num_points != n:
            raise ValueError(f"labels has {self.labels.num_points} points for N = {n} tracked points")

    @property
    def num_frames(self) -> int:
        """T: tracked frames (rows)."""
        return self.points.shape[0]

    @property
    def num_points(self) -> int:
        """N: tracked points."""
        return self.points.shape[1]

    def labelled_at(self, row: int) -> np.ndarray:
        """bool (N,): True for the points labelled on row `row`'s frame (their track there is the label)."""
        if self.labels is None:
            return np.zeros(self.num_points, dtype=bool)
        frame = int(self.frame_indices[row])
        return np.array([bool(np.any(rows[:, 0] == frame)) for rows in self.labels.labels])

    def rows_for_frames(self, frames: np.ndarray | list[int]) -> np.ndarray:
        """The row to show on each video frame, or -1 for none.

        A frame shows the last row at or before it. Frames before the first tracked frame show
        nothing, and so do frames more than one stride past the last tracked frame (the stride
        being the last gap between tracked frames, 1 with a single row), so that tracking a
        part of a video does not freeze its last positions over the rest.

        Args:
            frames: int (F,) video frame indices.

        Returns:
            int64 (F,) row indices into this object's arrays, -1 where no row applies.
        """
        frames = np.asarray(frames, dtype=np.int64)
        if self.num_frames == 0:
            return np.full(frames.shape, -1, dtype=np.int64)
        rows = np.searchsorted(self.frame_indices, frames, side="right") - 1
        stride = int(self.frame_indices[-1] - self.frame_indices[-2]) if self.num_frames > 1 else 1
        rows[frames >= self.frame_indices[-1] + stride] = -1
        return rows

    # ------------------------------------------------------------------------------------------ writing

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write the .npz described in this module's docstring (atomically); returns the path."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            # A file object, not a name: np.savez would otherwise append ".npz" to the name.
            arrays = {
                "points": self.points,
                "visible": self.visible,
                "confidence": self.confidence,
                "queries": self.queries,
                "frame_indices": self.frame_indices,
                "fps": np.float64(self.fps),
                "size": np.asarray(self.size, dtype=np.int64),
                "meta": np.asarray(json.dumps(self.meta, default=_json_default)),
                **self._label_arrays(),
            }
            np.savez(f, **arrays)
        return path

    def _label_arrays(self) -> dict[str, np.ndarray]:
        if self.labels is None:
            return {}
        ids, rows = self.labels.rows()
        arrays = {"label_ids": np.asarray(ids, dtype=str), "labels": np.asarray(rows, dtype=np.float64)}
        if self.labels.hidden:
            marks = [(point_id, t) for p, point_id in enumerate(self.labels.ids) for t in self.labels.hidden_of(p)]
            arrays["hidden_ids"] = np.asarray([m[0] for m in marks], dtype=str).reshape(-1)
            arrays["hidden"] = np.asarray([m[1] for m in marks], dtype=np.int64).reshape(-1)
        return arrays

    def save_csv(self, path: str | os.PathLike) -> Path:
        """Write ``frame,point,x,y,visible,confidence``, one row per (tracked frame, point), frame-major.

        ``frame`` is the video frame index, ``visible`` 1 or 0, and x, y, confidence the shortest
        decimals that read back as the same float32. Written a block of frames at a time (about
        `WRITE_BLOCK_CELLS` rows), so memory stays flat whatever the number of points. Atomic; returns the path.
        """
        path = Path(path)
        n = self.num_points
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            f.write(CSV_HEADER + "\n")
            for rows in _row_blocks(self.num_frames, n):
                count = rows.stop - rows.start
                columns = (
                    np.repeat(self.frame_indices[rows], n).astype(str),
                    np.tile(np.arange(n), count).astype(str),
                    self.points[rows, :, 0].reshape(-1).astype(str),
                    self.points[rows, :, 1].reshape(-1).astype(str),
                    np.where(self.visible[rows].reshape(-1), "1", "0"),
                    self.confidence[rows].reshape(-1).astype(str),
                )
                f.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))
        return path

    def _json_fields(self) -> list[tuple[str, Any]]:
        """The JSON document's fields in order; the (T, N) arrays as `_Rows` (one frame's list at a time)."""
        return [
            ("format", FORMAT_NAME),
            ("version", FORMAT_VERSION),
            ("num_frames", self.num_frames),
            ("num_points", self.num_points),
            ("fps", self.fps),
            ("size", list(self.size)),
            ("frame_indices", self.frame_indices.tolist()),
            ("queries", _float32_lists(self.queries)),
            ("points", _Rows(self.points, _float32_lists)),
            ("visible", _Rows(self.visible, lambda row: row.tolist())),
            ("confidence", _Rows(self.confidence, _float32_lists)),
            ("meta", json.loads(json.dumps(self.meta, default=_json_default))),
            *([] if self.labels is None else [("labels", [
                {"id": point_id, "point": p, "t": int(t), "x": float(x), "y": float(y)}
                for p, (point_id, rows) in enumerate(zip(self.labels.ids, self.labels.labels, strict=True))
                for t, x, y in rows])]),
            *([] if self.labels is None or not self.labels.hidden else [("hidden", [
                {"id": point_id, "point": p, "t": int(t)}
                for p, point_id in enumerate(self.labels.ids) for t in self.labels.hidden_of(p)])]),
        ]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document `save_json` writes: the npz's arrays as nested lists, plus `meta`.

        Floats are the shortest decimals that read back as the same float32; NaN becomes null. (Python lists of
        T x N entries: `save_json` writes the same document a frame at a time instead.)
        """
        return {key: value.materialise() if isinstance(value, _Rows) else value for key, value in self._json_fields()}

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write `to_json_dict` as JSON (atomically), the (T, N) arrays a frame at a time; returns the path.

        The text is the one ``json.dump(tracks.to_json_dict(), f)`` writes, byte for byte.
        """
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            f.write("{")
            for k, (key, value) in enumerate(self._json_fields()):
                f.write(("" if k == 0 else ", ") + json.dumps(key) + ": ")
                if isinstance(value, _Rows):
                    f.write("[")
                    for r, row in enumerate(value):
                        f.write(("" if r == 0 else ", ") + json.dumps(row, allow_nan=False))
                    f.write("]")
                else:
                    f.write(json.dumps(value, allow_nan=False))
            f.write("}")
        return path

    def save_all(self, out_dir: str | os.PathLike, stem: str = TRACKS_STEM) -> dict[str, Path]:
        """Write ``<stem>.npz``, ``<stem>.csv`` and ``<stem>.json`` into `out_dir` (created if missing).

        Returns:
            {"npz": path, "csv": path, "json": path}.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return {
            "npz": self.save_npz(out / f"{stem}.npz"),
            "csv": self.save_csv(out / f"{stem}.csv"),
            "json": self.save_json(out / f"{stem}.json"),
        }

    # ------------------------------------------------------------------------------------------ reading

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> Tracks:
        """Read a tracks .npz (never unpickling anything).

        ``frame_indices`` may be absent (a file made by another tool): rows are then frames 0..T-1.

        Raises:
            InputError: the file is missing, is not an .npz archive, is damaged (a bad CRC, a broken member),
                lacks keys, has wrong shapes, or has a point more than `OFF_SCREEN_LIMIT` frame sizes outside
                the frame.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"tracks file {str(path)!r} does not exist")
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception:  # numpy raises OSError, ValueError or zipfile errors depending on the bytes
            raise InputError(f"{str(path)!r} is not a vidcorr tracks file: not an .npz archive") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise InputError(f"{str(path)!r} is not a vidcorr tracks file: not an .npz archive")
        with archive:
            missing = [k for k in REQUIRED_NPZ_KEYS if k not in archive.files]
            if missing:
                raise InputError(f"{str(path)!r} is not a vidcorr tracks file: missing keys {', '.join(missing)}")
            try:
                arrays = {k: archive[k] for k in archive.files}
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                # A damaged byte: the zip's CRC, a member's header or its compressed stream no longer match.
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise InputError(f"tracks file {str(path)!r} is damaged: its .npz archive cannot be read "
                                 f"({reason})") from None
            except ValueError as err:
                raise InputError(f"{str(path)!r} is not a vidcorr tracks file: {err}") from None
            try:
                t = arrays["points"].shape[0] if arrays["points"].ndim else 0
                meta = json.loads(str(arrays["meta"][()])) if "meta" in arrays else {}
                if not isinstance(meta, dict):
                    raise ValueError(f"meta must be a JSON object; got {type(meta).__name__}")
                tracks = cls(
                    points=arrays["points"],
                    visible=arrays["visible"],
                    confidence=arrays["confidence"],
                    queries=arrays["queries"],
                    frame_indices=arrays.get("frame_indices", np.arange(t)),
                    fps=float(arrays["fps"]),
                    size=tuple(arrays["size"].reshape(-1).tolist()),
                    meta=meta,
                    labels=_read_labels(arrays),
                )
            except (ValueError, TypeError) as err:
                raise InputError(f"{str(path)!r} is not a vidcorr tracks file: {err}") from None
        _check_on_screen(tracks, path)
        return tracks


OFF_SCREEN_LIMIT = 1.0
"""A tracks file's finite points lie at most this many frame widths (heights) outside the frame: vidcorr
tracks points inside it; a point far beyond (a hand edit, a corrupted value) is refused when the file is read."""


def _check_on_screen(tracks: Tracks, path: Path) -> None:
    width, height = tracks.size
    xy = tracks.points.astype(np.float64)
    limit = np.array([width, height], dtype=np.float64) * OFF_SCREEN_LIMIT
    far = np.isfinite(xy).all(axis=-1) & ((xy < -limit) | (xy > limit + [width, height])).any(axis=-1)
    if far.any():
        row, point = (int(v) for v in np.argwhere(far)[0])
        x, y = xy[row, point]
        raise InputError(f"tracks file {str(path)!r} has point {point} at ({x:g}, {y:g}) on frame "
                         f"{int(tracks.frame_indices[row])}, far outside the {width}x{height} video")


def _read_labels(arrays: dict[str, np.ndarray]) -> PointLabels | None:
    if "labels" not in arrays and "label_ids" not in arrays:
        return None
    if "labels" not in arrays or "label_ids" not in arrays:
        raise ValueError("labels and label_ids come together")
    if ("hidden" in arrays) != ("hidden_ids" in arrays):
        raise ValueError("hidden and hidden_ids come together")
    marks = [] if "hidden" not in arrays else [
        (str(i), float(t)) for i, t in zip(arrays["hidden_ids"].reshape(-1), arrays["hidden"].reshape(-1), strict=True)]
    try:
        return PointLabels.from_rows([str(i) for i in arrays["label_ids"].reshape(-1)], arrays["labels"], marks)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def hide_marked(tracks: Tracks) -> Tracks:
    """Mark each point not visible on the tracked frames where its labels say so (`PointLabels.hidden`): the
    person's word holds over the tracker's; positions and confidences stay as tracked. Returns `tracks`."""
    if tracks.labels is None:
        return tracks
    for p in range(tracks.num_points):
        tracks.visible[np.isin(tracks.frame_indices, tracks.labels.hidden_of(p)), p] = False
    return tracks


WRITE_BLOCK_CELLS = 1 << 18
"""About this many (frame, point) cells are turned into text at a time when tracks are written."""


def _row_blocks(num_frames: int, num_points: int) -> list[slice]:
    """Consecutive blocks of frames (rows) of about `WRITE_BLOCK_CELLS` cells each, at least one frame."""
    step = max(1, WRITE_BLOCK_CELLS // max(num_points, 1))
    return [slice(start, min(start + step, num_frames)) for start in range(0, num_frames, step)]


@dataclass(frozen=True)
class _Rows:
    """A (T, ...) array's frames as JSON-able lists, one at a time (`convert` one row)."""

    array: np.ndarray
    convert: Callable[[np.ndarray], Any]

    def __iter__(self) -> Iterator[Any]:
        return (self.convert(row) for row in self.array)

    def materialise(self) -> list[Any]:
        return list(self)


def _float32_lists(a: np.ndarray) -> list[Any]:
    """float32 array -> nested lists of Python floats printing as the shortest float32 decimals."""
    shortest = np.asarray(a, dtype=np.float32).astype(str).astype(np.float64)
    out = shortest.astype(object)
    out[~np.isfinite(shortest)] = None
    return out.tolist()


def _json_default(obj: Any) -> Any:
    """Make provenance JSON-able: dataclasses (a Config), numpy values, paths, enums; else its str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)
