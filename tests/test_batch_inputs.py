"""The batch's inputs: expansion, output names, shards balanced by frames, per-video points, local failures."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video

import vidcorr
from vidcorr.errors import InputError
from vidcorr.runs import inputs as bi
from vidcorr.runs.outcome import DONE, FAILED, run_video


def _touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """clips/ with videos, a frame folder, a mixed folder, a text file and a hidden file."""
    clips = tmp_path / "clips"
    _touch(clips / "clip10.mp4", clips / "clip2.MOV", clips / "Clip1.avi", clips / "notes.txt", clips / ".hidden.mp4",
           clips / "seq3" / "00001.jpg", clips / "seq3" / "00002.png", clips / "seq3" / ".DS_Store",
           clips / "mixed" / "00001.jpg", clips / "mixed" / "readme.md",
           clips / "empty_sub" / "nested" / "deeper" / "a.jpg")
    return tmp_path


def _names(paths: list[Path], root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in paths]


def test_a_folder_gives_its_videos_and_frame_folders_in_natural_order(tree):
    videos = bi.expand_inputs(["clips"], cwd=tree)
    assert _names(videos, tree) == ["clips/Clip1.avi", "clips/clip2.MOV", "clips/clip10.mp4", "clips/seq3"]
    assert all(v.is_absolute() for v in videos)


def test_a_frame_folder_given_itself_is_one_video(tree):
    assert _names(bi.expand_inputs([tree / "clips" / "seq3"]), tree) == ["clips/seq3"]


def test_files_globs_and_order_and_duplicates(tree):
    videos = bi.expand_inputs(["clips/clip10.mp4", "clips/clip*", "clips/Clip1.avi"], cwd=tree)
    # The explicit file first, then the glob's matches in natural order; a path already listed is not repeated.
    assert _names(videos, tree) == ["clips/clip10.mp4", "clips/clip2.MOV", "clips/Clip1.avi"]
    # A glob takes video files (by suffix) and frame folders, nothing else.
    assert _names(bi.expand_inputs(["clips/*"], cwd=tree), tree) == [
        "clips/Clip1.avi", "clips/clip2.MOV", "clips/clip10.mp4", "clips/seq3"]
    assert _names(bi.expand_inputs([str(tree / "**" / "seq*")]), tree) == ["clips/seq3"]


def test_a_list_file_with_comments_blank_lines_and_paths_relative_to_it(tree):
    lists = tree / "lists"
    lists.mkdir()
    (lists / "batch.txt").write_text("# my batch\n\n../clips/clip2.MOV\n   # indented comment\n"
                                     f"{tree / 'clips' / 'seq3'}\n../clips/clip1*\n")
    videos = bi.expand_inputs(["clips/Clip1.avi"], tree / "lists" / "batch.txt", cwd=tree)
    assert _names(videos, tree) == ["clips/Clip1.avi", "clips/clip2.MOV", "clips/seq3", "clips/clip10.mp4"]


@pytest.mark.parametrize(("inputs", "list_text", "message"), [
    (["clips/nope.mp4"], None, "input 'clips/nope.mp4' does not exist"),
    (["clips/*.mkv"], None, "'clips/*.mkv' matches no files"),
    (["clips/mix*"], None, "'clips/mix*' matches no video files or frame folders"),
    (["clips/empty_sub"], None, "folder '{root}/clips/empty_sub' holds no videos (files .mp4, .m4v, .mov, .mkv, "
                                ".avi, ... or sub-folders of frames)"),
    ([], None, "give at least one video (a file, a folder, a glob or --list FILE)"),
    ([], "# only a comment\n\n", "list file 'list.txt' lists no videos"),
    ([], "clips/clip2.MOV\n\n# c\nclips/gone.mp4\n", "list.txt:4: input 'clips/gone.mp4' does not exist"),
])
def test_bad_inputs_are_one_line(tree, inputs, list_text, message):
    list_file = None
    if list_text is not None:
        (tree / "list.txt").write_text(list_text)
        list_file = "list.txt"
    with pytest.raises(InputError) as err:
        bi.expand_inputs(inputs, list_file, cwd=tree)
    assert str(err.value) == message.format(root=tree)


def test_a_missing_list_file(tmp_path):
    with pytest.raises(InputError) as err:
        bi.expand_inputs([], tmp_path / "none.txt")
    assert str(err.value) == f"list file {str(tmp_path / 'none.txt')!r} does not exist"


# ------------------------------------------------------------------------------------------- names


def test_output_names_are_stems_made_safe():
    videos = [Path("/d/my clip (1).mp4"), Path("/d/.hidden"), Path("/d/séq-2"), Path("/d/a.b.avi")]
    assert list(bi.output_names(videos).values()) == ["my_clip_1", "hidden", "s_q-2", "a.b"]


def test_collisions_get_parent_names_then_a_hash_whatever_the_order():
    videos = [Path("/data/cam1/clip.mp4"), Path("/data/cam2/clip.mp4"), Path("/data/cam2/Clip.avi"),
              Path("/data/other.mp4"), Path("/x/run/cam1/clip.mp4")]
    names = bi.output_names(videos)
    sha8 = hashlib.sha256(b"/data/cam2/Clip.avi").hexdigest()[:8]
    sha8b = hashlib.sha256(b"/data/cam2/clip.mp4").hexdigest()[:8]
    assert names == {
        # "clip" x4 (case-blind) -> parents: cam1__clip x2 -> two levels: data__cam1__clip, run__cam1__clip
        Path("/data/cam1/clip.mp4"): "data__cam1__clip",
        Path("/x/run/cam1/clip.mp4"): "run__cam1__clip",
        # same folder, same stem up to case: parents never separate them -> the path's hash
        Path("/data/cam2/clip.mp4"): f"clip-{sha8b}",
        Path("/data/cam2/Clip.avi"): f"Clip-{sha8}",
        Path("/data/other.mp4"): "other",
    }
    assert bi.output_names(list(reversed(videos))) == names


def test_previous_names_are_kept_when_the_batch_grows():
    first = bi.output_names([Path("/a/clip.mp4")])
    assert first == {Path("/a/clip.mp4"): "clip"}
    grown = bi.output_names([Path("/a/clip.mp4"), Path("/b/clip.mp4")],
                            previous={str(k): v for k, v in first.items()})
    assert grown == {Path("/a/clip.mp4"): "clip", Path("/b/clip.mp4"): "b__clip"}
    # Without the record both would be renamed.
    assert bi.output_names([Path("/a/clip.mp4"), Path("/b/clip.mp4")]) == {
        Path("/a/clip.mp4"): "a__clip", Path("/b/clip.mp4"): "b__clip"}


# ------------------------------------------------------------------------------------------ points


def test_points_file_csv_with_a_header_in_any_order(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,label,video,y,t\n10.5,eye,a.mp4,20.5,3\n1,nose,b,2,0\n30,ear,a.mp4,40,5\n")
    points = bi.read_video_points_file(path)
    assert list(points) == ["a.mp4", "b"]
    assert points["a.mp4"].tolist() == [[3, 10.5, 20.5], [5, 30, 40]]
    assert points["b"].tolist() == [[0, 1, 2]]


def test_points_file_csv_without_a_header_and_without_t(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a.mp4,2,10,20\n\na.mp4,11,21\n")
    assert bi.read_video_points_file(path)["a.mp4"].tolist() == [[2, 10, 20], [0, 11, 21]]
    path.write_text("video,x,y\nc,5,6\n")
    assert bi.read_video_points_file(path)["c"].tolist() == [[0, 5, 6]]


def test_points_file_json_rows_and_mapping(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"points": [{"video": "a", "t": 1, "x": 2, "y": 3}, {"video": "b", "x": 4, "y": 5}]}))
    assert {k: v.tolist() for k, v in bi.read_video_points_file(path).items()} == {"a": [[1, 2, 3]], "b": [[0, 4, 5]]}
    path.write_text(json.dumps({"a": [[1, 2, 3], [4, 5]], "b": [[0, 7, 8]]}))
    assert {k: v.tolist() for k, v in bi.read_video_points_file(path).items()} == {
        "a": [[1, 2, 3], [0, 4, 5]], "b": [[0, 7, 8]]}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.csv", "video,t,x,y\na,1,zz,3\n", "points file p.csv line 2: ['1', 'zz', '3'] are not numbers"),
    ("p.csv", "video,t,x,y\n,1,2,3\n", "points file p.csv line 2: no video"),
    ("p.csv", "video,t,x\na,1,2\n", "points file p.csv has a header without the column 'y'"),
    ("p.csv", "a,1,2,3,4\n", "points file p.csv line 1: expected t, x, y (or x, y), got 4 values"),
    ("p.csv", "a,1,nan,3\n", "points file p.csv line 1: ['1', 'nan', '3'] are not finite numbers"),
    ("p.csv", "\n\n", "points file p.csv has no points"),
    ("p.json", "[1, 2]", "points file p.json entry 0: expected an object with video, t, x, y"),
    ("p.json", "{\"a\": 3}", "points file p.json entry 'a': expected a list of [t, x, y] rows"),
])
def test_bad_points_files_are_one_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as err:
        bi.read_video_points_file(tmp_path / name)
    assert str(err.value) == message


def test_points_are_matched_to_the_batch_by_path_name_or_stem(tmp_path):
    videos = [tmp_path / "cam1" / "clip.mp4", tmp_path / "cam2" / "clip.mp4", tmp_path / "solo.avi",
              tmp_path / "frames" / "seq"]
    q = {k: np.array([[float(i), 1.0, 2.0]]) for i, k in enumerate(["cam1/clip.mp4", "cam2/clip.mp4", "solo", "seq"])}
    matched = bi.points_for_videos(q, videos, base=tmp_path)
    assert [matched[v][0, 0] for v in videos] == [0, 1, 2, 3]
    with pytest.raises(InputError) as err:
        bi.points_for_videos({"clip.mp4": q["solo"], "solo": q["solo"], "seq": q["seq"]}, videos, base=tmp_path)
    assert str(err.value).startswith("points for video 'clip.mp4' match 2 videos of the batch (")
    with pytest.raises(InputError) as err:
        bi.points_for_videos({**q, "ghost.mp4": q["solo"]}, videos, base=tmp_path)
    assert str(err.value) == "points for video 'ghost.mp4': no such video in the batch"
    with pytest.raises(InputError) as err:
        bi.points_for_videos({"solo": q["solo"]}, videos, base=tmp_path)
    assert str(err.value) == f"the points file has no points for video {str(videos[0])!r} (and 2 more)"


# ---------------------------------------------------------------------------------------- failures


def test_a_corrupt_video_fails_alone_and_the_others_complete(tiny, tmp_path):
    good = tmp_path / "good.avi"
    write_lossless_video(good, [random_image(64, 64, seed=k) for k in range(4)])
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 50)
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=2, lr=0.05)
    queries = np.array([[0, 20.5, 30.5]])

    outcomes = [run_video(v, lambda p: vidcorr.track(tiny, p, queries, cfg)) for v in (truncated, good, garbage)]
    assert [o.status for o in outcomes] == [FAILED, DONE, FAILED]
    # Fitting or tracking fails on some frame (which one depends on the backend).
    assert re.fullmatch(rf"cannot decode frame [0-3] of video {re.escape(repr(str(truncated)))} \(it announces "
                        r"[2-4] frames\): the file may be truncated or corrupt", outcomes[0].error), outcomes[0].error
    assert outcomes[2].error == f"cannot read video {str(garbage)!r}: no decodable video stream"
    assert outcomes[1].result.points.shape == (4, 1, 2) and outcomes[1].error is None


def test_only_user_errors_are_recorded():
    with pytest.raises(ZeroDivisionError):
        run_video("v.mp4", lambda p: 1 / 0)
    outcome = run_video("v.mp4", lambda p: (_ for _ in ()).throw(InputError("first line\nsecond")))
    assert outcome.failed and outcome.error == "first line" and outcome.video == Path("v.mp4")
