"""Points and their files (vidcorr.io.points): --points lists, one reader for every points file (headers honoured,
ids grouping labels of one point), a batch's per-video files, the checks against a video, and the CLI's one-line
errors for bad points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.io.images import check_image
from vidcorr.io.points import (
    PointLabels,
    check_labels,
    check_points,
    check_queries,
    given_labels,
    has_video_column,
    image_points,
    parse_points,
    points_for_videos,
    read_points_file,
    read_video_points_file,
    video_labels,
)
from vidcorr.io.render import blend_heatmap
from vidcorr.io.tracks import Tracks
from vidcorr.pipelines.batch import prepare_batch
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def as_lists(labels: PointLabels) -> dict[str, list[list[float]]]:
    """Point id -> its labels as [t, x, y] lists, in point order."""
    return {point_id: rows.tolist() for point_id, rows in zip(labels.ids, labels.labels, strict=True)}


# ------------------------------------------------------------------------------------------ --points


def test_parse_points_reads_x_y_and_t_x_y_lists():
    np.testing.assert_array_equal(parse_points(" 1,2 ; 3.5,4;"), [[1, 2], [3.5, 4]])
    np.testing.assert_array_equal(parse_points("0,1,2;5,3,4", columns=3), [[0, 1, 2], [5, 3, 4]])
    for text, columns, message in [
        (" ; ", 2, "--points is empty; expected 'x,y;x,y'"),
        ("1,2;3", 2, "malformed --points entry '3': expected 'x,y;x,y'"),
        ("1,2", 3, "malformed --points entry '1,2': expected 't,x,y;t,x,y'"),
        ("1,b", 2, "malformed --points entry '1,b': not numbers"),
        ("1,inf", 2, "--points has a value that is not a finite number"),
    ]:
        with pytest.raises(InputError) as err:
            parse_points(text, columns)
        assert str(err.value) == message


# ------------------------------------------------------------------------------------------ one reader


@pytest.mark.parametrize(("text", "expected"), [
    ("x,y,t\n60,40,2\n", {"0": [[2, 60, 40]]}),  # issue 22: the header decides, not the order
    ("t,x,y\n2,60,40\n", {"0": [[2, 60, 40]]}),
    ("y,x\n40,60\n", {"0": [[0, 60, 40]]}),  # no t: frame 0
    ("X, Y ,T,note\n60,40,2,left paw\n", {"0": [[2, 60, 40]]}),  # names ignore case and spaces; others ignored
    ("2,60,40\n3,61,41\n", {"0": [[2, 60, 40]], "1": [[3, 61, 41]]}),  # no header: t,x,y
    ("60,40\n\n61,41\n", {"0": [[0, 60, 40]], "1": [[0, 61, 41]]}),  # no header: x,y on frame 0
])
def test_csv_columns_are_taken_by_their_header_names(tmp_path, text, expected):
    assert as_lists(read_points_file(write(tmp_path, "p.csv", text))) == expected


def test_rows_sharing_an_id_are_labels_of_one_point(tmp_path):
    text = "id,t,x,y\nnose,4,10,11\npaw,0,20,21\nnose,1,12,13\n7,2,30,31\n"
    labels = read_points_file(write(tmp_path, "p.csv", text))
    # Points in the order of their first row; each point's labels sorted by frame.
    assert as_lists(labels) == {"nose": [[1, 12, 13], [4, 10, 11]], "paw": [[0, 20, 21]], "7": [[2, 30, 31]]}
    assert labels.counts.tolist() == [2, 1, 1]
    # The same labels in any column order, and in JSON (numeric ids are their text).
    moved = read_points_file(write(tmp_path, "q.csv", "x,id,y,t\n10,nose,11,4\n20,paw,21,0\n12,nose,13,1\n30,7,31,2\n"))
    assert as_lists(moved) == as_lists(labels)
    document = {"points": [{"id": "nose", "t": 4, "x": 10, "y": 11}, {"id": "paw", "t": 0, "x": 20, "y": 21},
                           {"id": "nose", "t": 1, "x": 12, "y": 13}, {"id": 7, "t": 2, "x": 30, "y": 31}]}
    assert as_lists(read_points_file(write(tmp_path, "p.json", json.dumps(document)))) == as_lists(labels)


def test_the_pickers_points_json_is_read_with_its_ids(tmp_path):
    document = {"format": "vidcorr-points", "version": 1, "video": "clip.mp4", "size": [320, 240], "num_frames": 9,
                "points": [{"id": 0, "t": 0, "x": 12.5, "y": 30.25}, {"id": 0, "t": 6, "x": 14, "y": 31},
                           {"id": 1, "t": 4, "x": 300, "y": 0.5}]}
    labels = read_points_file(write(tmp_path, "points.json", json.dumps(document)))
    assert labels.ids == ("0", "1")
    assert as_lists(labels) == {"0": [[0, 12.5, 30.25], [6, 14, 31]], "1": [[4, 300, 0.5]]}
    np.testing.assert_array_equal(labels.queries, [[0, 12.5, 30.25], [4, 300, 0.5]])  # each point's first label


def test_json_lists_of_rows_and_objects_without_ids_are_one_point_per_row(tmp_path):
    assert as_lists(read_points_file(write(tmp_path, "a.json", "[[2, 60, 40], [61, 41]]"))) == {
        "0": [[2, 60, 40]], "1": [[0, 61, 41]]}
    assert as_lists(read_points_file(write(tmp_path, "b.json", '{"points": [{"x": 1, "y": 2}, {"t": 3, "x": 4, '
                                                                 '"y": 5}]}'))) == {"0": [[0, 1, 2]], "1": [[3, 4, 5]]}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.csv", "t,x\n0,10\n", "points file p.csv has a header without the column 'y'"),
    ("p.csv", "x,y,x\n1,2,3\n", "points file p.csv has the column 'x' twice"),
    ("p.csv", "t,x,y\n1,2\n", "points file p.csv line 2: 2 values for 3 columns"),
    ("p.csv", "0,1,2,3\n", "points file p.csv line 1: expected t, x, y (or x, y), got 4 values"),
    ("p.csv", "nose,0,1,2\n", "points file p.csv line 1: 'nose' is not a number (without a header row a row is "
                              "t,x,y or x,y; a header such as id,t,x,y names the columns)"),
    ("p.csv", "t,x,y\n1,a,3\n", "points file p.csv line 2: ['1', 'a', '3'] are not numbers"),
    ("p.csv", "t,x,y\n1,nan,3\n", "points file p.csv line 2: ['1', 'nan', '3'] are not finite numbers"),
    ("p.csv", "\n \n", "points file p.csv has no points"),
    ("p.csv", "video,t,x,y\na.mp4,0,1,2\n",
     "points file p.csv names a video on each row: it is for a batch of videos (give it with several)"),
    # ids: on every row or none; one label per frame and point
    ("p.csv", "id,t,x,y\na,0,1,2\n,1,3,4\n",
     "points file p.csv line 3 has no id, but other rows have one: give every row an id, or none"),
    ("p.json", '[{"t": 0, "x": 1, "y": 2}, {"id": "a", "t": 1, "x": 3, "y": 4}]',
     "points file p.json entry 0 has no id, but other rows have one: give every row an id, or none"),
    ("p.csv", "id,t,x,y\na,3,1,2\nb,3,5,6\na,3,3,4\n", "points file p.csv: point a has two labels on frame 3"),
    ("p.json", '{"format": "vidcorr-points", "version": 1, "points": [{"id": 2, "t": 1, "x": 1, "y": 2}, '
               '{"id": 2, "t": 1, "x": 3, "y": 4}]}', "points file p.json: point 2 has two labels on frame 1"),
    ("p.json", '[{"id": 1.5, "t": 1, "x": 1, "y": 2}]', "points file p.json entry 0: id 1.5 must be a text or a "
                                                         "whole number"),
    ("p.json", '{"format": "vidcorr-points", "version": 2, "points": []}',
     "points file '{tmp}/p.json' is vidcorr-points version 2; this vidcorr reads version 1"),
    ("p.json", '{"points": 3}', "points file p.json must hold a list of points"),
    ("p.json", "[1, 2", "points file '{tmp}/p.json' is not valid JSON: Expecting ',' delimiter at line 1"),
])
def test_bad_points_files_are_one_line_errors(tmp_path, name, text, message):
    with pytest.raises(InputError) as err:
        read_points_file(write(tmp_path, name, text))
    assert str(err.value) == message.format(tmp=tmp_path)


def test_missing_points_files(tmp_path):
    with pytest.raises(InputError) as err:
        read_points_file(tmp_path / "nope.csv")
    assert str(err.value) == f"points file '{tmp_path / 'nope.csv'}' does not exist"
    with pytest.raises(InputError) as err:
        read_points_file(tmp_path)
    assert str(err.value) == f"points file '{tmp_path}' is a folder"


# ------------------------------------------------------------------------------------ a batch's points


def test_per_video_csv_with_a_header_in_any_order(tmp_path):
    path = write(tmp_path, "p.csv", "x,label,video,y,t\n10.5,eye,a.mp4,20.5,3\n1,nose,b,2,0\n30,ear,a.mp4,40,5\n")
    points = read_video_points_file(path)
    assert list(points) == ["a.mp4", "b"]
    assert as_lists(points["a.mp4"]) == {"0": [[3, 10.5, 20.5]], "1": [[5, 30, 40]]}
    assert as_lists(points["b"]) == {"0": [[0, 1, 2]]}


def test_per_video_csv_without_a_header_and_without_t(tmp_path):
    path = write(tmp_path, "p.csv", "a.mp4,2,10,20\n\na.mp4,11,21\n")
    np.testing.assert_array_equal(read_video_points_file(path)["a.mp4"].queries, [[2, 10, 20], [0, 11, 21]])
    path.write_text("video,x,y\nc,5,6\n")
    np.testing.assert_array_equal(read_video_points_file(path)["c"].queries, [[0, 5, 6]])


def test_per_video_json_rows_and_mapping(tmp_path):
    path = write(tmp_path, "p.json", json.dumps({"points": [{"video": "a", "t": 1, "x": 2, "y": 3},
                                                            {"video": "b", "x": 4, "y": 5}]}))
    assert {k: v.queries.tolist() for k, v in read_video_points_file(path).items()} == {"a": [[1, 2, 3]],
                                                                                      "b": [[0, 4, 5]]}
    path.write_text(json.dumps({"a": [[1, 2, 3], [4, 5]], "b": [[0, 7, 8]]}))
    assert {k: v.queries.tolist() for k, v in read_video_points_file(path).items()} == {
        "a": [[1, 2, 3], [0, 4, 5]], "b": [[0, 7, 8]]}


def test_per_video_ids_group_labels_within_each_video(tmp_path):
    text = "video,id,t,x,y\na.mp4,nose,0,1,2\nb.mp4,nose,0,9,9\na.mp4,nose,5,3,4\na.mp4,tail,2,5,6\n"
    points = read_video_points_file(write(tmp_path, "p.csv", text))
    assert as_lists(points["a.mp4"]) == {"nose": [[0, 1, 2], [5, 3, 4]], "tail": [[2, 5, 6]]}
    assert as_lists(points["b.mp4"]) == {"nose": [[0, 9, 9]]}  # the same id in another video is another point
    mapping = {"a.mp4": [{"id": "nose", "t": 0, "x": 1, "y": 2}, {"id": "nose", "t": 5, "x": 3, "y": 4},
                         {"id": "tail", "t": 2, "x": 5, "y": 6}], "b.mp4": [{"id": "nose", "t": 0, "x": 9, "y": 9}]}
    again = read_video_points_file(write(tmp_path, "p.json", json.dumps(mapping)))
    assert {k: as_lists(v) for k, v in again.items()} == {k: as_lists(v) for k, v in points.items()}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.csv", "video,t,x,y\na,1,zz,3\n", "points file p.csv line 2: ['1', 'zz', '3'] are not numbers"),
    ("p.csv", "video,t,x,y\n,1,2,3\n", "points file p.csv line 2: no video"),
    ("p.csv", "video,t,x\na,1,2\n", "points file p.csv has a header without the column 'y'"),
    ("p.csv", "a,1,2,3,4\n", "points file p.csv line 1: expected t, x, y (or x, y), got 4 values"),
    ("p.csv", "a,1,nan,3\n", "points file p.csv line 1: ['1', 'nan', '3'] are not finite numbers"),
    ("p.csv", "\n\n", "points file p.csv has no points"),
    ("p.json", "[1, 2]", "points file p.json entry 0: no video"),
    ("p.json", "{\"a\": 3}", "points file p.json entry 'a': expected a list of [t, x, y] rows"),
    ("p.csv", "video,id,t,x,y\na,n,1,2,3\nb,,1,2,3\n",
     "points file p.csv line 3 has no id, but other rows have one: give every row an id, or none"),
    ("p.csv", "video,id,t,x,y\na,n,1,2,3\nb,n,1,2,3\na,n,1,4,5\n",
     "points file p.csv, video 'a': point n has two labels on frame 1"),
])
def test_bad_per_video_points_files_are_one_line(tmp_path, name, text, message):
    with pytest.raises(InputError) as err:
        read_video_points_file(write(tmp_path, name, text))
    assert str(err.value) == message


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("p.csv", "video,t,x,y\na,0,1,2\n", True),
    ("p.csv", "a.mp4,0,1,2\n", True),  # no header, a first value that is not a number
    ("p.csv", "t,x,y\n0,1,2\n", False),
    ("p.csv", "0,1,2\n", False),
    ("p.json", '{"a": [[0, 1, 2]]}', True),
    ("p.json", '[{"video": "a", "x": 1, "y": 2}]', True),
    ("p.json", '{"format": "vidcorr-points", "version": 1, "points": [{"id": 0, "t": 0, "x": 1, "y": 2}]}', False),
    ("p.json", "not json", False),  # the reader says why
])
def test_has_video_column_tells_a_batchs_file_from_points_for_every_video(tmp_path, name, text, expected):
    assert has_video_column(write(tmp_path, name, text)) is expected


def test_points_are_matched_to_the_batch_by_path_name_or_stem(tmp_path):
    videos = [tmp_path / "cam1" / "clip.mp4", tmp_path / "cam2" / "clip.mp4", tmp_path / "solo.avi",
              tmp_path / "frames" / "seq"]
    q = {k: PointLabels.from_queries([[float(i), 1.0, 2.0]])
         for i, k in enumerate(["cam1/clip.mp4", "cam2/clip.mp4", "solo", "seq"])}
    matched = points_for_videos(q, videos, base=tmp_path)
    assert [matched[v].labels[0][0, 0] for v in videos] == [0, 1, 2, 3]
    with pytest.raises(InputError) as err:
        points_for_videos({"clip.mp4": q["solo"], "solo": q["solo"], "seq": q["seq"]}, videos, base=tmp_path)
    assert str(err.value).startswith("points for video 'clip.mp4' match 2 videos of the batch (")
    with pytest.raises(InputError) as err:
        points_for_videos({**q, "ghost.mp4": q["solo"]}, videos, base=tmp_path)
    assert str(err.value) == "points for video 'ghost.mp4': no such video in the batch"
    with pytest.raises(InputError) as err:
        points_for_videos({"solo": q["solo"]}, videos, base=tmp_path)
    assert str(err.value) == f"the points file has no points for video {str(videos[0])!r} (and 2 more)"


# ---------------------------------------------------------------------------------- checks against a video


@pytest.mark.parametrize(("labels", "message"), [
    (PointLabels.from_queries([[2.5, 1, 1]]), "point 0 is on frame 2.5: a frame index must be a whole number"),
    (PointLabels.from_queries([[0, 1, 1], [6, 1, 1]]), "point 1 is on frame 6, outside the video (frames 0..5)"),
    (PointLabels.from_queries([[-1, 1, 1]]), "point 0 is on frame -1, outside the video (frames 0..5)"),
    (PointLabels.from_queries([[0, 64.5, 3]]), "point 0 (64.5, 3) is outside the frame (64x48 pixels)"),
    (PointLabels.from_rows(["nose", "nose"], [[0, 1, 1], [3, 1, 48.5]]),
     "point nose (1, 48.5) on frame 3 is outside the frame (64x48 pixels)"),
    (PointLabels.from_rows(["nose", "nose"], [[0, 1, 1], [9, 1, 1]]),
     "point nose has a label on frame 9, outside the video (frames 0..5)"),
    (PointLabels.from_rows(["nose", "nose"], [[0, 1, 1], [1.5, 1, 1]]),
     "point nose has a label on frame 1.5: a frame index must be a whole number"),
    (PointLabels.from_rows(["nose"], [[0, np.nan, 1]]), "point nose has a value that is not a finite number"),
])
def test_check_labels_names_the_point_and_the_label(labels, message):
    with pytest.raises(InputError) as err:
        check_labels(labels, 6, (64, 48))
    assert str(err.value) == message


def test_labels_on_the_frames_edges_are_inside():
    labels = PointLabels.from_rows(["a", "a", "b"], [[0, 0, 0], [5, 64, 48], [3, 32, 24]])
    assert check_labels(labels, 6, (64, 48)) is labels


@pytest.mark.parametrize(("queries", "message"), [
    ([[2.5, 1, 1]], "query 0 is on frame 2.5: a frame index must be a whole number"),
    ([[0, 1, 1], [6, 1, 1]], "query 1 is on frame 6, outside the video (frames 0..5)"),
    ([[0, 1, 1], [0, 65, 10]], "query 1 (65, 10) is outside the frame (64x48 pixels)"),
    ([[0, 1, np.inf]], "queries must be finite numbers"),
    (np.zeros((0, 3)), "queries must be a non-empty (N, 3) array of t, x, y, got shape (0, 3)"),
    ([[0, 1]], "queries must be a non-empty (N, 3) array of t, x, y, got shape (1, 2)"),
])
def test_check_queries_messages(queries, message):
    with pytest.raises(InputError) as err:
        check_queries(queries, 6, (64, 48))
    assert str(err.value) == message


def test_check_points_and_check_queries_accept_the_same_positions():
    np.testing.assert_array_equal(check_points([[0, 0], [64, 48]], (64, 48)), [[0, 0], [64, 48]])
    np.testing.assert_array_equal(check_queries([[5, 0, 0], [0, 64, 48]], 6, (64, 48)), [[5, 0, 0], [0, 64, 48]])
    with pytest.raises(InputError) as err:
        check_points([[1, 1], [64.01, 3]], (64, 48), name="source image a.png")
    assert str(err.value) == "point 1 (64.01, 3) is outside the source image a.png (64x48 pixels)"


def test_an_image_takes_one_label_per_point():
    one = PointLabels.from_rows(["a", "b"], [[3, 1, 2], [0, 5, 6]])
    np.testing.assert_array_equal(image_points(one), [[1, 2], [5, 6]])
    several = PointLabels.from_rows(["a", "b", "b"], [[3, 1, 2], [0, 5, 6], [4, 7, 8]])
    with pytest.raises(InputError) as err:
        image_points(several)
    assert str(err.value) == "an image takes one label per point: point b has 2 labels"


def test_given_labels_from_points_grid_or_file(tmp_path):
    typed = given_labels("1,2;3,4", None, None, 2, (64, 48))
    assert as_lists(typed) == {"0": [[2, 1, 2]], "1": [[2, 3, 4]]}
    grid = given_labels("1,2", None, 1, 3, (64, 48))  # the typed points first, then the grid's (1x1: the centre)
    assert as_lists(grid) == {"0": [[3, 1, 2]], "1": [[3, 32, 24]]}
    path = write(tmp_path, "p.csv", "id,t,x,y\nn,0,1,2\nn,4,3,4\n")
    assert as_lists(video_labels(None, path, None, 0, 6, (64, 48))) == {"n": [[0, 1, 2], [4, 3, 4]]}
    with pytest.raises(InputError) as err:
        video_labels(None, path, None, 0, 4, (64, 48))
    assert str(err.value) == "point n has a label on frame 4, outside the video (frames 0..3)"
    with pytest.raises(InputError) as err:
        given_labels(None, None, None, 0, (64, 48))
    assert str(err.value) == "give the points with --points 'x,y;x,y', --grid N [--mask FILE] or --points-file FILE"
    with pytest.raises(InputError) as err:
        given_labels("1,2", None, None, 6, (64, 48), num_frames=6)
    assert str(err.value) == "--ref-frame 6 is past the end of the video (frames 0..5)"


def test_one_image_check_with_the_shape_and_dtype_in_its_message():
    image = np.zeros((4, 5, 3), np.uint8)
    assert check_image(image) is image or np.shares_memory(check_image(image), image)
    for bad, name, message in [
        (np.zeros((4, 5), np.uint8), "frame", "frame must be an HxWx3 uint8 RGB array, got shape (4, 5) dtype uint8"),
        (np.zeros((4, 5, 3), np.float32), "image",
         "image must be an HxWx3 uint8 RGB array, got shape (4, 5, 3) dtype float32"),
        ([[1, 2]], "source image", "source image must be an HxWx3 uint8 RGB array, got shape None dtype list"),
        (np.zeros((1, 5, 3), np.uint8), "target image", "target image is too small: 5x1 pixels"),
    ]:
        with pytest.raises(InputError) as err:
            check_image(bad, name)
        assert str(err.value) == message


def test_render_and_the_method_share_the_image_check():
    with pytest.raises(InputError) as err:
        blend_heatmap(np.zeros((4, 5), np.uint8), np.zeros((4, 5)))
    assert str(err.value) == "frame must be an HxWx3 uint8 RGB array, got shape (4, 5) dtype uint8"


# --------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [random_image(48, 64, seed=k) for k in range(6)], fps=12.0)
    return path


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.csv", "id,t,x,y\nnose,2,10,10\nnose,2,12,12\n", "points file p.csv: point nose has two labels on frame 2"),
    ("p.csv", "id,t,x,y\nnose,2,10,10\nnose,4,70,12\n",
     "point nose (70, 12) on frame 4 is outside the frame (64x48 pixels)"),
    ("p.csv", "id,t,x,y\nnose,2,10,10\nnose,6,12,12\n",
     "point nose has a label on frame 6, outside the video (frames 0..5)"),
    ("p.json", '[{"id": 0, "t": 0, "x": 1, "y": 2}, {"t": 1, "x": 1, "y": 2}]',
     "points file p.json entry 1 has no id, but other rows have one: give every row an id, or none"),
    ("p.csv", "t,x,y\n2.5,10,10\n", "point 0 is on frame 2.5: a frame index must be a whole number"),
    ("p.csv", "t,x\n0,10\n", "points file p.csv has a header without the column 'y'"),
])
def test_track_refuses_bad_points_files_in_one_line_before_any_work(clip, tmp_path, name, text, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--points-file", str(write(tmp_path, name, text)), "-o",
                                 str(out), *TINY])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not out.exists()


def test_track_reads_the_header_not_the_column_order(clip, tmp_path):
    path = write(tmp_path, "p.csv", "x,y,t\n60,40,2\n")
    result = runner.invoke(app, ["track", str(clip), "--points-file", str(path), "-o", str(tmp_path / "out"),
                                 "--no-video", "--keyframes", "0", *TINY])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "tracks.npz")["queries"], [[2, 60, 40]])


# --------------------------------------------------------------------------------------- a batch's videos


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    for k, name in enumerate("abc"):
        paths[name] = folder / f"{name}.avi"
        write_lossless_video(paths[name], [random_image(48, 64, seed=10 * k + j) for j in range(4)], fps=10.0)
    return paths


def test_a_batchs_per_video_labels_are_checked_per_video(clips, tmp_path):
    text = ("video,id,t,x,y\n"
            "a.avi,nose,1,10.5,12.5\na.avi,tail,0,30.5,20.5\n"  # one label per point: tracked
            "b.avi,nose,0,10,10\nb.avi,nose,3,12,12\n"  # two labels of one point: fitted jointly
            "c.avi,nose,0,10,10\nc.avi,tail,2,70,1\n")  # a label outside its frame
    path = write(tmp_path, "points.csv", text)
    videos = [clips[name] for name in "abc"]
    points = points_for_videos(read_video_points_file(path), videos, base=clips["a"].parent)
    job = prepare_batch([str(v) for v in videos], tmp_path / "out", points=points)
    assert [v.error for v in job.videos] == [None, None, "point tail (70, 1) is outside the frame (64x48 pixels)"]
    np.testing.assert_array_equal(job.videos[0].queries.queries, [[1, 10.5, 12.5], [0, 30.5, 20.5]])
    assert [rows.tolist() for rows in job.videos[1].queries.labels] == [[[0, 10, 10], [3, 12, 12]]]


def test_a_batch_refuses_a_bad_per_video_file_in_one_line_before_any_work(clips, tmp_path):
    path = write(tmp_path, "points.csv", "video,id,t,x,y\na.avi,nose,1,10,12\nc.avi,,0,30,20\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clips["a"]), str(clips["c"]), "--points-file", str(path), "-o",
                                 str(out), *TINY])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: points file points.csv line 3 has no id, but other rows have one: give every row an id, or none"]
    assert not out.exists()


def test_a_batch_tracks_a_per_video_file_with_ids(clips, tmp_path):
    path = write(tmp_path, "points.json", json.dumps([
        {"video": "a.avi", "id": "nose", "t": 1, "x": 10.5, "y": 12.5},
        {"video": "c", "id": "nose", "t": 2, "x": 40.5, "y": 30.5},
        {"video": "a.avi", "id": "tail", "t": 0, "x": 30.5, "y": 20.5}]))
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clips["a"]), str(clips["c"]), "--points-file", str(path), "-o",
                                 str(out), "--no-video", "--keyframes", "0", *TINY])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out / "a" / "tracks.npz")["queries"], [[1, 10.5, 12.5], [0, 30.5, 20.5]])
    np.testing.assert_array_equal(np.load(out / "c" / "tracks.npz")["queries"], [[2, 40.5, 30.5]])


def test_track_fits_a_point_on_all_its_labels_from_a_points_file(clip, tmp_path):
    out = tmp_path / "out"
    points = write(tmp_path, "p.csv", "id,t,x,y\nnose,3,12.5,12.5\nnose,0,10.5,10.5\ntail,2,40.5,30.5\n")
    result = runner.invoke(app, ["track", str(clip), "--points-file", str(points), "-o", str(out), "--no-video",
                                 "--keyframes", "0", *TINY])
    assert result.exit_code == 0, result.output
    tracks = Tracks.load_npz(out / "tracks.npz")
    assert tracks.labels.ids == ("nose", "tail")
    assert [rows.tolist() for rows in tracks.labels.labels] == [[[0, 10.5, 10.5], [3, 12.5, 12.5]], [[2, 40.5, 30.5]]]
    # Each label holds its frame, visible with confidence 1.
    assert tracks.points[[0, 3], 0].tolist() == [[10.5, 10.5], [12.5, 12.5]]
    assert tracks.confidence[[0, 3], 0].tolist() == [1, 1]
