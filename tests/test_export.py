"""`vidcorr export`: each format read back by the tools its users read it with (movement's default loaders,
sleap-io, pynwb + ndx-pose, pandas as DeepLabCut reads its files, vidcorr's tapnet-faithful TAP-Vid reader), with
the video's frame numbers and times after a start and a stride; labels as SLEAP user instances and as DeepLabCut
training data; outputs that exist, or are the input, refused in one line."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_tracks import damage_one_byte
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.eval.tapvid.data import load_tapvid_pickle, read_davis
from vidcorr.io.export import DlcOptions, dlc_image_name, export_tracks, training_frames
from vidcorr.io.points import PointLabels
from vidcorr.io.tracks import Tracks
from vidcorr_cli.app import app

runner = CliRunner()
FPS = 29.97
FRAMES = [2, 5, 8, 11, 14]  # tracked with --start 2 --stride 3: rows are not frames 0..T-1
TIMES = np.arange(15) / FPS  # the video's frames 0..14, in seconds
WIDTH, HEIGHT = 64, 48
# (T=5, N=3) points, x, y in vidcorr's convention (the centre of the top-left pixel is (0.5, 0.5)).
POINTS = np.array([[[0.5, 0.5], [32.5, 24.0], [63.5, 47.5]],
                   [[1.5, 2.5], [33.0, 24.5], [60.25, 40.75]],
                   [[2.5, 4.5], [33.5, 25.0], [58.0, 38.0]],
                   [[3.5, 6.5], [34.0, 25.5], [55.5, 35.25]],
                   [[4.5, 8.5], [34.5, 26.0], [52.0, 30.0]]], np.float32)
# Row 3 (frame 11) has no visible point: it must not vanish from any export.
VISIBLE = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1]], bool)
CONFIDENCE = np.array([[0.9, 0.8, 0.7], [0.85, 0.2, 0.75], [0.6, 0.55, 0.65], [0.3, 0.1, 0.2], [0.95, 0.9, 0.5]],
                      np.float32)
QUERIES = np.array([[2, 0.5, 0.5], [2, 32.5, 24.0], [2, 63.5, 47.5]], np.float32)


def make_tracks(video: str = "videos/clip.mp4") -> Tracks:
    return Tracks(points=POINTS, visible=VISIBLE, confidence=CONFIDENCE, queries=QUERIES, frame_indices=FRAMES,
                  fps=FPS, size=(WIDTH, HEIGHT), meta={"video": video, "model": "tiny", "visibility_threshold": 0.5})


@pytest.fixture
def tracks_file(tmp_path) -> Path:
    return make_tracks().save_npz(tmp_path / "tracks.npz")


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def hidden_nan_centred() -> np.ndarray:
    """x, y with the top-left pixel's centre at (0, 0) (SLEAP, NWB, DeepLabCut), NaN where not visible."""
    xy = POINTS.astype(np.float64) - 0.5
    xy[~VISIBLE] = np.nan
    return xy


def per_video_frame(rows: np.ndarray) -> np.ndarray:
    """(T, ...) tracked rows -> (15, ...) video frames 0..14, NaN on the frames not tracked."""
    out = np.full((15, *rows.shape[1:]), np.nan)
    out[FRAMES] = rows
    return out


# --------------------------------------------------------------------------------------- array layouts


def test_tapvid_npz_has_the_points_as_fractions_occluded_and_the_video_frames(tracks_file):
    result = export(str(tracks_file), "--format", "tapvid")
    assert result.exit_code == 0, result.output
    out = tracks_file.with_name("tracks_tapvid.npz")
    assert result.output == f"wrote {out}\n"
    data = np.load(out, allow_pickle=False)
    assert data["points"].shape == (3, 5, 2) and data["points"].dtype == np.float32
    assert data["points"][1, 0].tolist() == [0.5078125, 0.5]  # 32.5 / 64, 24 / 48
    assert data["points"][2, 0].tolist() == [0.9921875, 0.9895833134651184]  # 63.5 / 64, 47.5 / 48 (float32)
    np.testing.assert_allclose(data["points"], POINTS.transpose(1, 0, 2) / [WIDTH, HEIGHT], rtol=1e-7)
    assert data["occluded"].tolist() == [[False, False, False, True, False], [False, True, False, True, False],
                                         [False, False, False, True, False]]
    assert data["frame_indices"].tolist() == FRAMES and data["size"].tolist() == [WIDTH, HEIGHT]
    assert data["fps"] == FPS  # times: frame_indices / fps


def test_tapvid_pickle_is_a_tapvid_example_that_the_tapvid_reader_takes(tracks_file, tmp_path):
    out = tmp_path / "example.pkl"
    assert export(str(tracks_file), "--format", "tapvid", "-o", str(out)).exit_code == 0
    example = load_tapvid_pickle(out)  # the restricted unpickler: numpy arrays and builtins only
    assert sorted(example) == ["fps", "frame_indices", "occluded", "points", "size"]
    np.testing.assert_array_equal(example["points"], POINTS.transpose(1, 0, 2) / np.float32([WIDTH, HEIGHT]))
    # With its frames, it is a TAP-Vid-DAVIS video: the reader gives back the tracks in pixels.
    davis = tmp_path / "davis.pkl"
    with open(davis, "wb") as f:
        pickle.dump({"clip": {**example, "video": np.zeros((5, HEIGHT, WIDTH, 3), np.uint8)}}, f)
    (video,) = read_davis(davis, full_res=True)
    np.testing.assert_allclose(video.points, POINTS.transpose(1, 0, 2), atol=1e-5)
    np.testing.assert_array_equal(video.occluded, ~VISIBLE.T)


def test_cotracker_layout(tracks_file):
    assert export(str(tracks_file), "--format", "cotracker").exit_code == 0
    data = np.load(tracks_file.with_name("tracks_cotracker.npz"), allow_pickle=False)
    assert data["pred_tracks"].shape == (1, 5, 3, 2) and data["pred_visibility"].shape == (1, 5, 3)
    np.testing.assert_array_equal(data["pred_tracks"][0], POINTS)  # pixels, as the tracks
    np.testing.assert_array_equal(data["pred_visibility"][0], VISIBLE)
    np.testing.assert_array_equal(data["queries"], QUERIES[None])
    assert data["frame_indices"].tolist() == FRAMES and data["fps"] == FPS


# ------------------------------------------------------------------------------------------- DeepLabCut


def test_dlc_csv_has_a_row_per_video_frame_and_likelihood(tracks_file):
    assert export(str(tracks_file), "--format", "dlc", "--names", "nose,tail,ear").exit_code == 0
    lines = tracks_file.with_name("tracks_dlc.csv").read_text().splitlines()
    assert lines[0] == "scorer," + ",".join(["vidcorr"] * 9)
    assert lines[1] == "bodyparts,nose,nose,nose,tail,tail,tail,ear,ear,ear"
    assert lines[2] == "coords," + ",".join(["x", "y", "likelihood"] * 3)
    # Frames 0, 1 (before --start) and those between the strides hold NaN; frame 2 is the first row: pixel
    # indices (x - 0.5), likelihood = confidence, on every tracked frame (visible or not).
    assert lines[3] == "0," + ",".join(["NaN"] * 9)
    assert lines[5] == "2,0.0,0.0,0.9,32.0,23.5,0.8,63.0,47.0,0.7"
    assert lines[8] == "5,1.0,2.0,0.85,32.5,24.0,0.2,59.75,40.25,0.75"
    assert lines[14] == "11,3.0,6.0,0.3,33.5,25.0,0.1,55.0,34.75,0.2"
    assert len(lines) == 3 + 15


def test_dlc_csv_reads_back_with_pandas_as_deeplabcut_reads_it(tracks_file):
    pd = pytest.importorskip("pandas")
    assert export(str(tracks_file), "--format", "dlc").exit_code == 0
    frame = pd.read_csv(tracks_file.with_name("tracks_dlc.csv"), header=[0, 1, 2], index_col=0)
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    assert frame.index.tolist() == list(range(15))
    for k in range(3):
        part = frame["vidcorr"][f"point_{k}"]
        np.testing.assert_array_equal(part["x"].to_numpy(), per_video_frame(POINTS[:, k, 0] - np.float32(0.5)))
        np.testing.assert_array_equal(part["y"].to_numpy(), per_video_frame(POINTS[:, k, 1] - np.float32(0.5)))
        np.testing.assert_array_equal(part["likelihood"].to_numpy(np.float32),
                                      per_video_frame(CONFIDENCE[:, k]).astype(np.float32))


def test_dlc_csv_reads_back_with_movement_at_the_video_frames_and_times(tracks_file):
    load_poses = pytest.importorskip("movement.io.load_poses")
    assert export(str(tracks_file), "--format", "dlc").exit_code == 0
    ds = load_poses.from_dlc_file(tracks_file.with_name("tracks_dlc.csv"), fps=FPS)
    np.testing.assert_allclose(ds.time.values, TIMES, rtol=1e-12)  # time k is frame k's
    position = ds.position.values[:, :, :, 0]  # (time, space, keypoints)
    np.testing.assert_allclose(position.transpose(0, 2, 1), per_video_frame(POINTS - 0.5), atol=1e-6)
    np.testing.assert_allclose(ds.confidence.values[:, :, 0], per_video_frame(CONFIDENCE), atol=1e-6)


def test_dlc_csv_reads_back_with_sleap_ios_deeplabcut_reader(tracks_file):
    sio = pytest.importorskip("sleap_io")
    assert export(str(tracks_file), "--format", "dlc").exit_code == 0
    # sleap-io's reader is made for labelled-data CSVs: it keeps the rows whose image it finds, by the row's
    # name relative to the CSV. Give each tracked frame one (the frame number, as analysis CSVs name rows).
    for frame in FRAMES:
        (tracks_file.parent / str(frame)).write_bytes(b"")
    labels = sio.load_dlc(str(tracks_file.with_name("tracks_dlc.csv")), config=False)
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    # It numbers frames by row: rows are the video's frames, and only the tracked ones hold an instance.
    assert [lf.frame_idx for lf in labels if lf.instances] == FRAMES
    got = np.stack([lf.instances[0].numpy() for lf in labels if lf.instances])
    np.testing.assert_allclose(got, POINTS - 0.5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- sleap-io


def test_slp_has_predictions_on_tracked_frames_and_the_queries_as_user_instances(tracks_file):
    sio = pytest.importorskip("sleap_io")
    result = export(str(tracks_file), "--format", "slp")
    assert result.exit_code == 0, result.output
    labels = sio.load_slp(str(tracks_file.with_name("tracks.slp")))
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    assert [lf.frame_idx for lf in labels] == FRAMES  # frame 11, with no visible point, included
    assert labels.video.filename == "videos/clip.mp4"
    assert [t.name for t in labels.tracks] == ["vidcorr"]
    predicted = [lf.predicted_instances for lf in labels]
    assert [len(p) for p in predicted] == [1] * 5
    scored = np.stack([p[0].numpy(scores=True) for p in predicted])  # (T, N, 3): x, y, score
    np.testing.assert_allclose(scored[..., :2], hidden_nan_centred(), atol=1e-6)
    np.testing.assert_allclose(scored[..., 2], CONFIDENCE, atol=1e-6)
    np.testing.assert_allclose([p[0].score for p in predicted], CONFIDENCE.mean(axis=1), atol=1e-6)
    # A hidden point keeps its tracked position, with SLEAP's visible flag off.
    hidden = predicted[3][0].points
    assert hidden["visible"].tolist() == [False] * 3
    np.testing.assert_allclose(hidden["xy"], POINTS[3] - 0.5, atol=1e-6)
    # Every query was on frame 2: one user instance there, at the queries, linked to the frame's prediction.
    assert [len(lf.user_instances) for lf in labels] == [1, 0, 0, 0, 0]
    (user,) = labels[0].user_instances
    np.testing.assert_allclose(user.numpy(), QUERIES[:, 1:] - 0.5, atol=1e-6)
    assert user.track.name == "vidcorr" and user.from_predicted is not None


def test_slp_with_labels_on_several_frames(tmp_path):
    """Labels (corrections made in review, a point marked not visible) are user instances on their frames,
    tracked frames predicted instances; the other points of a labelled frame are what the person saw there."""
    sio = pytest.importorskip("sleap_io")
    tracks = make_tracks()
    tracks.labels = PointLabels(("a", "b", "c"), (
        np.array([[2, 0.5, 0.5], [8, 10.5, 12.5]]),           # a: query, and a correction on frame 8
        np.array([[2, 32.5, 24.0], [6, 40.5, 30.5]]),         # b: query, and a label on frame 6 (not tracked)
        np.array([[2, 63.5, 47.5], [8, np.nan, np.nan]])))    # c: query, and "not visible" on frame 8
    out = export_tracks(tracks, "slp", tmp_path / "labels.slp")
    labels = sio.load_slp(str(out))
    assert [lf.frame_idx for lf in labels] == [2, 5, 6, 8, 11, 14]
    users = {lf.frame_idx: lf.user_instances for lf in labels if lf.user_instances}
    assert sorted(users) == [2, 6, 8]
    assert all(not lf.predicted_instances for lf in labels if lf.frame_idx == 6)
    assert all(len(lf.predicted_instances) == 1 for lf in labels if lf.frame_idx != 6)
    nan = np.nan
    expected = {
        2: [[0.0, 0.0], [32.0, 23.5], [63.0, 47.0]],
        6: [[nan, nan], [40.0, 30.0], [nan, nan]],  # frame 6 was not tracked: only its label
        8: [[10.0, 12.0], [33.0, 24.5], [nan, nan]],  # a corrected, b as tracked (visible), c not visible
    }
    for frame, xy in expected.items():
        np.testing.assert_allclose(users[frame][0].numpy(), xy, atol=1e-6)


def test_slp_reads_back_with_movement_at_the_video_frames(tracks_file):
    load_poses = pytest.importorskip("movement.io.load_poses")
    assert export(str(tracks_file), "--format", "slp").exit_code == 0
    ds = load_poses.from_sleap_file(tracks_file.with_name("tracks.slp"), fps=FPS)
    np.testing.assert_allclose(ds.time.values, TIMES, rtol=1e-12)
    position = ds.position.values[:, :, :, 0].transpose(0, 2, 1)  # (time, keypoints, space)
    # movement takes the user instance (the queries, no score) over the prediction on frame 2.
    np.testing.assert_allclose(position, per_video_frame(hidden_nan_centred()), atol=1e-6)
    confidence = per_video_frame(CONFIDENCE)
    confidence[2] = np.nan
    np.testing.assert_allclose(ds.confidence.values[:, :, 0], confidence, atol=1e-6)


def test_slp_takes_point_names(tracks_file, tmp_path):
    sio = pytest.importorskip("sleap_io")
    out = tmp_path / "named.slp"
    assert export(str(tracks_file), "--format", "slp", "--names", "nose, tail,ear", "-o", str(out)).exit_code == 0
    assert sio.load_slp(str(out)).skeleton.node_names == ["nose", "tail", "ear"]


# --------------------------------------------------------------------------------------------------- NWB


def test_nwb_follows_ndx_poses_convention_read_back_with_pynwb(tracks_file):
    pytest.importorskip("sleap_io")
    result = export(str(tracks_file), "--format", "nwb")
    assert result.exit_code == 0, result.output
    from pynwb import NWBHDF5IO

    import vidcorr

    with NWBHDF5IO(str(tracks_file.with_name("tracks.nwb")), "r", load_namespaces=True) as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        estimation = behavior["PoseEstimation"]
        assert estimation.source_software == "vidcorr"
        assert estimation.source_software_version == vidcorr.__version__
        assert list(estimation.original_videos[:]) == ["videos/clip.mp4"]
        assert estimation.dimensions[:].tolist() == [[HEIGHT, WIDTH]]
        assert list(estimation.skeleton.nodes[:]) == ["point_0", "point_1", "point_2"]
        assert estimation.skeleton is behavior["Skeletons"].skeletons["vidcorr"]
        assert list(estimation.pose_estimation_series) == ["point_0", "point_1", "point_2"]
        for k in range(3):
            series = estimation.pose_estimation_series[f"point_{k}"]
            assert series.rate is None  # explicit timestamps: 29.97 fps is not rounded to 29
            np.testing.assert_array_equal(series.timestamps[:], TIMES)  # the video's frames 0..14
            # Tracked frames hold x, y visible or not (as DeepLabCut's files), the others NaN.
            np.testing.assert_allclose(series.data[:], per_video_frame(POINTS[:, k] - 0.5), atol=1e-6)
            np.testing.assert_allclose(series.confidence[:], per_video_frame(CONFIDENCE[:, k]), atol=1e-6)
            assert "centre of the top-left pixel is (0, 0)" in series.reference_frame
            assert series.confidence_definition.endswith("visible where >= 0.5")


def test_nwb_reads_back_with_movements_default_loader(tracks_file):
    load_poses = pytest.importorskip("movement.io.load_poses")
    assert export(str(tracks_file), "--format", "nwb").exit_code == 0
    ds = load_poses.from_nwb_file(tracks_file.with_name("tracks.nwb"))
    assert ds.attrs["source_software"] == "vidcorr" and ds.attrs["fps"] == FPS
    np.testing.assert_allclose(ds.time.values, TIMES, rtol=1e-12)
    assert list(ds.keypoints.values) == ["point_0", "point_1", "point_2"]
    position = ds.position.values[:, :, :, 0].transpose(0, 2, 1)  # (time, keypoints, space)
    np.testing.assert_allclose(position, per_video_frame(POINTS - 0.5), atol=1e-6)
    np.testing.assert_allclose(ds.confidence.values[:, :, 0], per_video_frame(CONFIDENCE), atol=1e-6)


def test_nwb_reads_back_with_sleap_io_at_the_video_frames(tracks_file):
    sio = pytest.importorskip("sleap_io")
    assert export(str(tracks_file), "--format", "nwb").exit_code == 0
    labels = sio.load_nwb(str(tracks_file.with_name("tracks.nwb")))
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    assert labels.video.filename == "videos/clip.mp4"
    assert [lf.frame_idx for lf in labels] == FRAMES  # not 0..4, and frame 11 (nothing visible) is there
    scored = np.stack([lf.instances[0].numpy(scores=True) for lf in labels])
    np.testing.assert_allclose(scored[..., :2], POINTS - 0.5, atol=1e-6)
    np.testing.assert_allclose(scored[..., 2], CONFIDENCE, atol=1e-6)


# ------------------------------------------------------------------------------ DeepLabCut labelled data


@pytest.fixture
def clip_folder(tmp_path) -> tuple[Path, np.ndarray]:
    """A 15-frame 64x48 frame folder (PNG: lossless, so exported images compare exactly)."""
    frames = np.random.default_rng(3).integers(0, 256, (15, HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder = tmp_path / "videos" / "clip"
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return folder, frames


def test_training_frames_rule_by_hand():
    tracks = make_tracks()
    # Frames 2..14 in 2 spans: (f - 2) * 2 // 13 -> frames 2, 5, 8 in span 0; 11, 14 in span 1. Every point
    # visible with confidence >= 0.5: frames 2 (lowest 0.7), 8 (0.55), 14 (0.5). Frame 2 is labelled.
    assert training_frames(tracks, 2, 0.5, exclude=[2]) == [8, 14]
    assert training_frames(tracks, 2, 0.5) == [2, 14]  # span 0: frame 2's 0.7 beats frame 8's 0.55
    assert training_frames(tracks, 2, 0.6, exclude=[2]) == []
    assert training_frames(tracks, 1, 0.5, exclude=[2]) == [8]  # one span: the best of 8 (0.55) and 14 (0.5)
    assert training_frames(tracks, 0) == []
    # 5 spans over 13 frames: (f - 2) * 5 // 13 -> 0, 1, 2, 3, 4: each tracked frame its own span.
    assert training_frames(tracks, 5, 0.0) == [2, 8, 14]  # frames 5 and 11 have hidden points


def test_dlc_project_is_read_back_as_deeplabcut_reads_it(tracks_file, clip_folder, tmp_path):
    pd = pytest.importorskip("pandas")
    folder, frames = clip_folder
    project = tmp_path / "project"
    result = export(str(tracks_file.parent), "--format", "dlc-project", "--video", str(folder), "--frames", "2",
                    "--names", "nose,tail,ear", "--scorer", "Ann", "-o", str(project))
    assert result.exit_code == 0, result.output
    data_folder = project / "labeled-data" / "clip"
    assert result.output == f"wrote {data_folder}\n"
    # 15 frames: DeepLabCut pads to ceil(log10(15)) = 2 digits.
    assert sorted(p.name for p in data_folder.iterdir()) == [
        "CollectedData_Ann.csv", "CollectedData_Ann.h5", "img02.png", "img08.png", "img14.png"]
    from_h5 = pd.read_hdf(data_folder / "CollectedData_Ann.h5")
    from_csv = pd.read_csv(data_folder / "CollectedData_Ann.csv", header=[0, 1, 2], index_col=0)
    for data in (from_h5, from_csv):
        assert data.columns.names == ["scorer", "bodyparts", "coords"]
        assert data.columns.tolist() == [("Ann", part, c) for part in ("nose", "tail", "ear") for c in ("x", "y")]
        assert data.index.tolist() == ["labeled-data/clip/img02.png", "labeled-data/clip/img08.png",
                                       "labeled-data/clip/img14.png"]
        xy = data.to_numpy().reshape(3, 3, 2)
        np.testing.assert_array_equal(xy[0], QUERIES[:, 1:] - 0.5)  # the labels (frame 2) minus 0.5
        np.testing.assert_array_equal(xy[1:], POINTS[[2, 4]] - 0.5)  # frames 8 and 14 as tracked
        for row, frame in zip(data.index, [2, 8, 14], strict=True):
            image = project / row  # paths relative to the project
            with Image.open(image) as img:
                assert img.size == (WIDTH, HEIGHT)
                np.testing.assert_array_equal(np.asarray(img), frames[frame])


def test_dlc_project_takes_labels_and_the_recorded_video(clip_folder, tmp_path):
    pytest.importorskip("pandas")
    folder, frames = clip_folder
    tracks = make_tracks(video=str(folder))
    tracks.labels = PointLabels(("a", "b", "c"), (
        np.array([[2, 0.5, 0.5], [8, 10.5, 12.5]]), np.array([[2, 32.5, 24.0]]),
        np.array([[2, 63.5, 47.5], [8, np.nan, np.nan]])))
    written = export_tracks(tracks, "dlc-project", tmp_path / "p", dlc=DlcOptions(tracked_frames=0))
    assert written == tmp_path / "p" / "labeled-data" / "clip"
    import pandas as pd

    data = pd.read_hdf(written / "CollectedData_vidcorr.h5")
    assert data.index.tolist() == ["labeled-data/clip/img02.png", "labeled-data/clip/img08.png"]
    np.testing.assert_array_equal(data.to_numpy()[1], [10.0, 12.0, 33.0, 24.5, np.nan, np.nan])


def test_dlc_project_refusals_are_one_line(tracks_file, clip_folder, tmp_path):
    pytest.importorskip("pandas")
    folder, _ = clip_folder
    project = tmp_path / "project"
    args = [str(tracks_file), "--format", "dlc-project", "--video", str(folder), "-o", str(project)]
    assert export(*args).exit_code == 0
    data_folder = project / "labeled-data" / "clip"
    result = export(*args)
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: output folder '{data_folder}' already exists; pass --overwrite to "
                                     "replace it")
    result = export(*args, "--frames", "0", "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in data_folder.iterdir()) == [
        "CollectedData_vidcorr.csv", "CollectedData_vidcorr.h5", "img02.png"]
    result = export(*args, "--scorer", "Bob", "--overwrite")  # someone else's labels are not replaced
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: output folder '{data_folder}' holds none of CollectedData_Bob.csv, "
                                     "CollectedData_Bob.h5: refusing to replace it; choose another folder")
    result = export(str(tracks_file), "--format", "dlc-project", "-o", str(tmp_path / "p2"))
    assert result.exit_code == 2
    assert result.output.strip() == ("error: the video the tracks were made on, 'videos/clip.mp4', does not exist "
                                     "here: pass --video")
    assert not (tmp_path / "p2").exists()


def test_dlc_image_names_follow_deeplabcuts_padding():
    # deeplabcut.extract_frames: "img" + str(index).zfill(int(ceil(log10(nframes)))) + ".png"
    assert [dlc_image_name(7, n) for n in (9, 10, 11, 100, 101, 1000)] == [
        "img7.png", "img7.png", "img07.png", "img07.png", "img007.png", "img007.png"]


# -------------------------------------------------------------------------------------------- bad input


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (lambda d: [str(d / "nope.npz"), "--format", "dlc"],
     lambda d: f"error: tracks file '{d / 'nope.npz'}' does not exist"),
    (lambda d: [str(d / "tracks.npz"), "--format", "mat"],
     lambda d: "error: unknown export format 'mat'; choose one of slp, nwb, dlc, dlc-project, tapvid, cotracker"),
    (lambda d: [str(d / "tracks.npz"), "--format", "dlc", "-o", str(d / "missing" / "t.csv")],
     lambda d: f"error: output folder '{d / 'missing'}' does not exist"),
    (lambda d: [str(d / "tracks.npz"), "--format", "dlc", "-o", str(d / "tracks.npz" / "t.csv")],
     lambda d: f"error: output folder '{d / 'tracks.npz'}' does not exist"),
    (lambda d: [str(d / "tracks.npz"), "--format", "tapvid", "-o", str(d)],
     lambda d: f"error: --format tapvid writes .npz or .pkl files, not '{d}'"),
    (lambda d: [str(d / "tracks.npz"), "--format", "cotracker", "-o", str(d / "t.pt")],
     lambda d: f"error: --format cotracker writes .npz files, not '{d / 't.pt'}'"),
    (lambda d: [str(d / "tracks.npz"), "--format", "dlc", "--names", "a,b"],
     lambda d: "error: 2 point names for 3 points"),
    (lambda d: [str(d / "tracks.npz"), "--format", "dlc", "--names", "a,a,b"],
     lambda d: "error: point names must be non-empty and distinct, got ['a', 'a', 'b']"),
    (lambda d: [str(d / "tracks.npz"), "--format", "dlc", "--scorer", "a,b"],
     lambda d: "error: scorer 'a,b' is invalid: give a non-empty name without commas, quotes or line breaks"),
    (lambda d: [str(d / "sub"), "--format", "dlc", "-o", str(d / "t.csv")],
     lambda d: f"error: folder '{d / 'sub'}' holds no tracks.npz: give a track output folder or its tracks.npz"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tracks_file, args, message):
    folder = tracks_file.parent
    (folder / "not-tracks.npz").write_text("hello")
    (folder / "sub").mkdir()
    result = export(*args(folder))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message(folder)]
    assert files(folder) == ["not-tracks.npz", "sub", "tracks.npz"]


def test_an_existing_output_is_refused_without_overwrite(tracks_file):
    out = tracks_file.with_name("tracks_cotracker.npz")
    out.write_bytes(b"someone's file")
    result = export(str(tracks_file), "--format", "cotracker")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: output file '{out}' already exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"someone's file"
    result = export(str(tracks_file), "--format", "cotracker", "--overwrite")
    assert result.exit_code == 0, result.output
    assert np.load(out)["frame_indices"].tolist() == FRAMES


@pytest.mark.parametrize("fmt", ["cotracker", "tapvid"])
def test_the_tracks_file_is_never_written_over(tracks_file, fmt):
    before = tracks_file.read_bytes()
    link = tracks_file.with_name("same.npz")
    link.symlink_to(tracks_file)
    for out in (tracks_file, link):
        for extra in ([], ["--overwrite"]):
            result = export(str(tracks_file), "--format", fmt, "-o", str(out), *extra)
            assert result.exit_code == 2
            assert result.stderr.strip() == (f"error: output file '{out}' is the tracks file being exported: choose "
                                             "another output")
    assert tracks_file.read_bytes() == before


def test_an_output_that_is_a_folder_is_one_line(tracks_file):
    (tracks_file.parent / "out.npz").mkdir()
    result = export(str(tracks_file), "--format", "cotracker", "-o", str(tracks_file.parent / "out.npz"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: output '{tracks_file.parent / 'out.npz'}' is a folder"
    assert files(tracks_file.parent / "out.npz") == []


def test_a_file_that_is_not_tracks_or_is_damaged_is_one_line(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    result = export(str(tmp_path / "x.npz"), "--format", "dlc")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: '{tmp_path / 'x.npz'}' is not a vidcorr tracks file: not an .npz archive"
    damaged = make_tracks().save_npz(tmp_path / "tracks.npz")
    damage_one_byte(damaged)
    result = export(str(damaged), "--format", "dlc")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: tracks file '{damaged}' is damaged: its .npz archive cannot be read "
                                     "(Bad CRC-32 for file 'points.npy')")
    assert files(tmp_path) == ["tracks.npz", "x.npz"]


@pytest.mark.parametrize("fmt", ["slp", "nwb"])
def test_without_sleap_io_slp_and_nwb_say_how_to_install_it(tracks_file, monkeypatch, fmt):
    monkeypatch.setitem(sys.modules, "sleap_io", None)  # import sleap_io -> ImportError
    result = export(str(tracks_file), "--format", fmt)
    assert result.exit_code == 2
    assert result.stderr.strip() == 'error: exporting to SLEAP or NWB needs sleap-io: pip install "vidcorr[pose]"'
    assert files(tracks_file.parent) == ["tracks.npz"]


def test_a_failure_while_writing_leaves_no_partial_file(tracks_file, monkeypatch):
    def write_half_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vidcorr.io.export.np.savez", write_half_then_fail)
    result = export(str(tracks_file), "--format", "cotracker")
    assert result.exit_code == 2
    # The message names the file by its final name (vidcorr.io.staging), never the hidden temporary.
    out = tracks_file.parent / "tracks_cotracker.npz"
    assert result.stderr.strip() == f"error: cannot write '{out}': No space left on device"
    assert files(tracks_file.parent) == ["tracks.npz"]


def test_library_export_needs_an_output_for_tracks_in_memory(tracks_file):
    tracks = Tracks.load_npz(tracks_file)
    with pytest.raises(InputError, match="give the output path"):
        export_tracks(tracks, "dlc")
    assert export_tracks(tracks, "DLC", tracks_file.with_name("t.csv")) == tracks_file.with_name("t.csv")


def test_export_never_imports_torch(tracks_file, clip_folder, tmp_path):
    folder, _ = clip_folder
    code = ("import sys\nfrom vidcorr_cli.app import app\n"
            f"for fmt in ('dlc', 'dlc-project', 'cotracker'):\n"
            f"    try:\n        app(['export', {str(tracks_file)!r}, '--format', fmt, '--video', {str(folder)!r}])\n"
            "    except SystemExit as exit:\n        assert exit.code in (0, None), exit.code\n"
            "print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
