"""Tracking with several labels per point: every label is an anchor.

On the exactly shift-equivariant tiny model (tests/equivariant.py: one full-frame crop, no noise) a frame rolled
by whole model strides gives the rolled attention maps, so a located point moves exactly with the roll whatever the
crop anchor; which label owns a frame shows in the sweep that locates it and in the anchor its first crop is given,
both recorded here by a spy on `locate`.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_image
from equivariant import equivariant_tiny, exact_config, interior_shifts, rolled_frames

import vidcorr
from vidcorr import PointLabels
from vidcorr.method import track as track_module
from vidcorr.method.track import owning_labels, sweeps

SIZE = 256
POINTS = np.array([[100.5, 60.5], [180.5, 200.5]])  # on the unrolled image
LABEL_SHIFTS = {1: (0, 0), 5: (-64, 0)}  # frame -> roll of the labelled frames


def _labels() -> PointLabels:
    rows = [np.array([[t, *((POINTS[p] + shift) % SIZE)] for t, shift in LABEL_SHIFTS.items()]) for p in range(2)]
    return PointLabels(("nose", "tail"), tuple(rows))


@pytest.fixture(scope="module")
def run():
    ldm, cfg = equivariant_tiny(), exact_config()
    base = random_image(SIZE, SIZE, seed=7)
    labels = _labels()
    placeholder = rolled_frames(base, [LABEL_SHIFTS.get(t, (0, 0)) for t in range(7)])
    embeddings = vidcorr.fit_queries(ldm, placeholder, labels, cfg)  # reads only the labelled frames 1 and 5
    located = vidcorr.locate(ldm, base, embeddings, cfg).points
    assert np.all((located >= 40) & (located <= SIZE - 40)), f"located points {located.tolist()} near a border"
    free = interior_shifts(located, SIZE)
    assert len(free) >= 3, f"too few interior shifts for located points {located.tolist()}"
    # The unlabelled frames rolled by interior shifts, each unlike its neighbours' (frame 4 unrolled).
    shifts = {0: free[0], 2: free[1], 3: free[2], 4: (0, 0), 6: free[1], **LABEL_SHIFTS}
    frames = rolled_frames(base, [shifts[t] for t in range(7)])
    calls = []

    def spy(*args, **kwargs):
        loc = locate(*args, **kwargs)
        calls.append((kwargs["stream_key"], kwargs["point_ids"], kwargs["anchors_xy"], loc.confidence))
        return loc

    locate = track_module.locate
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(track_module, "locate", spy)
        tracks = vidcorr.track(ldm, frames, cfg=cfg, embeddings=embeddings)
    return labels, embeddings, located, shifts, calls, tracks


def test_labelled_frames_hold_the_labels_exactly(run):
    labels, _, _, _, _, tracks = run
    for k, t in enumerate(LABEL_SHIFTS):
        np.testing.assert_array_equal(tracks.points[t], np.stack([rows[k, 1:] for rows in labels.labels]).astype(
            np.float32))
        np.testing.assert_array_equal(tracks.confidence[t], [1.0, 1.0])
        assert tracks.visible[t].all()


def test_tracks_follow_the_roll_on_both_sides_of_each_label(run):
    _, _, located, shifts, _, tracks = run
    for t in (0, 2, 3, 4, 6):  # before label 1, between the labels (both sides), after label 5
        np.testing.assert_array_equal(tracks.points[t], ((located + shifts[t]) % SIZE).astype(np.float32))


def test_each_frame_is_located_from_the_nearest_label_the_earlier_on_a_tie(run):
    labels, _, _, _, calls, tracks = run
    at = {t: np.stack([rows[k, 1:] for rows in labels.labels]) for k, t in enumerate(LABEL_SHIFTS)}
    # Forward sweep: 2 (nearer 1) and 3 (a tie: the earlier label, 1) from label 1, 6 from label 5; then the
    # backward sweep: 4 (nearer 5) from label 5, 0 from label 1.
    assert [c[0] for c in calls] == [2, 3, 6, 4, 0]
    anchors = {c[0]: c[2] for c in calls}
    np.testing.assert_array_equal(anchors[2], at[1])  # a sweep's first frame from a label starts at the label
    np.testing.assert_array_equal(anchors[3], tracks.points[2].astype(np.float64))  # then from the previous frame
    np.testing.assert_array_equal(anchors[6], at[5])
    np.testing.assert_array_equal(anchors[4], at[5])
    np.testing.assert_array_equal(anchors[0], at[1])
    assert all(c[1] == [0, 1] for c in calls)


def test_confidence_is_divided_by_the_mean_attention_at_the_labels(run):
    _, embeddings, _, _, calls, tracks = run
    scale = np.mean(embeddings.extra["label_ref_attention"], axis=1)
    np.testing.assert_array_equal(embeddings.extra["ref_attention"], scale)
    for frame, _, _, confidence in calls:
        np.testing.assert_array_equal(tracks.confidence[frame],
                                      np.minimum(confidence / scale, 1.0).astype(np.float32))


def test_owners_by_hand():
    frames = np.arange(12)
    # Labels on 2, 5 and 9: 3 is nearer 2; 4 nearer 5; 7 a tie (2 from each), the earlier: 5; 8 nearer 9.
    np.testing.assert_array_equal(owning_labels(np.array([2, 5, 9]), frames),
                                  [0, 0, -1, 0, 1, -1, 1, 1, 2, -1, 2, 2])
    np.testing.assert_array_equal(owning_labels(np.array([4]), frames), [0] * 4 + [-1] + [0] * 7)


def test_sweeps_by_hand():
    # Point 0 labelled on 2 and 9, point 1 on 6; tracked frames 0, 2, 4, ..., 10.
    forward, backward = sweeps([np.array([2, 9]), np.array([6])], np.arange(0, 12, 2))
    assert [(s.frame, s.points.tolist(), s.labels.tolist(), s.fresh.tolist()) for s in forward] == [
        (4, [0], [0], [True]), (8, [1], [0], [True]), (10, [0, 1], [1, 0], [True, False])]
    # Point 0: frame 6 is nearer 9 (3 away) than 2 (4 away), so 9 owns it, backward, as 8.
    assert [(s.frame, s.points.tolist(), s.labels.tolist(), s.fresh.tolist()) for s in backward] == [
        (8, [0], [1], [True]), (6, [0], [1], [False]), (4, [1], [0], [True]), (2, [1], [0], [False]),
        (0, [0, 1], [0, 0], [True, False])]


def test_a_checkpoint_records_the_labels(tiny, tmp_path):
    frames = [random_image(48, 64, seed=s) for s in range(5)]
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=1)
    labels = PointLabels(("a",), (np.array([[0, 10.0, 10.0], [4, 20.0, 30.0]]),))
    first = vidcorr.track(tiny, frames, labels, cfg, checkpoint=tmp_path / "c")
    again = vidcorr.track(tiny, frames, labels, cfg, checkpoint=tmp_path / "c")  # resumed: nothing left to do
    np.testing.assert_array_equal(again.points, first.points)
    moved = PointLabels(("a",), (np.array([[0, 10.0, 10.0], [4, 21.0, 30.0]]),))
    with pytest.raises(vidcorr.InputError, match=r"other settings \(labels "):
        vidcorr.track(tiny, frames, moved, cfg, checkpoint=tmp_path / "c")
