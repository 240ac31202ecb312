"""`vidcorr eval tapvid --labels K`: K labels per query from the ground truth, label frames never scored, K-label
runs kept apart (run folder, results lines, report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_tapvid import make_example, write_davis_pickle
from typer.testing import CliRunner

from vidcorr.eval.tapvid import runner as tapvid_runner
from vidcorr.eval.tapvid.data import label_frames
from vidcorr.eval.tapvid.metrics import compute_tapvid_metrics
from vidcorr.eval.tapvid.results import TapVidPrediction
from vidcorr_cli.app import app

cli = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]


def test_label_frames_by_hand():
    visible_all = np.zeros(20, bool)
    # Span 0..19, K = 3: the centres of two equal parts, 4.75 and 14.25 -> frames 5 and 14.
    np.testing.assert_array_equal(label_frames(visible_all, 0, 3), [0, 5, 14])
    # Visible 2-4, 9, 15-16; query 2; span 2..16: 5.5 -> 4 (1.5 away), 12.5 -> 15 (2.5 away; 9 is 3.5).
    occluded = np.ones(20, bool)
    occluded[[2, 3, 4, 9, 15, 16]] = False
    np.testing.assert_array_equal(label_frames(occluded, 2, 3), [2, 4, 15])
    # A tie (2.5 between 2 and 3): the earlier. A strided query in mid-track: labels on both sides.
    np.testing.assert_array_equal(label_frames(np.zeros(6, bool), 0, 2), [0, 2])
    np.testing.assert_array_equal(label_frames(visible_all, 10, 3), [5, 10, 14])
    # Fewer visible frames than K: all of them.
    few = np.ones(6, bool)
    few[[1, 3]] = False
    np.testing.assert_array_equal(label_frames(few, 1, 4), [1, 3])
    np.testing.assert_array_equal(label_frames(visible_all, 7, 1), [7])


# One track of six frames, always visible, at (128, 128) in 256x256 pixels; K = 2 labels its query (frame 0) and
# frame 2. The predictor: exact on 1 and 3, 3 px off on 4, right place but "occluded" on 5, far off on the label 2.
OCCLUDED = np.zeros((1, 6), bool)
POINTS = np.full((1, 6, 2), 0.5)


def _hand_prediction(points: np.ndarray, occluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    predicted = points.copy()
    predicted[:, 2] = (0.0, 0.0)
    predicted[:, 4, 0] += 3.0
    occluded = np.zeros(predicted.shape[:2], bool)
    occluded[:, 5] = True
    return predicted, occluded


# Scored frames 1, 3, 4, 5 (4 visible). d = 1, 2: within {1, 3, 5}, TP {1, 3}, FP {4}: Jaccard 2 / 5 = 0.4,
# within 3/4. d = 4, 8, 16: within all 4, TP {1, 3, 4}, FP none: Jaccard 3 / 4, within 1.
# AJ = (0.4 + 0.4 + 0.75 * 3) / 5 = 0.61; delta_avg = (0.75 * 2 + 1 * 3) / 5 = 0.9; OA = 3 / 4 (frame 5 wrong).
EXPECTED = {"average_jaccard": 0.61, "average_pts_within_thresh": 0.9, "occlusion_accuracy": 0.75}


def test_hand_computed_metrics_exclude_the_labels():
    target = POINTS * 256
    predicted, occluded = _hand_prediction(target)
    excluded = np.zeros((1, 6), bool)
    excluded[0, [0, 2]] = True
    metrics = compute_tapvid_metrics(np.array([[0.0, 128, 128]]), OCCLUDED, target, occluded, predicted, "first",
                                     excluded)
    for name, value in EXPECTED.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_davis_pickle(tmp_path / "davis.pkl", {"six": make_example(6, 32, 48, POINTS, OCCLUDED, seed=1)})


def _predict_with(monkeypatch: pytest.MonkeyPatch, make) -> list:
    seen = []

    def predict(ldm, video, queries, cfg, *, progress=None, **options) -> TapVidPrediction:
        seen.append(queries)
        points, occluded = make(video.points[queries.track_index], video.occluded[queries.track_index].copy())
        return TapVidPrediction(points, occluded)

    monkeypatch.setattr(tapvid_runner, "predict_video", predict)
    return seen


def _run(data: Path, out: Path, *extra: str) -> dict:
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", "--data-root", str(data), "--out", str(out),
                              *extra, *TINY])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def test_a_perfect_predictor_scores_100_and_label_frames_are_never_scored(data, tmp_path, monkeypatch):
    seen = _predict_with(monkeypatch, lambda p, o: (p, o))
    (group,) = _run(data, tmp_path / "perfect", "--labels", "3")["tapvid"]
    assert set(group["mean"].values()) == {100.0} and group["labels"] == 3
    (queries,) = seen
    # K = 3 over frames 0..5: the query 0, then the frames nearest 1.25 and 3.75.
    np.testing.assert_array_equal(queries.label_points[0][:, 0], [0, 1, 4])
    np.testing.assert_array_equal(queries.label_points[0][:, 1:], np.full((3, 2), 128.0))

    # Far off and "occluded" on the label frames only: still 100.
    def wrong_on_label_frames(points, occluded):
        points, occluded = points.copy(), occluded.copy()
        points[:, [1, 4]] = -50.0
        occluded[:, [1, 4]] = True
        return points, occluded

    _predict_with(monkeypatch, wrong_on_label_frames)
    (group,) = _run(data, tmp_path / "labels-wrong", "--labels", "3")["tapvid"]
    assert set(group["mean"].values()) == {100.0}
    # The same predictions under tapnet's protocol are scored on frames 1 and 4 too.
    (group,) = _run(data, tmp_path / "standard")["tapvid"]
    assert group["labels"] == 1 and group["mean"]["average_jaccard"] < 100.0


def test_a_hand_computed_case_through_the_command_and_the_report(data, tmp_path, monkeypatch):
    _predict_with(monkeypatch, _hand_prediction)
    out = tmp_path / "k2"
    (group,) = _run(data, out, "--labels", "2")["tapvid"]
    for name, value in EXPECTED.items():
        assert group["mean"][name] == pytest.approx(100 * value, abs=1e-9)
    (line,) = [json.loads(x) for x in (out / "tapvid.jsonl").read_text().splitlines()]
    assert line["labels"] == 2
    assert json.loads((out / "run.json").read_text())["labels"] == 2
    saved = np.load(out / "predictions" / "six.npz")
    np.testing.assert_array_equal(saved["labels"], [[0, 128, 128], [2, 128, 128]])
    np.testing.assert_array_equal(saved["label_query"], [0, 0])
    # The standard protocol's run of the same predictor, reported together: two groups, each titled.
    standard = tmp_path / "k1"
    _run(data, standard)
    assert "labels" not in json.loads((standard / "run.json").read_text())
    reported = cli.invoke(app, ["eval", "report", str(out), str(standard), "--out", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    groups = json.loads((tmp_path / "report.json").read_text())["tapvid"]
    # K = 1 scores frames 1-5 (5 visible), frame 2 far off and visible: a false positive at every d. d = 1, 2:
    # TP {1, 3}, FP {2, 4}: 2 / 7; d = 4, 8, 16: TP {1, 3, 4}, FP {2}: 3 / 6. AJ = (2 * 2/7 + 3 * 1/2) / 5 = 29/70.
    assert [g["labels"] for g in groups] == [1, 2]
    assert [g["mean"]["average_jaccard"] for g in groups] == pytest.approx([100 * 29 / 70, 61.0], abs=1e-9)
    assert "TAP-Vid-DAVIS, query_first, 256x256, 2 labels per query (not scored)" in reported.stdout
    assert [bool(g["reference"]["methods"]) for g in groups] == [True, False]  # no other tracker has K labels


def test_the_run_folder_is_keyed_by_k(data, tmp_path, monkeypatch):
    _predict_with(monkeypatch, lambda p, o: (p, o))
    monkeypatch.chdir(tmp_path)
    _run(data, tmp_path / "explicit", "--labels", "2")
    result = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", "--data-root", str(data), "--labels", "3",
                              *TINY])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "vidcorr-eval" / "tapvid-davis-first-labels3" / "tapvid.jsonl").is_file()
    # A folder run with K = 2 refuses to resume as K = 3.
    again = cli.invoke(app, ["eval", "tapvid", "--dataset", "davis", "--data-root", str(data), "--labels", "3",
                             "--out", str(tmp_path / "explicit"), *TINY])
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'explicit'} holds a run with other settings (labels 2 there, 3 now); resume it with the "
        "same options or choose another --out")


def test_the_tracker_with_k_labels_end_to_end(data, tmp_path):
    out = tmp_path / "tiny"
    _run(data, out, "--labels", "2")
    saved = np.load(out / "predictions" / "six.npz")
    # Every label frame holds its label (in 256x256 pixels here).
    np.testing.assert_allclose(saved["points"][0, [0, 2]], [[128, 128], [128, 128]], rtol=1e-6)
    assert not saved["occluded"][0, [0, 2]].any()
