"""Points files mark a point "not visible here" (what `vidcorr review` saves), and `write_points_file` writes the
picker's JSON that reads back as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidcorr.errors import InputError
from vidcorr.io.points import (
    PointLabels,
    check_labels,
    plan_reuse,
    read_points_file,
    read_video_points_file,
    write_points_file,
)


def test_json_rows_marked_not_visible_are_marks_not_labels(tmp_path):
    path = tmp_path / "points.json"
    path.write_text(json.dumps({"format": "vidcorr-points", "version": 1, "points": [
        {"id": "nose", "t": 0, "x": 10.5, "y": 12.25}, {"id": "nose", "t": 7, "visible": False},
        {"id": "paw", "t": 3, "x": 1, "y": 2}, {"id": "nose", "t": 4, "x": 20, "y": 21, "visible": True},
        {"id": "nose", "t": 2, "x": 99, "y": 99, "visible": False}]}))
    labels = read_points_file(path)
    assert labels.ids == ("nose", "paw")
    np.testing.assert_array_equal(labels.labels[0], [[0, 10.5, 12.25], [4, 20, 21]])
    assert [h.tolist() for h in labels.hidden] == [[2, 7], []]
    assert labels.hidden[0].dtype == np.int64 and labels.hidden_of(1).tolist() == []


def test_csv_visible_column(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("id,t,x,y,visible\n0,0,5,6,1\n0,3,,,0\n1,2,7,8,\n")
    labels = read_points_file(path)
    assert labels.ids == ("0", "1") and [h.tolist() for h in labels.hidden] == [[3], []]
    np.testing.assert_array_equal(labels.labels[1], [[2, 7, 8]])


@pytest.mark.parametrize(("rows", "message"), [
    ([{"t": 0, "x": 1, "y": 1}, {"t": 2, "visible": False}],
     "points file p.json entry 1: a row marked not visible needs the id of its point"),
    ([{"id": 0, "t": 0, "x": 1, "y": 1}, {"id": 1, "t": 2, "visible": False}],
     "points file p.json: point 1 is marked not visible on frame 2 but has no label"),
    ([{"id": 0, "t": 2, "x": 1, "y": 1}, {"id": 0, "t": 2, "visible": False}],
     "point 0 is labelled on frame 2 and marked not visible there"),
    ([{"id": 0, "t": 0, "x": 1, "y": 1}, {"id": 0, "t": 2, "visible": False}, {"id": 0, "t": 2, "visible": False}],
     "points file p.json: point 0 is marked not visible on frame 2 twice"),
    ([{"id": 0, "t": 0, "x": 1, "y": 1}, {"id": 0, "visible": False}],
     "points file p.json entry 1: a row marked not visible needs its frame t"),
    ([{"id": 0, "t": 0, "x": 1, "y": 1, "visible": "no"}],
     "points file p.json entry 0: visible 'no' must be true or false"),
])
def test_bad_marks_are_one_line_errors(tmp_path, rows, message):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(InputError) as caught:
        read_points_file(path)
    assert str(caught.value).endswith(message)


def test_a_mark_outside_the_video_is_refused():
    labels = PointLabels(("a",), (np.array([[0, 1.0, 1.0]]),), hidden=(np.array([12]),))
    with pytest.raises(InputError, match=r"^point a is marked not visible on frame 12, outside the video "
                                         r"\(frames 0\.\.9\)$"):
        check_labels(labels, 10, (20, 20))


def test_write_points_file_reads_back_the_same(tmp_path):
    labels = PointLabels(("nose", "3"), (np.array([[0, 10.125, 12.5], [9, 1 / 3, 2.0]]), np.array([[4, 5.0, 6.0]])),
                         hidden=(np.array([5]), np.array([0, 8])))
    path = write_points_file(tmp_path / "p.json", labels, video="clip.mp4", size_wh=(32, 24), num_frames=10)
    document = json.loads(path.read_text())
    assert {k: v for k, v in document.items() if k != "points"} == {
        "format": "vidcorr-points", "version": 1, "video": "clip.mp4", "size": [32, 24], "num_frames": 10}
    assert document["points"] == [
        {"id": "nose", "t": 0, "x": 10.125, "y": 12.5}, {"id": "nose", "t": 5, "visible": False},
        {"id": "nose", "t": 9, "x": 1 / 3, "y": 2.0},
        {"id": "3", "t": 0, "visible": False}, {"id": "3", "t": 4, "x": 5.0, "y": 6.0},
        {"id": "3", "t": 8, "visible": False}]
    again = read_points_file(path)
    assert again.ids == labels.ids
    for mine, theirs in zip(again.labels, labels.labels, strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the floats round-trip exactly
    assert [h.tolist() for h in again.hidden] == [[5], [0, 8]]


def test_a_batchs_points_file_names_the_video_on_every_row(tmp_path):
    first = PointLabels(("0",), (np.array([[0, 1.0, 2.0]]),), hidden=(np.array([3]),))
    second = PointLabels.from_queries([[1, 3.0, 4.0]])
    path = write_points_file(tmp_path / "batch.json", {"a.mp4": first, "b.mp4": second})
    assert [row["video"] for row in json.loads(path.read_text())["points"]] == ["a.mp4", "a.mp4", "b.mp4"]
    again = read_video_points_file(path)
    assert list(again) == ["a.mp4", "b.mp4"]
    assert [h.tolist() for h in again["a.mp4"].hidden] == [[3]] and again["b.mp4"].hidden == ()
    np.testing.assert_array_equal(again["b.mp4"].labels[0], [[1, 3.0, 4.0]])


def test_plan_reuse_keeps_the_points_whose_labels_did_not_change():
    earlier = PointLabels(("nose", "paw", "tail", "ear"), (
        np.array([[0, 10.5, 12.25]]), np.array([[0, 30.0, 40.0], [9, 31.0, 41.0]]), np.array([[2, 5.0, 5.0]]),
        np.array([[0, 50.0, 50.0]])))
    labels = PointLabels(("paw", "nose", "tail", "eye", "ear"), (
        np.array([[0, 30.0, 40.0], [9, 31.0, 41.0]]),            # the same two labels, listed first now: kept
        np.array([[0, 10.5, 12.25], [5, 11.0, 13.0]]),           # a label added: refitted
        np.array([[2, 5.0, 5.0 + 1e-9]]),                        # moved by a hair: refitted
        np.array([[0, 1.0, 1.0]]),                               # a new id: fitted
        np.array([[0, 50.0, 50.0]])),                            # the same: kept, whatever its marks
        hidden=(np.array([3]), np.array([], dtype=np.int64), np.array([], dtype=np.int64),
                np.array([], dtype=np.int64), np.array([4])))
    plan = plan_reuse(earlier, labels)
    assert plan.source.tolist() == [1, -1, -1, -1, 3]
    assert plan.refit.tolist() == [1, 2, 3] and plan.kept.tolist() == [0, 4]
    assert plan.refit_ids == ["nose", "tail", "eye"]
    removed = PointLabels(("paw",), (np.array([[0, 30.0, 40.0]]),))  # a label removed: refitted
    assert plan_reuse(earlier, removed).source.tolist() == [-1]
