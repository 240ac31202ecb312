"""`vidcorr export`: each format read back by its own reader where one installs (sleap-io for SLP, NWB and
DeepLabCut; pynwb for NWB; pandas for the DeepLabCut CSV; vidcorr's tapnet-faithful TAP-Vid reader), numbers
compared with the tracks, and bad input as one line with no output left behind."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.eval.tapvid.data import load_tapvid_pickle, read_davis
from vidcorr.io.export import export_tracks
from vidcorr.io.tracks import Tracks
from vidcorr_cli.app import app

runner = CliRunner()
FPS = 29.97
FRAMES = [1, 3, 5, 7, 9]  # a strided track: rows are not frames 0..T-1
WIDTH, HEIGHT = 64, 48
# (T=5, N=3) points, x, y in vidcorr's convention (the centre of the top-left pixel is (0.5, 0.5)).
POINTS = np.array([[[0.5, 0.5], [32.5, 24.0], [63.5, 47.5]],
                   [[1.5, 2.5], [33.0, 24.5], [60.25, 40.75]],
                   [[2.5, 4.5], [33.5, 25.0], [58.0, 38.0]],
                   [[3.5, 6.5], [34.0, 25.5], [55.5, 35.25]],
                   [[4.5, 8.5], [34.5, 26.0], [52.0, 30.0]]], np.float32)
VISIBLE = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]], bool)
CONFIDENCE = np.array([[0.9, 0.8, 0.7], [0.85, 0.2, 0.75], [0.3, 0.6, 0.65], [0.8, 0.7, 0.1], [0.95, 0.9, 0.5]],
                      np.float32)
QUERIES = np.array([[1, 0.5, 0.5], [1, 32.5, 24.0], [5, 58.0, 38.0]], np.float32)


@pytest.fixture
def tracks_file(tmp_path) -> Path:
    tracks = Tracks(points=POINTS, visible=VISIBLE, confidence=CONFIDENCE, queries=QUERIES, frame_indices=FRAMES,
                    fps=FPS, size=(WIDTH, HEIGHT), meta={"video": "videos/clip.mp4", "model": "tiny"})
    return tracks.save_npz(tmp_path / "tracks.npz")


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def hidden_nan_centred() -> np.ndarray:
    """x, y with the top-left pixel's centre at (0, 0) (SLEAP, NWB), NaN where not visible."""
    xy = POINTS.astype(np.float64) - 0.5
    xy[~VISIBLE] = np.nan
    return xy


# --------------------------------------------------------------------------------------- array layouts


def test_tapvid_npz_has_the_points_as_fractions_and_occluded(tracks_file):
    result = export(str(tracks_file), "--format", "tapvid")
    assert result.exit_code == 0, result.output
    out = tracks_file.with_name("tracks_tapvid.npz")
    assert result.output == f"wrote {out}\n"
    data = np.load(out, allow_pickle=False)
    assert data["points"].shape == (3, 5, 2) and data["points"].dtype == np.float32
    assert data["points"][1, 0].tolist() == [0.5078125, 0.5]  # 32.5 / 64, 24 / 48
    assert data["points"][2, 0].tolist() == [0.9921875, 0.9895833134651184]  # 63.5 / 64, 47.5 / 48 (float32)
    np.testing.assert_allclose(data["points"], POINTS.transpose(1, 0, 2) / [WIDTH, HEIGHT], rtol=1e-7)
    assert data["occluded"].tolist() == [[False, False, True, False, False], [False, True, False, False, False],
                                         [False, False, False, True, False]]
    assert data["frame_indices"].tolist() == FRAMES and data["size"].tolist() == [WIDTH, HEIGHT]


def test_tapvid_pickle_is_a_tapvid_example_that_the_tapvid_reader_takes(tracks_file, tmp_path):
    out = tmp_path / "example.pkl"
    assert export(str(tracks_file), "--format", "tapvid", "-o", str(out)).exit_code == 0
    example = load_tapvid_pickle(out)  # the restricted unpickler: numpy arrays and builtins only
    assert sorted(example) == ["frame_indices", "occluded", "points", "size"]
    np.testing.assert_array_equal(example["points"], np.load(tracks_file.with_name("tracks.npz"))["points"]
                                  .transpose(1, 0, 2) / np.float32([WIDTH, HEIGHT]))
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
    assert data["frame_indices"].tolist() == FRAMES


# ------------------------------------------------------------------------------------------- DeepLabCut


def test_dlc_csv_has_deeplabcuts_header_rows_and_likelihood(tracks_file):
    assert export(str(tracks_file), "--format", "dlc", "--names", "nose,tail,ear").exit_code == 0
    lines = tracks_file.with_name("tracks_dlc.csv").read_text().splitlines()
    assert lines[0] == "scorer," + ",".join(["vidcorr"] * 9)
    assert lines[1] == "bodyparts,nose,nose,nose,tail,tail,tail,ear,ear,ear"
    assert lines[2] == "coords," + ",".join(["x", "y", "likelihood"] * 3)
    # Frame 1: pixel indices (x - 0.5), likelihood = confidence, on every frame (visible or not).
    assert lines[3] == "1,0.0,0.0,0.9,32.0,23.5,0.8,63.0,47.0,0.7"
    assert lines[4] == "3,1.0,2.0,0.85,32.5,24.0,0.2,59.75,40.25,0.75"
    assert len(lines) == 3 + 5


def test_dlc_csv_reads_back_with_pandas_multiindex(tracks_file):
    pd = pytest.importorskip("pandas")
    assert export(str(tracks_file), "--format", "dlc").exit_code == 0
    frame = pd.read_csv(tracks_file.with_name("tracks_dlc.csv"), header=[0, 1, 2], index_col=0)
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    assert frame.index.tolist() == FRAMES
    for k in range(3):
        part = frame["vidcorr"][f"point_{k}"]
        np.testing.assert_array_equal(part["x"].to_numpy(), POINTS[:, k, 0] - np.float32(0.5))
        np.testing.assert_array_equal(part["y"].to_numpy(), POINTS[:, k, 1] - np.float32(0.5))
        np.testing.assert_array_equal(part["likelihood"].to_numpy(np.float32), CONFIDENCE[:, k])


def test_dlc_csv_reads_back_with_sleap_ios_deeplabcut_reader(tracks_file):
    sio = pytest.importorskip("sleap_io")
    assert export(str(tracks_file), "--format", "dlc").exit_code == 0
    # sleap-io's reader is made for labelled-data CSVs: it keeps the rows whose image it finds, by the row's
    # name relative to the CSV. Give each frame one (the frame number, as DeepLabCut's analysis CSVs name rows).
    for frame in FRAMES:
        (tracks_file.parent / str(frame)).write_bytes(b"")
    labels = sio.load_dlc(str(tracks_file.with_name("tracks_dlc.csv")), config=False)
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    assert len(labels) == 5
    got = np.stack([lf.instances[0].numpy() for lf in labels])
    np.testing.assert_allclose(got, POINTS - 0.5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- sleap-io


def test_slp_has_the_points_as_nodes_nan_where_hidden_and_confidence_as_score(tracks_file):
    sio = pytest.importorskip("sleap_io")
    result = export(str(tracks_file), "--format", "slp")
    assert result.exit_code == 0, result.output
    labels = sio.load_slp(str(tracks_file.with_name("tracks.slp")))
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    assert [lf.frame_idx for lf in labels] == FRAMES
    assert labels.video.filename == "videos/clip.mp4"
    assert [t.name for t in labels.tracks] == ["vidcorr"]
    instances = [lf.instances for lf in labels]
    assert all(len(i) == 1 and isinstance(i[0], sio.PredictedInstance) for i in instances)
    scored = np.stack([i[0].numpy(scores=True) for i in instances])  # (T, N, 3): x, y, score
    np.testing.assert_allclose(scored[..., :2], hidden_nan_centred(), atol=1e-6)
    np.testing.assert_allclose(scored[..., 2], CONFIDENCE, atol=1e-6)
    np.testing.assert_allclose([i[0].score for i in instances], CONFIDENCE.mean(axis=1), atol=1e-6)


def test_slp_takes_point_names(tracks_file, tmp_path):
    sio = pytest.importorskip("sleap_io")
    out = tmp_path / "named.slp"
    assert export(str(tracks_file), "--format", "slp", "--names", "nose, tail,ear", "-o", str(out)).exit_code == 0
    assert sio.load_slp(str(out)).skeleton.node_names == ["nose", "tail", "ear"]


def test_nwb_reads_back_with_sleap_io_and_pynwb(tracks_file):
    sio = pytest.importorskip("sleap_io")
    result = export(str(tracks_file), "--format", "nwb")
    assert result.exit_code == 0, result.output
    path = tracks_file.with_name("tracks.nwb")
    labels = sio.load_nwb(str(path))
    assert labels.skeleton.node_names == ["point_0", "point_1", "point_2"]
    # sleap-io numbers NWB frames by the rank of their timestamps; every row here has a visible point.
    scored = np.stack([lf.instances[0].numpy(scores=True) for lf in labels])
    np.testing.assert_allclose(scored[..., :2], hidden_nan_centred(), atol=1e-6)
    np.testing.assert_allclose(scored[..., 2], CONFIDENCE, atol=1e-6)

    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwb = io.read()
        (module,) = [m for name, m in nwb.processing.items() if name.startswith("SLEAP_VIDEO")]
        estimation = module["track=vidcorr"]
        assert list(estimation.original_videos[:]) == ["videos/clip.mp4"]
        assert estimation.source_software == "vidcorr"
        assert estimation.dimensions[:].tolist() == [[HEIGHT, WIDTH]]
        for k in range(3):
            series = estimation.pose_estimation_series[f"point_{k}"]
            assert series.rate is None  # explicit timestamps: 29.97 fps is not rounded to 29
            np.testing.assert_array_equal(series.timestamps[:], np.array(FRAMES, np.float64) / FPS)
            np.testing.assert_allclose(series.data[:], hidden_nan_centred()[:, k], atol=1e-6)
            np.testing.assert_allclose(series.confidence[:], CONFIDENCE[:, k], atol=1e-6)
            assert "centre of the top-left pixel is (0, 0)" in series.reference_frame


# -------------------------------------------------------------------------------------------- bad input


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (lambda d: [str(d / "nope.npz"), "--format", "dlc"],
     lambda d: f"error: tracks file '{d / 'nope.npz'}' does not exist"),
    (lambda d: [str(d / "tracks.npz"), "--format", "mat"],
     lambda d: "error: unknown export format 'mat'; choose one of slp, nwb, dlc, tapvid, cotracker"),
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
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tracks_file, args, message):
    folder = tracks_file.parent
    (folder / "not-tracks.npz").write_text("hello")
    result = export(*args(folder))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message(folder)]
    assert files(folder) == ["not-tracks.npz", "tracks.npz"]


def test_an_output_that_is_a_folder_is_one_line(tracks_file):
    (tracks_file.parent / "out.npz").mkdir()
    result = export(str(tracks_file), "--format", "cotracker", "-o", str(tracks_file.parent / "out.npz"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: output '{tracks_file.parent / 'out.npz'}' is a folder"
    assert files(tracks_file.parent / "out.npz") == []


def test_a_file_that_is_not_tracks_is_one_line(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    result = export(str(tmp_path / "x.npz"), "--format", "dlc")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: '{tmp_path / 'x.npz'}' is not a vidcorr tracks file: not an .npz archive"
    assert files(tmp_path) == ["x.npz"]


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
    # The message names the file by its final name (vidcorr.atomic), never the hidden temporary.
    out = tracks_file.parent / "tracks_cotracker.npz"
    assert result.stderr.strip() == f"error: No space left on device ({out})"
    assert files(tracks_file.parent) == ["tracks.npz"]


def test_library_export_needs_an_output_for_tracks_in_memory(tracks_file):
    tracks = Tracks.load_npz(tracks_file)
    with pytest.raises(InputError, match="give the output path"):
        export_tracks(tracks, "dlc")
    assert export_tracks(tracks, "DLC", tracks_file.with_name("t.csv")) == tracks_file.with_name("t.csv")
