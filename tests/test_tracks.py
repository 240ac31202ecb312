"""The Tracks container and its .npz / .csv / .json files."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest

import vidcorr.io.tracks as tracks_module
from vidcorr.errors import InputError
from vidcorr.io.tracks import CSV_HEADER, Tracks


@dataclass(frozen=True)
class FakeConfig:
    lr: float = 0.0023755632081200314
    layers: tuple[int, ...] = (5, 6, 7, 8)


def make_tracks(num_frames: int = 4, num_points: int = 3, seed: int = 0) -> Tracks:
    """Rows at video frames 2, 5, 8, 11 (start 2, stride 3)."""
    rng = np.random.default_rng(seed)
    return Tracks(
        points=rng.uniform(0, 100, (num_frames, num_points, 2)),
        visible=rng.uniform(size=(num_frames, num_points)) > 0.3,
        confidence=rng.uniform(size=(num_frames, num_points)),
        queries=np.concatenate([np.full((num_points, 1), 2.0), rng.uniform(0, 100, (num_points, 2))], axis=1),
        frame_indices=2 + 3 * np.arange(num_frames),
        fps=29.97,
        size=(160, 120),
        meta={"model": "tiny", "config": FakeConfig(), "points_file": None},
    )


def test_fields_are_coerced_to_the_contract():
    tracks = make_tracks()
    assert tracks.points.dtype == np.float32 and tracks.points.shape == (4, 3, 2)
    assert tracks.visible.dtype == bool and tracks.visible.shape == (4, 3)
    assert tracks.confidence.dtype == np.float32 and tracks.queries.dtype == np.float32
    assert tracks.frame_indices.dtype == np.int64
    assert (tracks.num_frames, tracks.num_points, tracks.size, tracks.fps) == (4, 3, (160, 120), 29.97)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"points": np.zeros((4, 3))}, "points must be (T, N, 2); got shape (4, 3)"),
        ({"visible": np.zeros((4, 2), bool)}, "visible must be (T, N) = (4, 3); got shape (4, 2)"),
        ({"confidence": np.zeros(4)}, "confidence must be (T, N) = (4, 3); got shape (4,)"),
        ({"queries": np.zeros((3, 2))}, "queries must be (N, 3) = (3, 3) t, x, y; got shape (3, 2)"),
        ({"frame_indices": np.arange(5)}, "frame_indices must be (T,) = (4,); got shape (5,)"),
        ({"frame_indices": np.array([0, 2, 2, 3])}, "frame_indices must be >= 0 and strictly increasing"),
        ({"fps": 0.0}, "fps must be a finite number > 0; got 0.0"),
        ({"size": (160,)}, "size must be (W, H) with W, H >= 1; got (160,)"),
    ],
)
def test_validation(change, message):
    fields = {k: getattr(make_tracks(), k) for k in ("points", "visible", "confidence", "queries",
                                                     "frame_indices", "fps", "size")}
    with pytest.raises(ValueError) as err:
        Tracks(**{**fields, **change})
    assert str(err.value) == message


def test_npz_round_trip(tmp_path):
    tracks = make_tracks()
    path = tracks.save_npz(tmp_path / "tracks.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"points", "visible", "confidence", "queries", "frame_indices", "fps",
                                      "size", "meta"}
        assert archive["points"].dtype == np.float32 and archive["visible"].dtype == bool
    loaded = Tracks.load_npz(path)
    for name in ("points", "visible", "confidence", "queries", "frame_indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tracks, name))
        assert getattr(loaded, name).dtype == getattr(tracks, name).dtype
    assert (loaded.fps, loaded.size) == (29.97, (160, 120))
    assert loaded.meta == {"model": "tiny", "config": {"lr": 0.0023755632081200314, "layers": [5, 6, 7, 8]},
                           "points_file": None}


def test_npz_without_frame_indices_counts_from_zero(tmp_path):
    tracks = make_tracks()
    path = tmp_path / "other_tool.npz"
    np.savez(path, points=tracks.points, visible=tracks.visible, confidence=tracks.confidence,
             queries=tracks.queries, fps=30.0, size=np.array([160, 120]))
    loaded = Tracks.load_npz(path)
    np.testing.assert_array_equal(loaded.frame_indices, [0, 1, 2, 3])
    assert loaded.meta == {}


def test_load_npz_errors(tmp_path):
    tracks = make_tracks()
    missing = tmp_path / "missing.npz"
    text = tmp_path / "text.npz"
    text.write_text("points,visible\n")
    partial = tmp_path / "partial.npz"
    np.savez(partial, points=tracks.points, fps=30.0)
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez(bad_shape, points=tracks.points, visible=tracks.visible[:, :2], confidence=tracks.confidence,
             queries=tracks.queries, fps=30.0, size=np.array([160, 120]))
    cases = [
        (missing, f"tracks file {str(missing)!r} does not exist"),
        (text, f"{str(text)!r} is not a vidcorr tracks file: not an .npz archive"),
        (partial, f"{str(partial)!r} is not a vidcorr tracks file: missing keys visible, confidence, queries, size"),
        (bad_shape, f"{str(bad_shape)!r} is not a vidcorr tracks file: visible must be (T, N) = (4, 3); "
                    "got shape (4, 2)"),
    ]
    for path, message in cases:
        with pytest.raises(InputError) as err:
            Tracks.load_npz(path)
        assert str(err.value) == message


def damage_one_byte(path, member: str = "points.npy", at: int = 140) -> None:
    """Flip one byte of `member`'s data (past its .npy header) inside the .npz: its CRC no longer matches."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    local_header = 30 + len(info.filename.encode()) + int.from_bytes(data[info.header_offset + 28:
                                                                          info.header_offset + 30], "little")
    data[info.header_offset + local_header + at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_byte_is_one_line(tmp_path):
    path = make_tracks().save_npz(tmp_path / "tracks.npz")
    damage_one_byte(path)
    with pytest.raises(InputError) as err:
        Tracks.load_npz(path)
    assert str(err.value) == (f"tracks file {str(path)!r} is damaged: its .npz archive cannot be read (Bad CRC-32 "
                              "for file 'points.npy')")


def test_a_point_far_outside_the_frame_is_refused_on_loading(tmp_path):
    tracks = make_tracks()  # 160 x 120; rows at frames 2, 5, 8, 11
    tracks.points[2, 1] = [1e9, 1e9]  # a hand edit
    path = tracks.save_npz(tmp_path / "tracks.npz")
    with pytest.raises(InputError) as err:
        Tracks.load_npz(path)
    assert str(err.value) == (f"tracks file {str(path)!r} has point 1 at (1e+09, 1e+09) on frame 8, far outside "
                              "the 160x120 video")
    # One frame size beyond each edge is still a point (-160..320, -120..240); NaN is a point not tracked.
    tracks.points[2, 1] = [-160, 240]
    tracks.points[3, 0] = [np.nan, np.nan]
    np.testing.assert_array_equal(Tracks.load_npz(tracks.save_npz(path)).points, tracks.points)


def test_csv(tmp_path):
    tracks = make_tracks()
    path = tracks.save_csv(tmp_path / "tracks.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == CSV_HEADER == "frame,point,x,y,visible,confidence"
    assert len(lines) == 1 + 4 * 3
    t, n = 2, 1  # frame-major: row 1 + t * N + n
    frame, point, x, y, visible, confidence = lines[1 + t * 3 + n].split(",")
    assert (int(frame), int(point)) == (8, 1)  # the video frame index, not the row
    assert np.float32(x) == tracks.points[t, n, 0] and np.float32(y) == tracks.points[t, n, 1]
    assert visible == ("1" if tracks.visible[t, n] else "0")
    assert np.float32(confidence) == tracks.confidence[t, n]
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 2:4].astype(np.float32), tracks.points.reshape(-1, 2))


def test_json(tmp_path):
    tracks = make_tracks()
    doc = json.loads(tracks.save_json(tmp_path / "tracks.json").read_text())
    assert set(doc) == {"format", "version", "num_frames", "num_points", "fps", "size", "frame_indices",
                        "queries", "points", "visible", "confidence", "meta"}
    assert (doc["format"], doc["num_frames"], doc["num_points"], doc["size"]) == ("vidcorr-tracks", 4, 3, [160, 120])
    assert doc["frame_indices"] == [2, 5, 8, 11]
    np.testing.assert_array_equal(np.array(doc["points"], dtype=np.float32), tracks.points)  # exact float32
    np.testing.assert_array_equal(np.array(doc["visible"]), tracks.visible)
    np.testing.assert_array_equal(np.array(doc["confidence"], dtype=np.float32), tracks.confidence)
    assert doc["meta"]["config"]["layers"] == [5, 6, 7, 8] and doc["meta"]["model"] == "tiny"


def test_json_writes_nan_as_null(tmp_path):
    tracks = make_tracks()
    tracks.points[0, 0] = np.nan
    doc = json.loads(tracks.save_json(tmp_path / "tracks.json").read_text())
    assert doc["points"][0][0] == [None, None]


def test_save_all(tmp_path):
    paths = make_tracks().save_all(tmp_path / "new" / "dir", stem="clip")
    assert {k: p.name for k, p in paths.items()} == {"npz": "clip.npz", "csv": "clip.csv", "json": "clip.json"}
    assert all(p.is_file() for p in paths.values())
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == ["clip.csv", "clip.json", "clip.npz"]


def test_failed_writes_leave_no_file(tmp_path, monkeypatch):
    tracks = make_tracks()
    tracks.meta["score"] = float("nan")  # not valid JSON: json.dump fails inside the write
    with pytest.raises(ValueError, match="Out of range float values"):
        tracks.save_json(tmp_path / "tracks.json")

    def interrupted_savez(file, **arrays):
        file.write(b"PK partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(tracks_module.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        tracks.save_npz(tmp_path / "tracks.npz")
    assert list(tmp_path.iterdir()) == []


def test_rows_for_frames():
    tracks = make_tracks()  # rows at frames 2, 5, 8, 11, stride 3
    rows = tracks.rows_for_frames(np.arange(16))
    np.testing.assert_array_equal(rows, [-1, -1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, -1, -1])
    single = Tracks(points=np.zeros((1, 1, 2)), visible=[[True]], confidence=[[1.0]], queries=[[4, 0, 0]],
                    frame_indices=[4], fps=30, size=(8, 8))
    np.testing.assert_array_equal(single.rows_for_frames([3, 4, 5]), [-1, 0, -1])
