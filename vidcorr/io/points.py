"""Points to track, and the files that hold them: one home for every points format.

A point has one or more labels ``(t, x, y)``: a frame index and the point's position there, in the video's
own pixels (pixel centres at +0.5). Rows of a points file that share an ``id`` are labels of one point;
without ids, one row is one point. `PointLabels` holds them.

Files (one parser for all of them, shared by `read_points_file`, `read_video_points_file` and
`has_video_column`):

- CSV. A first row with no number in it is a header: it names the columns ``id``, ``t``, ``x``, ``y``,
  optionally ``visible`` and, in a batch's file, ``video``, in any order (names are matched ignoring case; other
  columns are ignored); ``x`` and ``y`` are required, a missing ``t`` means frame 0. Without a header a row is
  ``t,x,y`` or ``x,y``, or in a batch's file ``video,t,x,y`` / ``video,x,y`` (a first value that is not a number
  is the video). Ids need a header.
- JSON: the picker's ``{"format": "vidcorr-points", "version": 1, "points": [{"id", "t", "x", "y"}, ...]}``
  (`POINTS_FORMAT`, `POINTS_VERSION`), or a list of such objects (``id`` and ``t`` optional, ``visible``
  optional, ``video`` in a batch's file), or of ``[t, x, y]`` / ``[x, y]`` lists; a batch's file may also map
  each video to its rows.

A row whose ``visible`` is false (JSON ``false``; CSV ``0`` or ``false``) is no label: it marks its point "not
visible here" on its frame ``t`` (``vidcorr review`` writes them as ``{"id", "t", "visible": false}``); its x, y,
if any, are ignored, and it needs an id that has labels (`PointLabels.hidden`). `write_points_file` writes the
JSON format. A file gives every row an id or none. The checks against a video (frames, size) are `check_labels`,
`check_queries` and `check_points`: pure numpy, with one-line `InputError`s that name the point.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from vidcorr.errors import InputError
from vidcorr.io import masks
from vidcorr.io.atomic import write_json
from vidcorr.validate import check_frame_index

POINTS_FORMAT = "vidcorr-points"
"""The ``format`` of the picker's points.json (``vidcorr pick``)."""
POINTS_VERSION = 1
"""The version of `POINTS_FORMAT` this vidcorr writes and reads."""
COLUMNS = ("id", "t", "x", "y", "visible", "video")
"""The columns a points file's header may name (others are ignored)."""

_Value = TypeVar("_Value")


@dataclass(frozen=True)
class PointLabels:
    """Points, each with one or more labels, and the frames where a point is marked "not visible here".

    Attributes:
        ids: one id per point, in point order (the file's ids; "0", "1", ... where it had none).
        labels: per point, a (K_i, 3) float64 array of rows ``t, x, y``, sorted by t, one row per frame.
        hidden: per point, int64 (H_i,) the frames where the point is marked not visible (ascending, none of them
            a frame it is labelled on); () where no point has such a mark. A mark is no label: the fit never
            sees it; tracking marks the point not visible on that frame.
    """

    ids: tuple[str, ...]
    labels: tuple[np.ndarray, ...]
    hidden: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.labels):
            raise InputError(f"{len(self.ids)} point ids for {len(self.labels)} points")
        if len(set(self.ids)) != len(self.ids):
            raise InputError("point ids must be distinct")
        for point_id, rows in zip(self.ids, self.labels, strict=True):
            if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) == 0:
                raise InputError(f"point {point_id}: labels must be (K, 3) rows t, x, y with K >= 1, "
                                 f"got shape {rows.shape}")
            frames = rows[:, 0]
            if np.any(np.diff(frames) <= 0):
                repeated = frames[:-1][np.diff(frames) == 0]
                if len(repeated):
                    raise InputError(f"point {point_id} has two labels on frame {int(repeated[0])}")
                raise InputError(f"point {point_id}: labels must be sorted by frame")
        if not self.hidden:
            object.__setattr__(self, "hidden", ())
            return
        if len(self.hidden) != len(self.ids):
            raise InputError(f"{len(self.hidden)} lists of not-visible frames for {len(self.ids)} points")
        hidden = []
        for point_id, rows, marks in zip(self.ids, self.labels, self.hidden, strict=True):
            frames = np.asarray(marks, dtype=np.float64).reshape(-1)
            if np.any(frames != np.round(frames)) or np.any(np.diff(frames) <= 0):
                raise InputError(f"point {point_id}: its not-visible frames must be whole, distinct and ascending")
            both = np.intersect1d(frames, rows[:, 0])
            if len(both):
                raise InputError(f"point {point_id} is labelled on frame {int(both[0])} and marked not visible there")
            hidden.append(frames.astype(np.int64))
        object.__setattr__(self, "hidden", tuple(hidden))

    @classmethod
    def from_queries(cls, queries: np.ndarray | Sequence[Sequence[float]]) -> PointLabels:
        """One label per point from (N, 3) rows ``t, x, y``; ids "0" .. "N-1"."""
        rows = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
        return cls(tuple(str(i) for i in range(len(rows))), tuple(row[None, :].copy() for row in rows))

    @classmethod
    def from_rows(cls, ids: Sequence[str], rows: np.ndarray | Sequence[Sequence[float]],
                  hidden: Sequence[tuple[str, float]] = ()) -> PointLabels:
        """Group (M, 3) label rows by their ids (points in order of first appearance; labels sorted by t), and the
        "not visible" marks `hidden` (id, frame) by theirs.

        Raises:
            InputError: a point with two labels on one frame, a mark on a labelled frame or twice on one, a mark
                for a point without a label.
        """
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        if len(ids) != len(table):
            raise InputError(f"{len(ids)} ids for {len(table)} label rows")
        order: dict[str, list[int]] = {}
        for index, point_id in enumerate(ids):
            order.setdefault(str(point_id), []).append(index)
        # Two labels on one frame are refused by the constructor, once sorted.
        groups = (table[indices] for indices in order.values())
        labels = [group[np.argsort(group[:, 0], kind="stable")] for group in groups]
        marks: dict[str, list[float]] = {point_id: [] for point_id in order}
        for point_id, t in hidden:
            if str(point_id) not in marks:
                raise InputError(f"point {point_id} is marked not visible on frame {t:g} but has no label")
            if float(t) in marks[str(point_id)]:
                raise InputError(f"point {point_id} is marked not visible on frame {t:g} twice")
            marks[str(point_id)].append(float(t))
        hidden_frames = tuple(np.sort(np.array(m, dtype=np.float64)) for m in marks.values()) if hidden else ()
        return cls(tuple(order), tuple(labels), hidden_frames)

    @property
    def num_points(self) -> int:
        return len(self.ids)

    @property
    def counts(self) -> np.ndarray:
        """(N,) int: labels per point."""
        return np.array([len(rows) for rows in self.labels], dtype=np.int64)

    @property
    def queries(self) -> np.ndarray:
        """(N, 3) float64: each point's first (earliest) label, as the one-label API takes it."""
        if not self.labels:
            return np.zeros((0, 3))
        return np.stack([rows[0] for rows in self.labels])

    def hidden_of(self, point: int) -> np.ndarray:
        """int64 (H,): the frames where point `point` (its index) is marked not visible."""
        return self.hidden[point] if self.hidden else np.zeros(0, dtype=np.int64)

    def rows(self) -> tuple[list[str], np.ndarray]:
        """Every label as (ids (M,), rows (M, 3) t, x, y), point by point."""
        ids = [point_id for point_id, rows in zip(self.ids, self.labels, strict=True) for _ in range(len(rows))]
        table = np.concatenate(self.labels) if self.labels else np.zeros((0, 3))
        return ids, table


@dataclass(frozen=True)
class ReusePlan:
    """Which points of new labels keep the embeddings fitted on earlier labels (`plan_reuse`).

    Attributes:
        ids: the new points' ids, in point order.
        source: int64 (N,) for each new point, the index of the earlier point whose embedding it keeps, or -1
            where it is fitted again.
    """

    ids: tuple[str, ...]
    source: np.ndarray

    @property
    def refit(self) -> np.ndarray:
        """int64 (R,): the new points fitted again, in point order."""
        return np.flatnonzero(self.source < 0)

    @property
    def kept(self) -> np.ndarray:
        """int64 (N - R,): the new points that keep an earlier embedding, in point order."""
        return np.flatnonzero(self.source >= 0)

    @property
    def refit_ids(self) -> list[str]:
        return [self.ids[i] for i in self.refit]


def plan_reuse(earlier: PointLabels, labels: PointLabels) -> ReusePlan:
    """Match new labels to the earlier ones an output was fitted on: a point keeps its embedding exactly when an
    earlier point has its id and the same labels (the same frames and positions, to the bit); a point with a label
    added, moved or removed, or a new id, is fitted again. "Not visible" marks are no labels: they change nothing
    here. Earlier points that are gone are dropped."""
    where = {point_id: k for k, point_id in enumerate(earlier.ids)}
    source = np.full(labels.num_points, -1, dtype=np.int64)
    for n, (point_id, rows) in enumerate(zip(labels.ids, labels.labels, strict=True)):
        k = where.get(point_id)
        if k is not None and earlier.labels[k].shape == rows.shape and np.array_equal(earlier.labels[k], rows):
            source[n] = k
    return ReusePlan(labels.ids, source)


# ------------------------------------------------------------------------------- checks against a video


def _as_table(values: Any, columns: int, noun: str, layout: str) -> np.ndarray:
    try:
        table = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{noun} must be a non-empty (N, {columns}) array of {layout}, got {type(values).__name__}"
                         ) from None
    if table.ndim != 2 or table.shape[1] != columns or table.shape[0] == 0:
        raise InputError(f"{noun} must be a non-empty (N, {columns}) array of {layout}, got shape {table.shape}")
    if not np.all(np.isfinite(table)):
        raise InputError(f"{noun} must be finite numbers")
    return table


def _check_frame(who: str, t: float, num_frames: int) -> None:
    # `who` ends with its verb: "query 0 is on", "point nose has a label on".
    if t != math.floor(t):
        raise InputError(f"{who} frame {t:g}: a frame index must be a whole number")
    if not 0 <= t < num_frames:
        raise InputError(f"{who} frame {t:g}, outside the video (frames 0..{num_frames - 1})")


def _check_inside(who: str, x: float, y: float, size_wh: tuple[int, int], place: str, at: str = "") -> None:
    width, height = size_wh
    if not (0 <= x <= width and 0 <= y <= height):
        raise InputError(f"{who} ({x:g}, {y:g}){at} is outside the {place} ({width}x{height} pixels)")


def check_points(points_xy: np.ndarray | Sequence, size_wh: tuple[int, int], name: str = "image") -> np.ndarray:
    """Validate points (N, 2) x, y inside a W x H image (0 <= x <= W, 0 <= y <= H); float64 copy.

    `name` is the image as the message should call it ("source image a.png")."""
    points = _as_table(points_xy, 2, "points", "x, y")
    for i, (x, y) in enumerate(points):
        _check_inside(f"point {i}", x, y, size_wh, name)
    return points


def check_queries(queries: np.ndarray | Sequence, num_frames: int, size_wh: tuple[int, int]) -> np.ndarray:
    """Validate (N, 3) t, x, y queries against a video of `num_frames` frames of W x H; float64 copy.

    t must be a whole frame index in 0..num_frames-1 and (x, y) inside the frame (0 <= x <= W, 0 <= y <= H).
    """
    table = _as_table(queries, 3, "queries", "t, x, y")
    for i, (t, x, y) in enumerate(table):
        _check_frame(f"query {i} is on", t, num_frames)
        _check_inside(f"query {i}", x, y, size_wh, "frame")
    return table


def check_labels(labels: PointLabels | np.ndarray | Sequence, num_frames: int,
                 size_wh: tuple[int, int]) -> PointLabels:
    """Validate every label against a video of `num_frames` frames of W x H, as `check_queries` does a query;
    returns `labels` (an (N, 3) array of t, x, y queries: checked by `check_queries`, one label per point, ids
    "0".."N-1"). Messages name the point by its id, and the label by its frame where the point has several.
    """
    if not isinstance(labels, PointLabels):
        return PointLabels.from_queries(check_queries(labels, num_frames, size_wh))
    if labels.num_points == 0:
        raise InputError("give at least one point to track")
    for point_id, rows in zip(labels.ids, labels.labels, strict=True):
        if not np.all(np.isfinite(rows)):
            raise InputError(f"point {point_id} has a value that is not a finite number")
        several = len(rows) > 1
        for t, x, y in rows:
            _check_frame(f"point {point_id} {'has a label on' if several else 'is on'}", t, num_frames)
            _check_inside(f"point {point_id}", x, y, size_wh, "frame", at=f" on frame {t:g}" if several else "")
    for point, point_id in enumerate(labels.ids):
        for t in labels.hidden_of(point):
            _check_frame(f"point {point_id} is marked not visible on", float(t), num_frames)
    return labels


def image_points(labels: PointLabels) -> np.ndarray:
    """(N, 2) x, y of points on an image, from labels with one per point (their frame is ignored: an image is
    one frame). Check them with `check_points`.

    Raises:
        InputError: a point has several labels.
    """
    several = np.flatnonzero(labels.counts > 1)
    if len(several):
        point = int(several[0])
        raise InputError(f"an image takes one label per point: point {labels.ids[point]} has "
                         f"{len(labels.labels[point])} labels")
    return labels.queries[:, 1:].copy()


# ----------------------------------------------------------------------------------------- command line


def parse_points(text: str, columns: int = 2, option: str = "--points") -> np.ndarray:
    """'x,y;x,y' (or 't,x,y;t,x,y' with columns=3) -> (N, columns) float64; `option` names the text in messages.

    Raises:
        InputError: an empty list, an entry with another number of values, values that are not finite numbers.
    """
    layout = "'x,y;x,y'" if columns == 2 else "'t,x,y;t,x,y'"
    rows = [part.strip() for part in text.split(";") if part.strip()]
    if not rows:
        raise InputError(f"{option} is empty; expected {layout}")
    values = []
    for row in rows:
        fields = [f.strip() for f in row.split(",")]
        if len(fields) != columns:
            raise InputError(f"malformed {option} entry {row!r}: expected {layout}")
        try:
            values.append([float(f) for f in fields])
        except ValueError:
            raise InputError(f"malformed {option} entry {row!r}: not numbers") from None
    points = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise InputError(f"{option} has a value that is not a finite number")
    return points


def check_point_sources(points: str | None, points_file: str | os.PathLike | None, grid: int | None,
                        mask: str | os.PathLike | None = None, mask_id: int | None = None) -> None:
    """The checks of a command's point options that need no video: exactly one source, the options each needs,
    a grid of at least 1. A batch makes them once, before any work (then per video, `given_labels`).

    Raises:
        InputError: no source or two, an option without the one it needs, ``--grid`` below 1.
    """
    if mask_id is not None and mask is None:
        raise InputError("--mask-id needs --mask FILE")
    if mask is not None and grid is None:
        raise InputError("--mask needs --grid N: the grid's points inside the mask are the queries")
    if points_file is not None and (points is not None or grid is not None):
        raise InputError("give --points-file FILE alone, not with --points or --grid")
    if points_file is None and points is None and grid is None:
        raise InputError("give the points with --points 'x,y;x,y', --grid N [--mask FILE] or --points-file FILE")
    if grid is not None and grid < 1:
        raise InputError(f"--grid must be at least 1, got {grid}")


def given_labels(points: str | None, points_file: str | os.PathLike | None, grid: int | None, ref_frame: int,
                 size_wh: tuple[int, int], mask: str | os.PathLike | None = None, mask_id: int | None = None,
                 num_frames: int | None = None) -> PointLabels:
    """The points a command was given, not yet checked against its video (`video_labels` checks them).

    Exactly one source: ``--points-file`` (its labels), or ``--points`` and/or ``--grid N`` (inside ``--mask``,
    one object with ``--mask-id``), one label each on ``--ref-frame`` (the typed points first, then the grid's;
    ids "0", "1", ...). `num_frames`, where known, bounds ``--ref-frame``.

    Raises:
        InputError: no source or two, options that need another, a bad file, list, grid or mask.
    """
    check_point_sources(points, points_file, grid, mask, mask_id)
    check_frame_index(ref_frame, "--ref-frame", num_frames)
    if points_file is not None:
        return read_points_file(points_file)
    parts = [parse_points(points)] if points is not None else []
    if grid is not None:
        parts.append(masks.grid_points(grid, size_wh) if mask is None
                     else masks.grid_in_mask(grid, masks.read_mask(mask, size_wh, mask_id)))
    xy = np.concatenate(parts)
    return PointLabels.from_queries(np.column_stack([np.full(len(xy), float(ref_frame)), xy]))


def video_labels(points: str | None, points_file: str | os.PathLike | None, grid: int | None, ref_frame: int,
                 num_frames: int, size_wh: tuple[int, int], mask: str | os.PathLike | None = None,
                 mask_id: int | None = None) -> PointLabels:
    """`given_labels`, checked against a video of `num_frames` frames of W x H (`check_labels`)."""
    return check_labels(given_labels(points, points_file, grid, ref_frame, size_wh, mask, mask_id, num_frames),
                        num_frames, size_wh)


# ------------------------------------------------------------------------------------------------ files


@dataclass(frozen=True)
class _Row:
    """A row of a points file as written: where it is (for messages), its t, x, y (or x, y) values, its id and
    video (None: not given); `guessed`: the video is the first value of a row without a header; `visible` False:
    a "not visible here" mark (its values are its t alone)."""

    where: str
    values: tuple[Any, ...]
    point_id: Any = None
    video: Any = None
    guessed: bool = False
    visible: bool = True


def _given(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path: Path) -> list[_Row]:
    """Every row of a points file (CSV, or JSON by its suffix), before any value is checked."""
    if path.is_dir():
        raise InputError(f"points file {str(path)!r} is a folder")
    if not path.is_file():
        raise InputError(f"points file {str(path)!r} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read points file {str(path)!r}: {exc}") from None
    where = f"points file {path.name}"
    return _json_rows(text, path, where) if path.suffix.lower() == ".json" else _csv_rows(text, where)


def _csv_rows(text: str, where: str) -> list[_Row]:
    lines = [(n, [cell.strip() for cell in row]) for n, row in enumerate(csv.reader(text.splitlines()), 1)
             if any(cell.strip() for cell in row)]
    if not lines:
        return []
    if any(_is_number(cell) for cell in lines[0][1]):  # no header
        return [_Row(f"line {n}", tuple(row)) if _is_number(row[0])
                else _Row(f"line {n}", tuple(row[1:]), video=row[0], guessed=True) for n, row in lines]
    header = [cell.lower() for cell in lines[0][1]]
    twice = next((name for name in COLUMNS if header.count(name) > 1), None)
    if twice is not None:
        raise InputError(f"{where} has the column {twice!r} twice")
    missing = [name for name in ("x", "y") if name not in header]
    if missing:
        raise InputError(f"{where} has a header without the column {missing[0]!r}")
    at = {name: header.index(name) for name in COLUMNS if name in header}
    rows = []
    for n, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(f"{where} line {n}: {len(row)} values for {len(header)} columns")
        visible = _visible(row[at["visible"]].lower() if "visible" in at else True, f"{where} line {n}")
        names = ("t", "x", "y") if visible else ("t",)
        rows.append(_Row(f"line {n}", tuple(row[at[name]] for name in names if name in at),
                         _given(row[at["id"]]) if "id" in at else None, row[at["video"]] if "video" in at else None,
                         visible=visible))
    return rows


def _visible(value: Any, where: str) -> bool:
    """A row's ``visible``: JSON true/false, CSV 1/0/true/false (empty: true)."""
    if value in (True, "1", "true", ""):
        return True
    if value in (False, "0", "false"):
        return False
    raise InputError(f"{where}: visible {value!r} must be true or false")


def _json_rows(text: str, path: Path, where: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"points file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and data.get("format") == POINTS_FORMAT and data.get("version") != POINTS_VERSION:
        raise InputError(f"points file {str(path)!r} is {POINTS_FORMAT} version {data.get('version')!r}; "
                         f"this vidcorr reads version {POINTS_VERSION}")
    if isinstance(data, dict) and "points" in data:
        data = data["points"]
    if isinstance(data, dict):  # a batch's: video -> its rows
        rows = []
        for video, items in data.items():
            if not isinstance(items, list):
                raise InputError(f"{where} entry {video!r}: expected a list of [t, x, y] rows")
            rows += [_json_row(f"entry {video!r} row {k}", item, video, where) for k, item in enumerate(items)]
        return rows
    if not isinstance(data, list):
        raise InputError(f"{where} must hold a list of points")
    return [_json_row(f"entry {k}", item, None, where) for k, item in enumerate(data)]


def _json_row(where: str, item: Any, video: Any, file: str) -> _Row:
    if isinstance(item, dict):
        visible = _visible(item.get("visible", True), f"{file} {where}")
        if not visible and "t" not in item:
            raise InputError(f"{file} {where}: a row marked not visible needs its frame t")
        keys = ("t",) if not visible else ("t", "x", "y") if "t" in item else ("x", "y")
        return _Row(where, tuple(item.get(key) for key in keys), _given(item.get("id")), item.get("video", video),
                    visible=visible)
    return _Row(where, tuple(item) if isinstance(item, list) else (item,), video=video)


def _table(rows: list[_Row], where: str) -> np.ndarray:
    """(M, 3) float64 t, x, y of the rows (t = 0 where a row has only x, y)."""
    table = np.zeros((len(rows), 3))
    for k, row in enumerate(rows):
        values = row.values if len(row.values) != 2 else (0, *row.values)
        if len(values) != 3:
            raise InputError(f"{where} {row.where}: expected t, x, y (or x, y), got {len(row.values)} values")
        try:
            table[k] = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError(f"{where} {row.where}: {list(row.values)!r} are not numbers") from None
        if not np.all(np.isfinite(table[k])):
            raise InputError(f"{where} {row.where}: {list(row.values)!r} are not finite numbers")
    return table


def _ids(rows: list[_Row], where: str) -> list[str] | None:
    """Every row's id as text, or None when no row has one."""
    given = [row.point_id is not None for row in rows]
    if not any(given):
        return None
    if not all(given):
        bare = rows[given.index(False)]
        raise InputError(f"{where} {bare.where} has no id, but other rows have one: give every row an id, or none")
    ids = []
    for row in rows:
        value = row.point_id
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InputError(f"{where} {row.where}: id {value!r} must be a text or a whole number")
        ids.append(str(value).strip())
    return ids


def _labels(rows: list[_Row], where: str, group: str | None = None) -> PointLabels:
    """The points of some rows of a file: labels grouped by id, "not visible" marks attributed by id. `where`
    names the file in messages about one row, `group` (default `where`) in those about a point."""
    ids = _ids(rows, where)
    marks = [k for k, row in enumerate(rows) if not row.visible]
    if marks and ids is None:
        raise InputError(f"{where} {rows[marks[0]].where}: a row marked not visible needs the id of its point")
    shown = [k for k, row in enumerate(rows) if row.visible]
    table = _table([rows[k] for k in shown], where)
    if ids is None:
        return PointLabels.from_queries(table)
    hidden = [(ids[k], float(_table([_Row(rows[k].where, (rows[k].values[0], 0, 0))], where)[0, 0]))
              for k in marks]
    try:
        return PointLabels.from_rows([ids[k] for k in shown], table, hidden)
    except InputError as exc:
        raise InputError(f"{group or where}: {exc}") from None


def read_points_file(path: str | os.PathLike) -> PointLabels:
    """The points of a points file (CSV or JSON; see the module docstring), e.g. the picker's points.json.

    Rows that share an id are one point's labels (points in the order of their first row, labels sorted by
    frame); without ids each row is a point, with ids "0", "1", ... Check them against a video with
    `check_labels`.

    Raises:
        InputError: a missing or unreadable file, a bad header or row (named by its line or entry), ids on some
            rows only, a point with two labels on one frame, a file that names videos (a batch's: see
            `read_video_points_file`), or no points at all.
    """
    path = Path(path)
    where = f"points file {path.name}"
    rows = _read_rows(path)
    if not rows:
        raise InputError(f"{where} has no points")
    named = next((row for row in rows if row.video is not None), None)
    if named is not None and named.guessed:
        raise InputError(f"{where} {named.where}: {named.video!r} is not a number (without a header row a row is "
                         "t,x,y or x,y; a header such as id,t,x,y names the columns)")
    if named is not None:
        raise InputError(f"{where} names a video on each row: it is for a batch of videos (give it with several)")
    return _labels(rows, where)


def read_video_points_file(path: str | os.PathLike) -> dict[str, PointLabels]:
    """A batch's points: video (as written in the file) -> its points, videos in the order of their first row.

    The file is a points file (see the module docstring) that names a video on every row: a ``video`` column
    or key, a first value that is not a number in a CSV without a header, or a JSON object mapping each video
    to its rows. Ids are per video: rows of one video that share an id are one point's labels.

    Raises:
        InputError: as `read_points_file`, and a row without a video.
    """
    path = Path(path)
    where = f"points file {path.name}"
    rows = _read_rows(path)
    if not rows:
        raise InputError(f"{where} has no points")
    bare = next((row for row in rows if not isinstance(row.video, str) or not row.video.strip()), None)
    if bare is not None:
        raise InputError(f"{where} {bare.where}: no video")
    _ids(rows, where)  # every row an id or none, over the whole file
    by_video: dict[str, list[_Row]] = {}
    for row in rows:
        by_video.setdefault(row.video.strip(), []).append(row)
    return {video: _labels(rows_of, where, f"{where}, video {video!r}") for video, rows_of in by_video.items()}


def points_rows(labels: PointLabels, video: str | None = None) -> list[dict[str, Any]]:
    """The JSON rows of `labels`, point by point, each point's labels and "not visible" marks by frame:
    ``{"id", "t", "x", "y"}`` and ``{"id", "t", "visible": false}``, with ``"video"`` first where given."""
    rows: list[dict[str, Any]] = []
    named = {} if video is None else {"video": video}
    for point, (point_id, table) in enumerate(zip(labels.ids, labels.labels, strict=True)):
        entries = [(float(t), {**named, "id": point_id, "t": int(t), "x": float(x), "y": float(y)})
                   for t, x, y in table]
        entries += [(float(t), {**named, "id": point_id, "t": int(t), "visible": False})
                    for t in labels.hidden_of(point)]
        rows += [entry for _, entry in sorted(entries, key=lambda e: e[0])]
    return rows


def write_points_file(path: str | os.PathLike, labels: PointLabels | Mapping[str, PointLabels], *,
                      video: str | None = None, size_wh: tuple[int, int] | None = None,
                      num_frames: int | None = None) -> Path:
    """Write the picker's JSON (`POINTS_FORMAT`; see the module docstring) atomically; returns the path.

    `labels` is one video's points, or a batch's: video (as `read_video_points_file` matches it) -> its points,
    written with a ``video`` on every row. `video`, `size_wh` and `num_frames` describe one video (as ``vidcorr
    pick`` writes them); ids are written as text.
    """
    document: dict[str, Any] = {"format": POINTS_FORMAT, "version": POINTS_VERSION}
    if video is not None:
        document["video"] = video
    if size_wh is not None:
        document["size"] = [int(size_wh[0]), int(size_wh[1])]
    if num_frames is not None:
        document["num_frames"] = int(num_frames)
    if isinstance(labels, PointLabels):
        document["points"] = points_rows(labels)
    else:
        document["points"] = [row for name, points in labels.items() for row in points_rows(points, name)]
    return write_json(path, document, indent=1, allow_nan=False)


def has_video_column(path: str | os.PathLike) -> bool:
    """Whether a points file names a video on its rows (a batch's, for `read_video_points_file`), rather than
    holding points for every video. False for a file that cannot be read: its reader says why."""
    try:
        rows = _read_rows(Path(path))
    except InputError:
        return False
    return any(row.video is not None for row in rows)


def points_for_videos(points: Mapping[str, _Value], videos: Sequence[Path],
                      base: str | os.PathLike | None = None) -> dict[Path, _Value]:
    """Match a batch's points file to its videos: each video of the batch -> its points (the mapping's values,
    e.g. the `PointLabels` of `read_video_points_file`), in batch order.

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
    matched: dict[Path, _Value] = {}
    for entry, value in points.items():
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
        matched[video] = value
    missing = [v for v in videos if v not in matched]
    if missing:
        raise InputError(f"the points file has no points for video {str(missing[0])!r}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return {video: matched[video] for video in videos}
