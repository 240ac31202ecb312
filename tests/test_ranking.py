"""The frames-to-check ranking on hand-made tracks, its expected scores and order worked out by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from vidcorr.io.points import PointLabels
from vidcorr.io.ranking import jumps, rank_frames, speeds
from vidcorr.io.tracks import Tracks

# A 60 x 80 frame: its diagonal is 100 px, so a jump of 5 px (JUMP_SCALE 0.05 of it) scores 1.
FRAMES = [0, 2, 4, 6, 8]
# Point 0 moves steadily by 2 px a row; point 1 stands still but glitches by (3, 4) = 5 px on frame 4.
POINTS = np.array([[[10, 10], [30, 30]], [[12, 10], [30, 30]], [[14, 10], [33, 34]], [[16, 10], [30, 30]],
                   [[18, 10], [30, 30]]], dtype=np.float32)
CONFIDENCE = np.array([[1.0, 1.0], [0.9, 1.0], [0.8, 0.6], [0.95, 0.7], [0.3, 0.9]])


def tracks(labels: PointLabels | None = None) -> Tracks:
    return Tracks(points=POINTS, visible=CONFIDENCE >= 0.5, confidence=CONFIDENCE,
                  queries=[[0, 10, 10], [0, 30, 30]], frame_indices=FRAMES, fps=10.0, size=(60, 80), labels=labels)


def test_jumps_and_speeds_by_hand():
    # Point 0: steady, so no jump inside; the end rows are 2 px from their one neighbour.
    # Point 1: row 2 is 5 px from the midpoint (30, 30) of its neighbours; rows 1 and 3 are 2.5 px from the
    # midpoint (31.5, 32) of theirs; the end rows sit on their neighbour.
    np.testing.assert_allclose(jumps(POINTS), [[2, 0], [0, 2.5], [0, 5], [0, 2.5], [2, 0]])
    # Rows are 2 frames apart: point 0 moves 1 px per frame; point 1 5 px in and 5 px out of its glitch.
    np.testing.assert_allclose(speeds(POINTS, FRAMES), [[1, 0], [1, 0], [1, 2.5], [1, 2.5], [1, 0]])
    assert jumps(POINTS[:1]).tolist() == [[0.0, 0.0]]


def test_labels_and_not_visible_marks_take_their_points_out_of_the_score():
    # Both points are labelled on frame 0; point 0 is marked not visible on frame 8.
    labels = PointLabels(("a", "b"), (np.array([[0, 10, 10]]), np.array([[0, 30, 30]])),
                         hidden=(np.array([8]), np.array([], dtype=np.int64)))
    ranking = rank_frames(tracks(), labels)
    # row 0: nobody counts -> 0
    # row 1: low 1 - 0.9 = 0.1 (point 0), jump 2.5 px (point 1) -> 0.5: 0.6
    # row 2: low 1 - 0.6 = 0.4 (point 1), jump 5 px (point 1) -> 1: 1.4
    # row 3: low 1 - 0.7 = 0.3 (point 1), jump 2.5 px (point 1) -> 0.5: 0.8
    # row 4: point 1 alone: low 1 - 0.9 = 0.1, jump 0: 0.1
    np.testing.assert_allclose(ranking.low_confidence, [0, 0.1, 0.4, 0.3, 0.1], atol=1e-6)
    np.testing.assert_allclose(ranking.jump_px, [0, 2.5, 5, 2.5, 0])
    np.testing.assert_allclose(ranking.score, [0, 0.6, 1.4, 0.8, 0.1], atol=1e-6)
    assert ranking.confidence_point.tolist() == [-1, 0, 1, 1, 1]
    assert ranking.jump_point.tolist() == [-1, 1, 1, 1, 1]
    assert ranking.order.tolist() == [2, 3, 1, 4, 0]
    assert ranking.frames_to_check() == [4, 6, 2, 8, 0]
    assert ranking.frames_to_check(2) == [4, 6]
    # Labels the tracks record count the same way.
    assert rank_frames(tracks(labels)).order.tolist() == [2, 3, 1, 4, 0]


def test_without_labels_every_point_counts_everywhere():
    ranking = rank_frames(tracks())
    # row 0: low 0, jump 2 px (point 0) -> 0.4: 0.4
    # row 4: low 1 - 0.3 = 0.7 (point 0), jump 2 px (point 0) -> 0.4: 1.1
    np.testing.assert_allclose(ranking.score, [0.4, 0.6, 1.4, 0.8, 1.1], atol=1e-6)
    assert ranking.frames_to_check() == [4, 8, 6, 2, 0]


def test_a_jump_beyond_the_scale_counts_as_one_and_ties_go_to_the_larger_jump_then_frame_order():
    still = np.zeros((5, 1, 2), np.float32) + 20
    still[2, 0] = (20, 80)  # 60 px off, twelve times the scale: still 1
    flat = Tracks(points=still, visible=np.ones((5, 1), bool), confidence=np.ones((5, 1)), queries=[[0, 20, 20]],
                  frame_indices=np.arange(5), fps=1.0, size=(60, 80))
    ranking = rank_frames(flat)
    # Row 2 is 60 px from its neighbours' midpoint, rows 1 and 3 30 px from theirs (20, 50): all saturate.
    np.testing.assert_allclose(ranking.jump_px, [0, 30, 60, 30, 0])
    np.testing.assert_allclose(ranking.score, [0, 1, 1, 1, 0])
    assert ranking.frames_to_check() == [2, 1, 3, 0, 4]


def test_labels_must_match_the_tracks():
    with pytest.raises(ValueError, match=r"^labels have 1 points for 2 tracked points$"):
        rank_frames(tracks(), PointLabels.from_queries([[0, 1, 1]]))
