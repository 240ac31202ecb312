"""TAP-Vid layer: metrics against hand-computed values, tapnet's query sampling, readers, safe unpickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_tapvid import (
    ExecPayload,
    SystemCallPayload,
    TouchPayload,
    make_example,
    write_davis_pickle,
    write_hostile_pickle,
    write_kinetics_shard,
    write_pickle,
    write_rgb_stacking_pickle,
)

from vidcorr.errors import DataError
from vidcorr.eval.tapvid.data import (
    load_tapvid_pickle,
    read_davis,
    read_kinetics,
    read_rgb_stacking,
    read_tapvid,
    resize_frames,
    sample_queries_first,
    sample_queries_strided,
    video_queries,
)
from vidcorr.eval.tapvid.metrics import (
    THRESHOLDS_PX,
    compute_tapvid_metrics,
    compute_tapvid_metrics_batched,
    mean_over_videos,
    metric_names,
)

# ------------------------------------------------------------------------------------------------ metrics


def _one_track(gt_xy, gt_occ, pred_xy, pred_occ, query_frame):
    """Arrays for a single query: gt/pred (T, 2) and (T,) -> metric inputs with Q = 1."""
    gt_xy = np.asarray(gt_xy, np.float64)[None]
    pred_xy = np.asarray(pred_xy, np.float64)[None]
    query = np.array([[query_frame, gt_xy[0, query_frame, 0], gt_xy[0, query_frame, 1]]])
    return query, np.asarray(gt_occ, bool)[None], gt_xy, np.asarray(pred_occ, bool)[None], pred_xy


def test_false_positive_on_occluded_frame_halves_jaccard():
    # Frame 0 is the query. Frame 1: visible, predicted exactly (TP). Frame 2: occluded in the ground
    # truth but predicted visible (FP, wherever the prediction lies). Jaccard = 1 / (1 visible + 1 FP).
    inputs = _one_track(
        gt_xy=[[10, 10], [20, 20], [30, 30]],
        gt_occ=[False, False, True],
        pred_xy=[[10, 10], [20, 20], [30, 30]],
        pred_occ=[False, False, False],
        query_frame=0,
    )
    metrics = compute_tapvid_metrics(*inputs, query_mode="first")
    for d in THRESHOLDS_PX:
        assert metrics[f"jaccard_{d}"] == 0.5
        assert metrics[f"pts_within_{d}"] == 1.0  # only frame 1 is visible and it is exact
    assert metrics["average_jaccard"] == 0.5
    assert metrics["average_pts_within_thresh"] == 1.0
    assert metrics["occlusion_accuracy"] == 0.5  # frame 1 right, frame 2 wrong


def test_predicted_occluded_on_visible_frame_is_a_false_negative_only():
    # Frame 1 is visible and exact but predicted occluded: it still counts for pts_within (which ignores
    # predicted occlusion) but is no TP; it is no FP either. Jaccard = 1 TP / (2 visible + 0 FP).
    inputs = _one_track(
        gt_xy=[[5, 5], [6, 6], [7, 7]],
        gt_occ=[False, False, False],
        pred_xy=[[5, 5], [6, 6], [7, 7]],
        pred_occ=[False, True, False],
        query_frame=0,
    )
    metrics = compute_tapvid_metrics(*inputs, query_mode="first")
    assert metrics["jaccard_1"] == 0.5
    assert metrics["pts_within_1"] == 1.0
    assert metrics["occlusion_accuracy"] == 0.5


def test_query_frame_is_excluded_and_first_mode_ignores_earlier_frames():
    # Query at frame 1. Frames 0 and 1 are predicted 100 px off; frames 2 and 3 exactly.
    gt = [[50.0, 50.0]] * 4
    pred = [[150.0, 50.0], [150.0, 50.0], [50.0, 50.0], [50.0, 50.0]]
    inputs = _one_track(gt, [False] * 4, pred, [False] * 4, query_frame=1)
    first = compute_tapvid_metrics(*inputs, query_mode="first")  # scores frames 2, 3
    assert all(first[name] == 1.0 for name in metric_names())
    strided = compute_tapvid_metrics(*inputs, query_mode="strided")  # scores frames 0, 2, 3
    for d in THRESHOLDS_PX:
        assert strided[f"pts_within_{d}"] == pytest.approx(2 / 3)
        assert strided[f"jaccard_{d}"] == 0.5  # TP 2 / (3 visible + 1 FP)
    assert strided["occlusion_accuracy"] == 1.0
    assert compute_tapvid_metrics(*inputs, query_mode="query_first") == first


def test_distance_exactly_at_threshold_does_not_count():
    # Query frame 0; frames 1..5 are off along x by exactly 0.5, 1, 2, 4 and 16 pixels (exact in float).
    gt = [[10.0, 20.0]] * 6
    offsets = [0.0, 0.5, 1.0, 2.0, 4.0, 16.0]
    pred = [[10.0 + dx, 20.0] for dx in offsets]
    metrics = compute_tapvid_metrics(*_one_track(gt, [False] * 6, pred, [False] * 6, 0), query_mode="first")
    within = {1: 1, 2: 2, 4: 3, 8: 4, 16: 4}  # strict <: the offset equal to d is out
    for d, count in within.items():
        assert metrics[f"pts_within_{d}"] == pytest.approx(count / 5)
        # FP = the 5 - count visible predictions that miss; denominator = 5 visible + FP.
        assert metrics[f"jaccard_{d}"] == pytest.approx(count / (5 + 5 - count))
    assert metrics["average_pts_within_thresh"] == pytest.approx(14 / 25)
    assert metrics["average_jaccard"] == pytest.approx((1 / 9 + 2 / 8 + 3 / 7 + 4 / 6 + 4 / 6) / 5)
    assert metrics["occlusion_accuracy"] == 1.0


def test_query_frame_is_rounded_like_tapnet():
    gt = [[0.0, 0.0]] * 3
    pred = [[0.0, 0.0], [99.0, 0.0], [0.0, 0.0]]
    query, gt_occ, gt_xy, pred_occ, pred_xy = _one_track(gt, [False] * 3, pred, [False] * 3, 0)
    query[0, 0] = 0.6  # rounds to frame 1, the only wrong one, so everything scored is right
    metrics = compute_tapvid_metrics(query, gt_occ, gt_xy, pred_occ, pred_xy, "first")
    assert metrics["average_jaccard"] == 1.0


def test_video_with_nothing_to_score_is_nan():
    metrics = compute_tapvid_metrics(*_one_track([[1.0, 1.0]], [False], [[1.0, 1.0]], [False], 0), "first")
    assert np.isnan(metrics["occlusion_accuracy"]) and np.isnan(metrics["average_jaccard"])


def test_batched_matches_per_video_and_mean_is_plain_average():
    a = _one_track([[10.0, 10.0]] * 3, [False, False, True], [[10.0, 10.0]] * 3, [False] * 3, 0)  # AJ 0.5
    b = _one_track([[0.0, 0.0]] * 3, [False] * 3, [[0.0, 0.0]] * 3, [False] * 3, 0)  # AJ 1.0
    stacked = [np.stack([x, y]) for x, y in zip(a, b, strict=True)]
    batched = compute_tapvid_metrics_batched(*stacked, "strided")
    per_video = [compute_tapvid_metrics(*a, "strided"), compute_tapvid_metrics(*b, "strided")]
    assert list(batched) == metric_names() == list(per_video[0])
    for name in metric_names():
        assert batched[name].shape == (2,)
        np.testing.assert_array_equal(batched[name], [per_video[0][name], per_video[1][name]])
    mean = mean_over_videos(per_video)
    # strided scores frames 1, 2 of video a: 1 TP, 1 FP on the occluded frame -> 1 / (1 + 1) = 0.5
    assert per_video[0]["average_jaccard"] == 0.5
    assert mean["average_jaccard"] == 0.75
    assert mean["occlusion_accuracy"] == 0.75
    with pytest.raises(ValueError, match="at least one"):
        mean_over_videos([])


def test_metric_inputs_are_validated():
    inputs = _one_track([[0.0, 0.0]] * 2, [False] * 2, [[0.0, 0.0]] * 2, [False] * 2, 0)
    query, gt_occ, gt_xy, pred_occ, pred_xy = inputs
    with pytest.raises(ValueError, match="query_mode"):
        compute_tapvid_metrics(query, gt_occ, gt_xy, pred_occ, pred_xy, "last")
    with pytest.raises(ValueError, match="bool"):
        compute_tapvid_metrics(query, gt_occ, gt_xy, pred_occ.astype(float), pred_xy, "first")
    with pytest.raises(ValueError, match="pred_tracks"):
        compute_tapvid_metrics(query, gt_occ, gt_xy, pred_occ, pred_xy[:, :1], "first")
    query[0, 0] = 2
    with pytest.raises(ValueError, match="query frames"):
        compute_tapvid_metrics(query, gt_occ, gt_xy, pred_occ, pred_xy, "first")


# ------------------------------------------------------------------------------------------------ queries

# 4 tracks x 7 frames; point (n, t) is at x = 10 n + t, y = 100 + 10 n + t.
OCCLUDED = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],  # track 0: always visible
        [1, 1, 1, 0, 0, 0, 0],  # track 1: appears at frame 3
        [1, 1, 1, 1, 1, 1, 1],  # track 2: never visible
        [0, 1, 1, 1, 1, 0, 0],  # track 3: visible at 0, hidden 1..4, back at 5
    ],
    dtype=bool,
)
_n, _t = np.meshgrid(np.arange(4), np.arange(7), indexing="ij")
POINTS = np.stack([10.0 * _n + _t, 100.0 + 10.0 * _n + _t], axis=-1)


def test_query_first_matches_hand_derived_list():
    queries = sample_queries_first(OCCLUDED, POINTS)
    np.testing.assert_array_equal(queries.query_points, [[0, 0, 100], [3, 13, 113], [0, 30, 130]])
    np.testing.assert_array_equal(queries.track_index, [0, 1, 3])
    np.testing.assert_array_equal(queries.target_points, POINTS[[0, 1, 3]])
    np.testing.assert_array_equal(queries.occluded, OCCLUDED[[0, 1, 3]])
    assert queries.query_mode == "first"


def test_strided_matches_hand_derived_list():
    # Query frames 0 and 5. Frame 0: tracks 0, 3 visible. Frame 5: tracks 0, 1, 3. Frame-major order.
    queries = sample_queries_strided(OCCLUDED, POINTS, stride=5)
    np.testing.assert_array_equal(
        queries.query_points, [[0, 0, 100], [0, 30, 130], [5, 5, 105], [5, 15, 115], [5, 35, 135]]
    )
    np.testing.assert_array_equal(queries.track_index, [0, 3, 0, 1, 3])
    np.testing.assert_array_equal(queries.target_points, POINTS[[0, 3, 0, 1, 3]])
    np.testing.assert_array_equal(queries.occluded, OCCLUDED[[0, 3, 0, 1, 3]])
    # Stride 3: frame 0 -> tracks 0, 3; frame 3 -> 0, 1 (3 is hidden); frame 6 -> 0, 1, 3.
    assert sample_queries_strided(OCCLUDED, POINTS, stride=3).track_index.tolist() == [0, 3, 0, 1, 0, 1, 3]


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_ground_truth_predictions_score_one_everywhere(mode):
    q = (
        sample_queries_strided(OCCLUDED, POINTS)
        if mode == "strided"
        else sample_queries_first(OCCLUDED, POINTS)
    )
    metrics = compute_tapvid_metrics(
        q.query_points, q.occluded, q.target_points, q.occluded, q.target_points, mode
    )
    assert metrics == {name: 1.0 for name in metric_names()}


# ------------------------------------------------------------------------------------------------ readers

# Fractions exact in binary, so pixel coordinates are exact: 0.25 * 256 = 64, 0.25 * 64 = 16.
FRACTIONS = np.array([[[0.25, 0.5], [0.5, 0.75], [0.75, 0.125]]])  # (N=1, T=3, 2)
FRACTIONS_OCC = np.array([[False, True, False]])


def _davis(tmp_path: Path) -> Path:
    videos = {
        "bear": make_example(3, 48, 64, FRACTIONS, FRACTIONS_OCC, seed=1),
        "car-shadow": make_example(3, 256, 256, FRACTIONS, FRACTIONS_OCC, seed=2),
    }
    return write_davis_pickle(tmp_path / "tapvid_davis.pkl", videos)


def test_davis_pickle_is_resized_to_256_with_points_in_256_pixels(tmp_path):
    videos = list(read_davis(_davis(tmp_path)))
    assert [v.name for v in videos] == ["bear", "car-shadow"]
    bear = videos[0]
    assert bear.frames.shape == (3, 256, 256, 3) and bear.frames.dtype == np.uint8
    assert bear.source_size_hw == (48, 64)
    np.testing.assert_array_equal(bear.points[0], [[64, 128], [128, 192], [192, 32]])
    np.testing.assert_array_equal(bear.eval_points, bear.points)
    np.testing.assert_array_equal(bear.occluded, FRACTIONS_OCC)
    np.testing.assert_array_equal(bear.to_eval_px(bear.points), bear.points)


def test_resize_is_pil_lanczos_and_skips_256_frames():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 30, 40, 3), dtype=np.uint8)
    resized = resize_frames(frames)
    expected = np.asarray(Image.fromarray(frames[1]).resize((256, 256), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(resized[1], expected)
    flat = np.full((1, 30, 40, 3), 77, np.uint8)
    assert (resize_frames(flat) == 77).all()  # Lanczos weights sum to one
    square = rng.integers(0, 256, size=(1, 256, 256, 3), dtype=np.uint8)
    assert resize_frames(square) is square


def test_davis_full_res_keeps_frames_and_maps_predictions_to_256(tmp_path):
    bear = next(read_davis(_davis(tmp_path), full_res=True))
    assert bear.frames.shape == (3, 48, 64, 3)
    np.testing.assert_array_equal(bear.points[0], [[16, 24], [32, 36], [48, 6]])  # fractions * (64, 48)
    np.testing.assert_array_equal(bear.eval_points[0], [[64, 128], [128, 192], [192, 32]])
    np.testing.assert_array_equal(bear.to_eval_px(bear.points), bear.eval_points)
    queries = video_queries(bear, "first")
    np.testing.assert_array_equal(queries.query_points, [[0, 16, 24]])  # in the frames' pixels
    np.testing.assert_array_equal(queries.target_points, bear.eval_points)  # in 256x256 pixels


def test_video_filter_and_limit(tmp_path):
    path = _davis(tmp_path)
    assert [v.name for v in read_davis(path, videos=["car-shadow"])] == ["car-shadow"]
    assert [v.name for v in read_davis(path, videos=["b*"])] == ["bear"]
    assert [v.name for v in read_davis(path, limit=1)] == ["bear"]
    assert [v.name for v in read_davis(path, videos="bear")] == ["bear"]  # a lone string is one name
    assert len(list(read_davis(path, videos=[]))) == 2  # empty = no filter
    with pytest.raises(DataError, match="no video matches bera"):
        list(read_davis(path, videos=["bera"]))


def test_rgb_stacking_list_is_named_by_index(tmp_path):
    examples = [make_example(3, 32, 32, FRACTIONS, FRACTIONS_OCC, seed=s) for s in range(2)]
    path = write_rgb_stacking_pickle(tmp_path / "tapvid_rgb_stacking.pkl", examples)
    videos = list(read_rgb_stacking(path))
    assert [v.name for v in videos] == ["tapvid_rgb_stacking_0000", "tapvid_rgb_stacking_0001"]
    assert videos[1].frames.shape == (3, 256, 256, 3)
    with pytest.raises(DataError, match="expected a list"):
        list(read_rgb_stacking(_davis(tmp_path)))


def test_kinetics_shards_decode_jpeg_frames(tmp_path):
    flat = make_example(3, 40, 60, FRACTIONS, FRACTIONS_OCC)
    flat["video"][:] = (200, 100, 50)  # flat colour survives JPEG almost exactly
    other = make_example(3, 40, 60, FRACTIONS, FRACTIONS_OCC, seed=3)
    folder = tmp_path / "kinetics"
    write_kinetics_shard(folder / "0000_of_0002.pkl", [flat, other])
    write_kinetics_shard(folder / "0001_of_0002.pkl", [other], as_numpy_bytes=True)

    videos = list(read_kinetics(folder))
    assert [v.name for v in videos] == ["0000_of_0002_0000", "0000_of_0002_0001", "0001_of_0002_0000"]
    for video in videos:
        assert video.frames.shape == (3, 256, 256, 3) and video.frames.dtype == np.uint8
        np.testing.assert_array_equal(video.points[0], [[64, 128], [128, 192], [192, 32]])
    assert np.abs(videos[0].frames.astype(int) - (200, 100, 50)).max() <= 3
    np.testing.assert_array_equal(videos[1].frames, videos[2].frames)  # list and numpy-bytes storage agree

    full = next(read_tapvid("kinetics", folder / "0001_of_0002.pkl", full_res=True))
    assert full.frames.shape == (3, 40, 60, 3)
    np.testing.assert_array_equal(full.points[0, 0], [15, 20])
    assert [v.name for v in read_kinetics(folder, videos=["0001_*"])] == ["0001_of_0002_0000"]
    with pytest.raises(DataError, match="no TAP-Vid-Kinetics shards"):
        read_kinetics(tmp_path / "kinetics" / "..")


def test_malformed_files_raise_one_line_data_errors(tmp_path):
    broken = make_example(3, 8, 8, FRACTIONS, FRACTIONS_OCC)
    del broken["occluded"]
    path = write_davis_pickle(tmp_path / "broken.pkl", {"bear": broken})
    with pytest.raises(DataError, match="'bear' lacks the key 'occluded'"):
        list(read_davis(path))
    bad_shape = make_example(3, 8, 8, FRACTIONS[:, :2], FRACTIONS_OCC[:, :2])
    path = write_davis_pickle(tmp_path / "short.pkl", {"bear": bad_shape})
    with pytest.raises(DataError, match=r"points must be float \(N, 3, 2\)"):
        list(read_davis(path))
    not_pickle = tmp_path / "notes.pkl"
    not_pickle.write_text("hello")
    with pytest.raises(DataError, match="cannot read TAP-Vid pickle") as info:
        load_tapvid_pickle(not_pickle)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        load_tapvid_pickle(tmp_path / "missing.pkl")


# ------------------------------------------------------------------------------------------------ unpickler


@pytest.mark.parametrize(
    ("payload_class", "refused"),
    [
        (SystemCallPayload, r"(posix|nt)\.system"),
        (ExecPayload, r"builtins\.exec"),
        (TouchPayload, r"pathlib\.Path\.touch"),
    ],
)
def test_hostile_pickle_is_refused_before_it_runs(tmp_path, payload_class, refused):
    marker = tmp_path / "pwned"
    path = write_hostile_pickle(tmp_path / "tapvid_davis.pkl", payload_class(marker))
    with pytest.raises(DataError, match=f"refuses to load {refused} from .*tapvid_davis.pkl") as info:
        list(read_davis(path))
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_touch_payload_really_runs_under_plain_pickle(tmp_path):
    # The hostile pickles are real: the unrestricted unpickler would have run them.
    marker = tmp_path / "ran"
    pickle.loads((write_hostile_pickle(tmp_path / "x.pkl", TouchPayload(marker))).read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    data = {"bear": make_example(3, 8, 8, FRACTIONS, FRACTIONS_OCC), "extra": {1, 2}, "s": np.float32(1.5)}
    loaded = load_tapvid_pickle(write_pickle(tmp_path / "p.pkl", data, protocol))
    np.testing.assert_array_equal(loaded["bear"]["video"], data["bear"]["video"])
    np.testing.assert_array_equal(loaded["bear"]["points"], data["bear"]["points"])
    assert loaded["extra"] == {1, 2} and loaded["s"] == np.float32(1.5)


def test_numpy1_module_names_load(tmp_path):
    # Files written under numpy 1.x (as the released TAP-Vid pickles were) name numpy.core.multiarray.
    raw = pickle.dumps({"a": np.arange(4, dtype=np.float32)}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    path = tmp_path / "old.pkl"
    path.write_bytes(raw)
    np.testing.assert_array_equal(load_tapvid_pickle(path)["a"], np.arange(4, dtype=np.float32))


def test_codecs_encode_only_for_latin1(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVutf-16\ntR.")
    with pytest.raises(DataError, match="only latin-1"):
        load_tapvid_pickle(path)
