"""Outputs record the labels: tracks.npz and tracks.json list them, annotated frames mark them, the embeddings
file keeps them, and a run from labels writes all of it end to end."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import random_image
from safetensors import safe_open

import vidcorr
from vidcorr import PointLabels
from vidcorr.errors import InputError
from vidcorr.io.render import RenderStyle, draw_tracks, point_colors
from vidcorr.io.sample import write_synthetic_video
from vidcorr.io.tracks import Tracks

LABELS = PointLabels(("paw", "nose"), (np.array([[0, 10.5, 12.5], [3, 30.25, 20.0]]), np.array([[2, 40.0, 8.5]])))


def _tracks(labels: PointLabels | None = LABELS) -> Tracks:
    points = np.tile(np.array([[[20.5, 10.5], [40.5, 30.5]]], dtype=np.float32), (4, 1, 1))
    return Tracks(points=points, visible=np.ones((4, 2), bool), confidence=np.ones((4, 2)),
                  queries=np.array([[0, 10.5, 12.5], [2, 40.0, 8.5]]), frame_indices=np.arange(4), fps=10.0,
                  size=(60, 40), labels=labels)


def test_tracks_files_list_every_label(tmp_path):
    written = _tracks().save_all(tmp_path)
    with np.load(written["npz"], allow_pickle=False) as npz:
        assert npz["label_ids"].tolist() == ["paw", "paw", "nose"]
        np.testing.assert_array_equal(npz["labels"], [[0, 10.5, 12.5], [3, 30.25, 20.0], [2, 40.0, 8.5]])
    again = Tracks.load_npz(written["npz"])
    assert again.labels is not None and again.labels.ids == ("paw", "nose")
    for mine, theirs in zip(again.labels.labels, LABELS.labels, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert json.loads(written["json"].read_text())["labels"] == [
        {"id": "paw", "point": 0, "t": 0, "x": 10.5, "y": 12.5},
        {"id": "paw", "point": 0, "t": 3, "x": 30.25, "y": 20.0},
        {"id": "nose", "point": 1, "t": 2, "x": 40.0, "y": 8.5}]


def test_tracks_without_labels_read_and_write_as_before(tmp_path):
    written = _tracks(None).save_all(tmp_path)
    with np.load(written["npz"], allow_pickle=False) as npz:
        assert "labels" not in npz.files and "label_ids" not in npz.files
    assert Tracks.load_npz(written["npz"]).labels is None
    assert "labels" not in json.loads(written["json"].read_text())
    # Half the label arrays is a damaged file.
    with np.load(written["npz"], allow_pickle=False) as npz:
        arrays = dict(npz)
    np.savez(tmp_path / "half.npz", **arrays, labels=np.zeros((1, 3)))
    with pytest.raises(InputError, match=r"is not a vidcorr tracks file: labels and label_ids come together$"):
        Tracks.load_npz(tmp_path / "half.npz")
    with pytest.raises(ValueError, match=r"^labels has 2 points for N = 1 tracked points$"):
        Tracks(points=np.zeros((1, 1, 2)), visible=np.ones((1, 1), bool), confidence=np.ones((1, 1)),
               queries=np.zeros((1, 3)), frame_indices=[0], fps=1.0, size=(4, 4), labels=LABELS)


def test_labelled_frames_show_a_square_tracked_frames_a_disc():
    tracks = _tracks()
    np.testing.assert_array_equal([tracks.labelled_at(r).tolist() for r in range(4)],
                                  [[True, False], [False, False], [False, True], [True, False]])
    grey = np.full((40, 60, 3), 90, np.uint8)
    # Radius 10 around pixel (row 10, col 20): pixel (19, 29) lies inside the square (half-side 10) and 12.7 px
    # from the centre, beyond the disc's outline (radius 11, anti-aliased to 12).
    corner = (19, 29)
    labelled = draw_tracks(grey, tracks, row=0, style=RenderStyle(show_ids=False, radius=10))
    tracked = draw_tracks(grey, tracks, row=1, style=RenderStyle(show_ids=False, radius=10))
    color = point_colors(2)[0]
    np.testing.assert_array_equal(labelled[10, 20], color)
    np.testing.assert_array_equal(tracked[10, 20], color)
    np.testing.assert_array_equal(labelled[corner], color)
    np.testing.assert_array_equal(tracked[corner], [90, 90, 90])


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    video = write_synthetic_video(folder / "clip.mkv", [random_image(40, 60, seed=s) for s in range(5)], fps=10.0,
                                  codec="FFV1")
    options = dict(preset="fast", overrides={"num_steps": 1, "image_size": 64}, keyframes=0)
    result = vidcorr.track_to_folder(tiny, video, folder / "out", queries=LABELS, **options)
    return folder, video, options, result


def test_a_run_from_labels_records_them_in_every_output(run):
    folder, _, _, result = run
    out = folder / "out"
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "embeddings.safetensors", "tracks.csv",
                                                     "tracks.json", "tracks.npz"]
    tracks = Tracks.load_npz(out / "tracks.npz")
    assert tracks.labels is not None and tracks.labels.ids == ("paw", "nose")
    np.testing.assert_array_equal(tracks.points[3, 0], [30.25, 20.0])  # the second label holds its frame
    assert [row["t"] for row in json.loads((out / "tracks.json").read_text())["labels"]] == [0, 3, 2]
    with safe_open(str(out / "embeddings.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["labels"]) == {
            "ids": ["paw", "nose"], "labels": [[[0.0, 10.5, 12.5], [3.0, 30.25, 20.0]], [[2.0, 40.0, 8.5]]]}
    np.testing.assert_array_equal(result.tracks.points, tracks.points)


def test_reused_embeddings_track_from_their_labels_on_their_video(run, tiny, tmp_path):
    folder, video, options, result = run
    again = vidcorr.track_to_folder(tiny, video, tmp_path / "again", video_out=False,
                                    embeddings=folder / "out" / "embeddings.safetensors", **options)
    np.testing.assert_array_equal(again.tracks.points, result.tracks.points)
    np.testing.assert_array_equal(again.tracks.confidence, result.tracks.confidence)
    assert again.tracks.labels is not None and again.tracks.labels.ids == ("paw", "nose")


def test_reused_embeddings_are_searched_on_another_video_as_today(run, tiny, tmp_path):
    folder, _, options, result = run
    other = write_synthetic_video(tmp_path / "other.mkv", [random_image(48, 64, seed=9 + s) for s in range(3)],
                                  fps=10.0, codec="FFV1")
    embeddings = vidcorr.Embeddings.load(folder / "out" / "embeddings.safetensors")
    searched = vidcorr.track_to_folder(tiny, other, tmp_path / "other", embeddings=embeddings, video_out=False,
                                       **options)
    assert searched.tracks.labels is None and searched.tracks.meta["global_search"]
    # The labels play no part in a global search: the same tracks as the embeddings without them.
    unlabelled = dataclasses.replace(embeddings, labels=None)
    plain = vidcorr.track_to_folder(tiny, other, tmp_path / "plain", embeddings=unlabelled, video_out=False, **options)
    np.testing.assert_array_equal(searched.tracks.points, plain.tracks.points)
