"""Which frames of a track output to check first: a doubt score per tracked frame (numpy only).

Per tracked frame (a row of `Tracks`) and point, two signs that the track may be wrong there:

- **low confidence**: ``1 - confidence`` (0 where the point is claimed as strongly as at its labels);
- **jump**: how far the point lies from where its neighbours in time put it: the distance, in pixels, between
  its position on the row and the midpoint of its positions on the rows before and after. A point moving
  steadily has no jump, a one-frame glitch or a switch to another object has one. The first and the last row
  have one neighbour: their jump is the distance to it. A one-row track has no jump.

A point labelled on a frame, or marked "not visible here" there (`PointLabels.hidden`), counts for nothing on
that frame: its place there is known. The frame's score combines the worst point of each kind (`SCORE_RULE`)::

    score = (1 - lowest confidence) + min(1, largest jump / (JUMP_SCALE * frame diagonal))

so each part lies in [0, 1] and the score in [0, 2]: a point with confidence 0, or one jumping by a twentieth
of the frame's diagonal, scores 1. Frames are ranked by score, highest first; equal scores (two saturated jumps)
by the larger jump, then in frame order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidcorr.io.points import PointLabels
from vidcorr.io.tracks import Tracks

JUMP_SCALE = 0.05
"""A jump of this fraction of the frame's diagonal scores as much as a confidence of 0."""
SCORE_RULE = ("score = (1 - lowest confidence of a point) + min(1, largest jump / (0.05 x frame diagonal)); "
              "jump = distance from the midpoint of the point's positions on the rows before and after; points "
              "labelled or marked not visible on a frame do not count there")


@dataclass(frozen=True)
class FrameRanking:
    """The doubt score of every tracked frame (see the module docstring for the rule).

    Attributes:
        frames: int64 (T,) the video frame of each row (`Tracks.frame_indices`).
        score: float64 (T,) the combined score, in [0, 2].
        low_confidence: float64 (T,) 1 - the lowest confidence of a counted point (0 where none counts).
        jump_px: float64 (T,) the largest jump of a counted point, in pixels.
        confidence_point: int64 (T,) the point with the lowest confidence, -1 where none counts.
        jump_point: int64 (T,) the point with the largest jump, -1 where none counts.
        speed_px: float64 (T, N) each point's speed: pixels per frame from the previous row (the next at row 0).
        order: int64 (T,) the rows sorted by score, highest first (ties: the larger jump first, then frame order).
    """

    frames: np.ndarray
    score: np.ndarray
    low_confidence: np.ndarray
    jump_px: np.ndarray
    confidence_point: np.ndarray
    jump_point: np.ndarray
    speed_px: np.ndarray
    order: np.ndarray

    def frames_to_check(self, count: int | None = None) -> list[int]:
        """The video frames to check first, most doubtful first: the first `count` (None: all)."""
        rows = self.order if count is None else self.order[:max(0, count)]
        return [int(self.frames[r]) for r in rows]


def jumps(points: np.ndarray) -> np.ndarray:
    """float64 (T, N): each point's distance from the midpoint of its neighbours' positions (module docstring).

    points: (T, N, 2) x, y. Non-finite positions give no jump (0), nor does a neighbour that is not finite.
    """
    xy = np.asarray(points, dtype=np.float64)
    rows = len(xy)
    if rows < 2:
        return np.zeros(xy.shape[:2])
    expected = np.empty_like(xy)
    expected[1:-1] = (xy[:-2] + xy[2:]) / 2
    expected[0], expected[-1] = xy[1], xy[-2]
    distance = np.linalg.norm(xy - expected, axis=-1)
    return np.where(np.isfinite(distance), distance, 0.0)


def speeds(points: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """float64 (T, N): pixels per frame from the previous row (row 0: to the next row; one row: 0)."""
    xy = np.asarray(points, dtype=np.float64)
    frame_t = np.asarray(frames, dtype=np.float64)
    if len(xy) < 2:
        return np.zeros(xy.shape[:2])
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1) / np.diff(frame_t)[:, None]
    speed = np.concatenate([step[:1], step])
    return np.where(np.isfinite(speed), speed, 0.0)


def known_mask(tracks: Tracks, labels: PointLabels | None) -> np.ndarray:
    """bool (T, N): True where a point is labelled or marked not visible on the row's frame."""
    known = np.zeros((tracks.num_frames, tracks.num_points), dtype=bool)
    if labels is None:
        return known
    if labels.num_points != tracks.num_points:
        raise ValueError(f"labels have {labels.num_points} points for {tracks.num_points} tracked points")
    for p in range(labels.num_points):
        frames = np.concatenate([labels.labels[p][:, 0], labels.hidden_of(p)])
        known[:, p] = np.isin(tracks.frame_indices, frames.astype(np.int64))
    return known


def rank_frames(tracks: Tracks, labels: PointLabels | None = None) -> FrameRanking:
    """Score every tracked frame and rank them, most doubtful first (the rule is the module docstring's).

    Args:
        tracks: the tracks (points (T, N, 2), confidence (T, N), frame_indices (T,), size (W, H)).
        labels: the points' labels and "not visible" marks, in point order (None: those the tracks record,
            `Tracks.labels`, if any); a point counts for nothing on a frame where it has one.

    Returns:
        The :class:`FrameRanking`.
    """
    counted = ~known_mask(tracks, labels if labels is not None else tracks.labels)
    confidence = np.clip(np.nan_to_num(tracks.confidence.astype(np.float64), nan=0.0), 0.0, 1.0)
    low = np.where(counted, 1.0 - confidence, -1.0)
    jump = np.where(counted, jumps(tracks.points), -1.0)
    anyone = counted.any(axis=1)
    num_points = tracks.num_points
    confidence_point = np.where(anyone, np.argmax(low, axis=1) if num_points else 0, -1).astype(np.int64)
    jump_point = np.where(anyone, np.argmax(jump, axis=1) if num_points else 0, -1).astype(np.int64)
    worst_low = np.where(anyone, low.max(axis=1, initial=0.0), 0.0)
    worst_jump = np.where(anyone, jump.max(axis=1, initial=0.0), 0.0)
    width, height = tracks.size
    diagonal = float(np.hypot(width, height))
    score = worst_low + np.minimum(1.0, worst_jump / (JUMP_SCALE * diagonal))
    order = np.lexsort((tracks.frame_indices, -worst_jump, -score)).astype(np.int64)
    return FrameRanking(tracks.frame_indices.copy(), score, worst_low, worst_jump, confidence_point, jump_point,
                        speeds(tracks.points, tracks.frame_indices), order)
