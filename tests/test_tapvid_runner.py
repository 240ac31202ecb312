"""`vidcorr eval tapvid`: synthetic TAP-Vid files end to end with the tiny model, ground truth scoring 100,
resuming after a kill, shards, the report, and hostile pickles refused at the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from synthetic_tapvid import (
    SystemCallPayload,
    make_example,
    write_davis_pickle,
    write_hostile_pickle,
    write_kinetics_shard,
    write_rgb_stacking_pickle,
)
from typer.testing import CliRunner

from vidcorr.errors import DataError
from vidcorr.eval import report
from vidcorr.eval.tapvid import results as tapvid_results
from vidcorr.eval.tapvid import runner as tapvid_runner
from vidcorr.eval.tapvid.metrics import metric_names
from vidcorr.eval.tapvid.results import (
    TAPVID_RECORDS,
    TapVidPrediction,
    score_from_json,
    score_to_json,
)
from vidcorr.eval.tapvid.runner import TapVidSource
from vidcorr_cli.app import app

cli = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]

# Two tracks over three frames: track 0 visible on frames 0-1, track 1 from frame 1 on. Every video has
# frames to score in both query modes.
POINTS = np.array([[[0.2, 0.3], [0.25, 0.35], [0.3, 0.4]], [[0.7, 0.6], [0.65, 0.6], [0.6, 0.55]]])
OCCLUDED = np.array([[False, False, True], [True, False, False]])


def _video(seed: int, height: int = 32, width: int = 48, points: np.ndarray = POINTS) -> dict[str, np.ndarray]:
    return make_example(3, height, width, points, OCCLUDED, seed)


@pytest.fixture
def davis(tmp_path: Path) -> Path:
    """A DAVIS-format pickle of three videos (frames of different sizes), as tapnet's zip unpacks it."""
    videos = {"bear": _video(1), "camel": _video(2, 40, 40, POINTS[::-1] * 0.9), "dog": _video(3, 24, 64)}
    return write_davis_pickle(tmp_path / "data" / "tapvid_davis" / "tapvid_davis.pkl", videos)


def ground_truth(monkeypatch: pytest.MonkeyPatch, calls: list[str] | None = None, stop_at: int | None = None) -> None:
    """Make the method's step return each query's ground-truth track and occlusion (in the tracked frames'
    pixels), optionally stopping with Ctrl-C at call `stop_at`."""

    def predict(ldm, video, queries, cfg, *, progress=None, **options) -> TapVidPrediction:
        if calls is not None:
            calls.append(video.name)
            if stop_at is not None and len(calls) == stop_at:
                raise KeyboardInterrupt
        return TapVidPrediction(video.points[queries.track_index], video.occluded[queries.track_index].copy())

    monkeypatch.setattr(tapvid_runner, "predict_video", predict)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_davis_and_kinetics_end_to_end_with_the_tiny_model_shards_and_report(tmp_path: Path, davis: Path) -> None:
    out = tmp_path / "davis"
    args = ["eval", "tapvid", "--dataset", "davis", "--data-root", str(tmp_path / "data"), "--limit", "2",
            "--out", str(out), *TINY]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tapvid davis first: 2/2 videos; camel done in" in result.stdout
    assert "mean over 2 videos" in result.stdout and "TAPIR (reference, other" in result.stdout
    lines = _lines(out / "tapvid.jsonl")
    assert [(line["video"], line["num_queries"]) for line in lines] == [("bear", 2), ("camel", 2)]
    for line in lines:
        assert set(line["metrics"]) == set(metric_names())
        assert all(0.0 <= value <= 1.0 for value in line["metrics"].values())
    # The predictions file is what the line's digest and metrics were computed from.
    saved = np.load(out / "predictions" / "bear.npz")
    assert saved["points"].shape == (2, 3, 2) and saved["occluded"].shape == (2, 3)
    assert tapvid_results.predictions_digest(saved["points"], saved["occluded"]) == lines[0]["predictions_sha256"]
    first_visible_xy = POINTS.astype(np.float32)[[0, 1], [0, 1]].astype(np.float64) * 256  # stored as float32
    np.testing.assert_array_equal(saved["query_points"], np.column_stack([[0, 1], first_visible_xy]))
    setup = json.loads((out / "run.json").read_text())
    assert (setup["benchmark"], setup["dataset"], setup["query_mode"], setup["full_res"]) == ("tapvid", "davis",
                                                                                             "first", False)
    assert setup["model"] == "tiny" and setup["config"]["num_steps"] == 1 and setup["visibility_threshold"] == 0.5
    mean = json.loads((out / "report.json").read_text())["tapvid"][0]["mean"]
    assert mean["average_jaccard"] == pytest.approx(50 * sum(line["metrics"]["average_jaccard"] for line in lines))

    again = cli.invoke(app, args)  # every video is done: nothing is computed, nothing is appended
    assert again.exit_code == 0, again.output
    assert "tapvid davis first: 2/2 videos; 2 done before; mean so far AJ" in again.stdout
    assert "0 videos evaluated" in again.stdout and "2 resumed" in again.stdout
    assert len(_lines(out / "tapvid.jsonl")) == 2

    # Each video's predictions depend on that video alone: two shards merged equal the unsharded run.
    sharded = tmp_path / "sharded"
    for index in range(2):
        shard = cli.invoke(app, [*args[:-len(TINY) - 2], "--out", str(sharded), "--shard", f"{index}/2", *TINY])
        assert shard.exit_code == 0, shard.output
        assert f"shard {index}/2 done" in shard.stdout
    merged = TAPVID_RECORDS.merge(sorted(sharded.glob("tapvid-shard*.jsonl")))
    assert [(s.video, s.predictions_sha256, s.metrics) for s in merged] == [
        (line["video"], line["predictions_sha256"], line["metrics"]) for line in lines]

    # Kinetics: JPEG frames in a folder of shards, strided queries; a query half a pixel left of the frame
    # (as generate_tapvid.py stores some) is clipped for tracking instead of failing.
    points = POINTS.copy()
    points[0, 0, 0] = -0.5 / 32
    write_kinetics_shard(tmp_path / "data" / "tapvid_kinetics" / "0000_of_0001.pkl", [_video(4, 24, 32, points)])
    kinetics = tmp_path / "kinetics"
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", "kinetics", "--data-root", str(tmp_path / "data"),
                              "--query-mode", "strided", "--out", str(kinetics), *TINY])
    assert result.exit_code == 0, result.output
    (line,) = _lines(kinetics / "tapvid.jsonl")
    assert (line["video"], line["query_mode"], line["num_queries"]) == ("0000_of_0001_0000", "strided", 1)

    # The report merges both runs (a folder and a file) and prints each per-video table and its mean.
    reported = cli.invoke(app, ["eval", "report", str(out), str(kinetics / "tapvid.jsonl"), "--out", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    for text in ("TAP-Vid-DAVIS, query_first, 256x256", "TAP-Vid-Kinetics, strided, 256x256", "bear", "camel",
                 "0000_of_0001_0000", "mean over 2 videos", "mean over 1 video ", "OTHER trackers'"):
        assert text in reported.stdout
    groups = json.loads((tmp_path / "report.json").read_text())["tapvid"]
    assert [(g["dataset"], g["query_mode"], g["num_videos"]) for g in groups] == [("davis", "first", 2),
                                                                               ("kinetics", "strided", 1)]
    assert groups[0]["reference"]["methods"][0] == {
        "method": "TAPIR", "source": "Doersch et al. 2023 (TAPIR, ICCV)", "average_jaccard": 56.2,
        "average_pts_within_thresh": 70.0, "occlusion_accuracy": 86.5}
    assert "| bear | 3 | 2 | 2 |" in (tmp_path / "report.md").read_text()
    # One picture per group beside report.md, linked from it: points within d against d, δ_avg as lines.
    davis_group = report.build_report([out]).tapvid[0]
    figure = davis_group.figure()
    assert figure.series[0].xs == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert figure.series[0].ys == tuple(100 * davis_group.mean[f"pts_within_{d}"] for d in (1, 2, 4, 8, 16))
    assert [(a.label.split(" ")[0], a.x, a.value) for a in figure.anchors] == [
        ("vidcorr", None, 100 * davis_group.mean["average_pts_within_thresh"]), ("TAPIR", None, 70.0),
        ("CoTracker2", None, 75.4)]
    assert "](report-tapvid-davis-first.png)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report-tapvid-kinetics-strided.png").stat().st_size > 0


@pytest.mark.parametrize(("dataset", "mode", "extra"), [("davis", "first", []), ("davis", "strided", ["--full-res"]),
                                                        ("rgb_stacking", "first", ["--videos", "*_0001"])])
def test_ground_truth_scores_100_on_every_metric(tmp_path: Path, davis: Path, monkeypatch: pytest.MonkeyPatch,
                                                dataset: str, mode: str, extra: list[str]) -> None:
    ground_truth(monkeypatch)
    data = davis
    if dataset == "rgb_stacking":
        data = write_rgb_stacking_pickle(tmp_path / "rgb.pkl", [_video(5), _video(6, 50, 30)])
    out = tmp_path / "out"
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", dataset, "--data-root", str(data), "--query-mode", mode,
                              "--out", str(out), *extra, *TINY])
    assert result.exit_code == 0, result.output
    (group,) = json.loads((out / "report.json").read_text())["tapvid"]
    assert group["full_res"] == ("--full-res" in extra)
    assert group["num_videos"] == (1 if dataset == "rgb_stacking" else 3)
    assert set(group["mean"].values()) == {100.0}
    assert all(set(video["metrics"].values()) == {100.0} for video in group["per_video"].values())
    if "--full-res" in extra:
        assert "full resolution, scored at 256x256" in result.stdout


def test_resume_after_a_kill_leaves_each_video_once(tmp_path: Path, davis: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    ground_truth(monkeypatch, calls, stop_at=2)
    out = tmp_path / "out"
    args = ["eval", "tapvid", "--dataset", "davis", "--data-root", str(davis), "--out", str(out), *TINY]
    result = cli.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: interrupted; 1 of 3 videos are saved in {out / 'tapvid.jsonl'}; run the same command again to resume")
    # A kill in the middle of writing camel's line leaves half a line behind: it is cut off and camel redone.
    results = out / "tapvid.jsonl"
    first = results.read_text()
    results.write_text(first + first.replace('"bear"', '"camel"')[: len(first) // 2])
    rerun: list[str] = []
    ground_truth(monkeypatch, rerun)
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert rerun == ["camel", "dog"]
    assert [line["video"] for line in _lines(results)] == ["bear", "camel", "dog"]


def test_launcher_ranks_shard_the_videos(tmp_path: Path, davis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    ground_truth(monkeypatch, calls)
    out = tmp_path / "out"
    for rank in range(2):
        monkeypatch.setenv("SLURM_PROCID", str(rank))
        monkeypatch.setenv("SLURM_NTASKS", "2")
        result = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", "--data-root", str(davis), "--out", str(out),
                                  *TINY])
        assert result.exit_code == 0, result.output
    assert calls == ["bear", "dog", "camel"]
    assert [[line["video"] for line in _lines(out / f"tapvid-shard{i}of2.jsonl")] for i in range(2)] == [
        ["bear", "dog"], ["camel"]]


def test_a_pickle_that_calls_a_function_is_refused_in_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write_hostile_pickle(tmp_path / "tapvid_davis.pkl", SystemCallPayload(marker))
    out = tmp_path / "out"
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", "--data-root", str(tmp_path), "--out", str(out),
                              *TINY])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: TAP-Vid reader refuses to load posix.system from {tmp_path / 'tapvid_davis.pkl'}")
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(("args", "expected"), [
    ([], "error: give the TAP-Vid data with --data-root PATH (the pickle, the Kinetics shard folder, or a folder "
         "holding them; or set VIDCORR_DATA_ROOT)"),
    (["--data-root", "{tmp}"], "error: {tmp}: no tapvid_davis.pkl or tapvid_davis/tapvid_davis.pkl in this folder; "
                               "give the pickle itself with --data-root"),
    (["--data-root", "{pkl}", "--videos", "bear,zebra*"], "error: {pkl}: no video matches zebra*"),
    (["--data-root", "{pkl}", "--limit", "0"], "error: --limit must be a positive number of videos, got 0"),
    (["--data-root", "{pkl}", "--shard", "3/2"], "error: --shard index must be in 0..1, got '3/2'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, davis: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "out"
    filled = [a.format(tmp=tmp_path, pkl=davis) for a in args]
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", *filled, "--out", str(out), "--model", "tiny"],
                        env={"VIDCORR_DATA_ROOT": None})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [expected.format(tmp=tmp_path, pkl=davis)]
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ library


def test_names_are_the_readers_names_and_data_roots_resolve(tmp_path: Path, davis: Path) -> None:
    rgb = write_rgb_stacking_pickle(tmp_path / "rgb.pkl", [_video(5), _video(6), _video(7)])
    for index in range(2):
        write_kinetics_shard(tmp_path / "kin" / f"000{index}_of_0002.pkl", [_video(8 + index), _video(10 + index)])
    cases = {
        ("davis", davis): [(), ("c*", "b*")],
        ("rgb_stacking", rgb): [(), ("*1",)],
        ("kinetics", tmp_path / "kin"): [(), ("0001_*",)],
    }
    for (dataset, path), filters in cases.items():
        for videos in filters:
            for limit in (None, 1, 3):
                source = TapVidSource(dataset, path, videos=videos, limit=limit)
                assert source.names() == [video.name for video in source.read()]
    assert TapVidSource("kinetics", tmp_path / "kin", limit=3).names() == [
        "0000_of_0002_0000", "0000_of_0002_0001", "0001_of_0002_0000"]
    assert tapvid_runner.resolve_tapvid_path("davis", tmp_path / "data") == davis
    assert tapvid_runner.resolve_tapvid_path("davis", davis) == davis
    assert tapvid_runner.resolve_tapvid_path("kinetics", tmp_path / "kin") == tmp_path / "kin"
    with pytest.raises(DataError, match="no TAP-Vid-Kinetics shards"):
        tapvid_runner.resolve_tapvid_path("kinetics", tmp_path / "data")


def test_results_lines_round_trip_nan_and_a_torn_last_line(tmp_path: Path) -> None:
    metrics = {name: 0.25 for name in metric_names()}
    metrics["jaccard_1"] = math.nan
    score = tapvid_results.VideoScore("davis", "bear", "first", False, metrics, 3, 2, 2, (32, 48), "ab" * 32,
                                     {"seconds": 1.5})
    assert score_to_json(score)["metrics"]["jaccard_1"] is None
    back = score_from_json(json.loads(json.dumps(score_to_json(score))))
    assert math.isnan(back.metrics["jaccard_1"]) and back.metrics["jaccard_2"] == 0.25 and back.extra == score.extra
    path = tmp_path / "tapvid.jsonl"
    with TAPVID_RECORDS.writer(path, fsync=False) as writer:
        writer.write(score)
    path.write_text(path.read_text() + '{"v": 1, "benchmark": "tapvid", "vid')
    assert [s.video for s in TAPVID_RECORDS.read(path)] == ["bear"]
    assert TAPVID_RECORDS.holds(path)
    with TAPVID_RECORDS.writer(path, fsync=False):
        pass
    assert path.read_text().count("\n") == 1 and path.read_text().endswith("}\n")

    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(score_to_json(tapvid_results.VideoScore(
        "davis", "bear", "first", False, metrics, 3, 2, 2, (32, 48), "cd" * 32))) + "\n")
    with pytest.raises(DataError, match="'bear' .* has different predictions in"):
        TAPVID_RECORDS.merge([path, other])
    other.write_text("not json\n" + other.read_text())
    with pytest.raises(DataError, match=r"other.jsonl:1: not a TAP-Vid results line"):
        TAPVID_RECORDS.read(other)
    assert not report.build_report([path]).benchmarks


def test_tapvid_streams_are_keyed_by_video_and_query(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    """Query k of two videos never shares draws; the same video gives the same prediction again."""
    from types import SimpleNamespace

    from vidcorr import Config
    from vidcorr.method.streams import item_point_ids

    cfg = Config(image_size=64, num_steps=1, restarts=1, crops=4, lr=0.05)
    frames = _video(3)["video"]
    queries = SimpleNamespace(num_queries=2, query_points=np.array([[0.0, 10.0, 12.0], [1.0, 30.0, 20.0]]),
                              label_points=None)
    seen = []
    original = tapvid_runner.track
    monkeypatch.setattr(tapvid_runner, "track", lambda *a, point_ids=None, **k: seen.append(point_ids) or original(
        *a, point_ids=point_ids, **k))

    def video(name: str):
        return SimpleNamespace(name=name, frames=frames, num_frames=len(frames), size_hw=frames.shape[1:3])

    bear = tapvid_runner.predict_video(tiny, video("bear"), queries, cfg)
    again = tapvid_runner.predict_video(tiny, video("bear"), queries, cfg)
    camel = tapvid_runner.predict_video(tiny, video("camel"), queries, cfg)
    assert seen == [item_point_ids("bear", 2)] * 2 + [item_point_ids("camel", 2)]
    assert not set(seen[0]) & set(seen[2])
    np.testing.assert_array_equal(again.confidence, bear.confidence)
    np.testing.assert_array_equal(again.points_xy, bear.points_xy)
    assert np.abs(camel.confidence - bear.confidence).max() > 1e-6
