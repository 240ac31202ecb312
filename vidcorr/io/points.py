"""Points to track, and the files that hold them: one home for every points format.

A point has one or more labels ``(t, x, y)``: a frame index and the point's position there, in the video's
own pixels (pixel centres at +0.5). Rows of a points file that share an ``id`` are labels of one point;
without ids, one row is one point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidcorr.errors import InputError


@dataclass(frozen=True)
class PointLabels:
    """Points, each with one or more labels.

    Attributes:
        ids: one id per point, in point order (the file's ids; "0", "1", ... where it had none).
        labels: per point, a (K_i, 3) float64 array of rows ``t, x, y``, sorted by t, one row per frame.
    """

    ids: tuple[str, ...]
    labels: tuple[np.ndarray, ...]

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

    @classmethod
    def from_queries(cls, queries: np.ndarray | Sequence[Sequence[float]]) -> PointLabels:
        """One label per point from (N, 3) rows ``t, x, y``; ids "0" .. "N-1"."""
        rows = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
        return cls(tuple(str(i) for i in range(len(rows))), tuple(row[None, :].copy() for row in rows))

    @classmethod
    def from_rows(cls, ids: Sequence[str], rows: np.ndarray | Sequence[Sequence[float]]) -> PointLabels:
        """Group (M, 3) label rows by their ids (points in order of first appearance; labels sorted by t)."""
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        if len(ids) != len(table):
            raise InputError(f"{len(ids)} ids for {len(table)} label rows")
        order: dict[str, list[int]] = {}
        for index, point_id in enumerate(ids):
            order.setdefault(str(point_id), []).append(index)
        labels = []
        for point_id, indices in order.items():
            group = table[indices]
            frames = group[:, 0]
            _, counts = np.unique(frames, return_counts=True)
            if np.any(counts > 1):
                raise InputError(f"point {point_id} has two labels on frame {int(np.unique(frames)[counts > 1][0])}")
            labels.append(group[np.argsort(frames, kind="stable")])
        return cls(tuple(order), tuple(labels))

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

    def rows(self) -> tuple[list[str], np.ndarray]:
        """Every label as (ids (M,), rows (M, 3) t, x, y), point by point."""
        ids = [point_id for point_id, rows in zip(self.ids, self.labels, strict=True) for _ in range(len(rows))]
        table = np.concatenate(self.labels) if self.labels else np.zeros((0, 3))
        return ids, table
