"""`vidcorr eval jhmdb`: the data in the publisher's layout, the 1-based conversion, CRW's and tapnet's PCK by hand
and against transcriptions of their code, broken clips, shards and resume, the download, and a tiny-model run
end to end through the CLI with its report, picture and viewer pages."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_jhmdb import make_clip, write_clip, write_jhmdb, write_split
from typer.testing import CliRunner

from vidcorr.errors import DataError, InputError
from vidcorr.eval import download, report
from vidcorr.eval.jhmdb import data as jhmdb_data
from vidcorr.eval.jhmdb import runner as jhmdb_runner
from vidcorr.eval.jhmdb.data import JOINTS, JhmdbSource, load_joints, matlab_to_pixel_centres, read_video
from vidcorr.eval.jhmdb.pck import CURVE_ALPHAS, alpha_index, pool, score_video
from vidcorr.eval.jhmdb.results import JHMDB_RECORDS, JhmdbPrediction, score_from_json, score_to_json
from vidcorr.runs.folder import RunOptions
from vidcorr.web.view import build_site
from vidcorr_cli.app import app

cli = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]
W, H = 320, 240


def _pck(counts, alpha: float) -> float:
    return float(counts.mean()[alpha_index(alpha)])


def _per_joint(counts, alpha: float) -> np.ndarray:
    return counts.per_joint()[:, alpha_index(alpha)]


@pytest.fixture
def jhmdb_root(tmp_path: Path) -> Path:
    """Three test videos over two actions (one clip with fewer joint frames than PNGs, one with more) and a
    train video the benchmark must not list."""
    return write_jhmdb(tmp_path / "data", {
        ("clap", "b_clap"): make_clip(4, 1),
        ("clap", "a_clap"): make_clip(5, 2, joint_frames=3),
        ("golf", "swing"): make_clip(3, 3, joint_frames=6),
    }, train={"golf": ["practice"]})


# ----------------------------------------------------------------------------------------------- data


def test_split_order_filters_and_the_1_based_conversion(jhmdb_root: Path) -> None:
    source = JhmdbSource(jhmdb_data.resolve_root(jhmdb_root))
    # By action (split files sorted), then in the split file's order; train lines (1) left out.
    assert source.names() == ["clap/a_clap", "clap/b_clap", "golf/swing"]
    assert JhmdbSource(source.root, actions=("golf",)).names() == ["golf/swing"]
    assert JhmdbSource(source.root, videos=("b_*",)).names() == ["clap/b_clap"]
    assert JhmdbSource(source.root, videos=("golf/swing", "a_clap")).names() == ["clap/a_clap", "golf/swing"]
    assert JhmdbSource(source.root, limit=2).names() == ["clap/a_clap", "clap/b_clap"]
    with pytest.raises(InputError, match="unknown JHMDB action 'kiss'; expected one of clap, golf"):
        JhmdbSource(source.root, actions=("kiss",)).names()
    with pytest.raises(InputError, match="no JHMDB test video matches practice"):
        JhmdbSource(source.root, videos=("practice",)).names()

    # MATLAB's (1, 1) is the top-left pixel, whose centre is vidcorr's (0.5, 0.5).
    np.testing.assert_array_equal(matlab_to_pixel_centres(np.array([[1.0, 1.0], [320.0, 240.0]])),
                                  [[0.5, 0.5], [319.5, 239.5]])
    video = read_video(source.root, "clap", "b_clap")
    stored = make_clip(4, 1).pos_img  # 2 x 15 x T as written
    np.testing.assert_array_equal(video.joints_matlab, stored.transpose(2, 1, 0))
    np.testing.assert_array_equal(video.joints_xy, stored.transpose(2, 1, 0) - 0.5)
    assert video.size_wh == (64, 48) and video.num_frames == 4
    np.testing.assert_array_equal(video.frames[2], make_clip(4, 1).frames[2])  # PNG round trip, RGB order

    labels = jhmdb_runner.joint_labels(video, (0,))
    assert labels.ids == JOINTS and labels.counts.tolist() == [1] * 15
    np.testing.assert_array_equal(labels.labels[3], [[0.0, *(stored[:, 3, 0] - 0.5)]])


def test_joints_files_and_a_one_frame_clip(tmp_path: Path) -> None:
    from scipy.io import savemat

    one = tmp_path / "one.mat"
    savemat(str(one), {"pos_img": np.arange(30, dtype=float).reshape(2, 15, 1)})  # MATLAB drops the last 1
    assert load_joints(one).shape == (1, 15, 2)
    assert load_joints(one)[0, 4].tolist() == [4.0, 19.0]
    bad = tmp_path / "bad.mat"
    savemat(str(bad), {"pos_img": np.zeros((2, 14, 3))})
    with pytest.raises(DataError, match="'pos_img' must be 2 x 15 x T, got 2 x 14 x 3"):
        load_joints(bad)
    savemat(str(bad), {"pos_world": np.zeros((2, 15, 3))})
    with pytest.raises(DataError, match="no 'pos_img' in this .mat file"):
        load_joints(bad)
    with pytest.raises(DataError, match="expected JHMDB's splits/, Rename_Images/ and joint_positions/ here"):
        jhmdb_data.resolve_root(tmp_path)


def test_broken_clips_are_cut_to_frames_with_both_an_image_and_joints(jhmdb_root: Path) -> None:
    root = jhmdb_data.resolve_root(jhmdb_root)
    shorter_joints = read_video(root, "clap", "a_clap")  # 5 PNGs, joints for 3 frames
    assert (shorter_joints.num_frames, shorter_joints.source_frames, shorter_joints.joint_frames) == (3, 5, 3)
    assert shorter_joints.joints_matlab.shape == (3, 15, 2)
    shorter_frames = read_video(root, "golf", "swing")  # 3 PNGs, joints for 6 frames
    assert (shorter_frames.num_frames, shorter_frames.source_frames, shorter_frames.joint_frames) == (3, 3, 6)
    np.testing.assert_array_equal(shorter_frames.joints_matlab,
                                  make_clip(3, 3, joint_frames=6).pos_img.transpose(2, 1, 0)[:3])
    # A gap in the frame names ends the clip (the frames are the consecutive ones from 00001.png).
    (root / "Rename_Images" / "clap" / "b_clap" / "00003.png").unlink()
    assert read_video(root, "clap", "b_clap").num_frames == 2


# ----------------------------------------------------------------------------------------------- the metric


def _box_case() -> np.ndarray:
    """(3, 15, 2) ground truth in vidcorr's pixels: joints 0-12 at (100, 100), 13 at (130, 100), 14 at (100, 140):
    a 30 x 40 box, diagonal 50, reference size 0.6 x 50 = 30 pixels on every frame."""
    truth = np.tile([100.0, 100.0], (3, 15, 1))
    truth[:, 13] = [130.0, 100.0]
    truth[:, 14] = [100.0, 140.0]
    return truth


def test_a_perfect_predictor_scores_100_under_every_row() -> None:
    truth = _box_case()
    counts = score_video(truth, np.ones((3, 15), bool), truth + 0.5, (W, H))
    for row in ("crw", "crw_visibility", "tapnet"):
        assert counts[row].mean().tolist() == [100.0] * len(CURVE_ALPHAS)
    assert counts["crw"].scored.tolist() == [2] * 15  # frame 1 not scored
    assert counts["tapnet"].scored.tolist() == [3] * 15  # frame 1 scored


def test_known_offsets_give_the_hand_computed_fractions() -> None:
    truth = _box_case()
    pred = truth.copy()
    pred[0] += 100.0  # frame 1 is the method's input: CRW never scores it
    pred[1, 0, 0] += 2.9  # 2.9 / 30 = 0.097: correct from alpha 0.1 (3 px), not at 0.075 (2.25 px)
    pred[2, 0, 0] += 2.9
    pred[1, 1, 0] += 2.9
    pred[2, 1, 0] += 5.0  # 0.167: wrong at 0.1 (3 px), right at 0.175 (5.25 px)
    pred[1, 2, 1] += 7.0  # 0.233 and 0.267: wrong at 0.2 (6 px), right at 0.3 (9 px); 0.25 (7.5 px) takes one
    pred[2, 2, 1] += 8.0
    counts = score_video(pred, np.ones((3, 15), bool), truth + 0.5, (W, H))["crw"]
    assert counts.scored.tolist() == [2] * 15
    expected = {0.075: [0, 0, 0], 0.1: [100, 50, 0], 0.175: [100, 100, 0], 0.2: [100, 100, 0],
                0.25: [100, 100, 50], 0.3: [100, 100, 100]}
    for alpha, first_three in expected.items():
        assert _per_joint(counts, alpha).tolist() == pytest.approx(first_three + [100.0] * 12), alpha
        assert _pck(counts, alpha) == pytest.approx((sum(first_three) + 1200) / 15), alpha
    assert _pck(counts, 0.1) == pytest.approx(90.0) and _pck(counts, 0.2) == pytest.approx(1400 / 15)
    # The size is 0.6 x the DIAGONAL: with 0.6 x the longer side (24 px) 2.9 px would miss at 0.1.
    assert 2.9 > 0.1 * 0.6 * 40 and 2.9 <= 0.1 * 0.6 * 50


def test_a_joint_predicted_absent_leaves_the_box_and_the_score_in_the_labelled_row() -> None:
    truth = _box_case()
    pred = truth.copy()
    pred[1:, 0, 0] += 2.9
    visible = np.ones((3, 15), bool)
    visible[1, 14] = False  # the joint that makes the box 40 px tall, predicted absent on frame 2
    counts = score_video(pred, visible, truth + 0.5, (W, H))
    # Headline: every joint predicted; 2.9 / 30 is within 0.1 on both frames.
    assert _pck(counts["crw"], 0.1) == 100.0
    # Labelled row, frame 2: joint 14 dropped from the box (now 30 x 0: size 0.6 x 30 = 18, 0.1 -> 1.8 px, so
    # joint 0's 2.9 px misses, 2.9 / 18 = 0.161 is within 0.175) and from the score (scored once, on frame 3).
    labelled = counts["crw_visibility"]
    assert labelled.scored.tolist() == [2] * 14 + [1]
    assert _per_joint(labelled, 0.1).tolist() == [50.0] + [100.0] * 14
    assert _per_joint(labelled, 0.175).tolist() == [100.0] * 15
    # The mean over joints (1450 / 15), not over joint-frames (28 of 29 correct).
    assert _pck(labelled, 0.1) == pytest.approx(1450 / 15)
    assert _pck(labelled, 0.1) != pytest.approx(100 * 28 / 29)


def test_crw_and_tapnet_differ_on_a_joint_outside_frame_1_and_an_error_on_frame_1() -> None:
    stored = np.tile([20.5, 20.5], (2, 15, 1))  # MATLAB pixels as stored
    stored[:, 0] = [-9.5, 20.5]  # joint 0 annotated left of the frame: tapnet drops it for the whole clip
    stored[:, 13] = [50.5, 20.5]
    stored[:, 14] = [20.5, 65.5]
    pred = stored - 0.5  # vidcorr's pixel centres of the ground truth ...
    pred[:, 0] = [0.0, 20.0]  # ... but joint 0 where the tracker can label it (clipped into the frame): 10 px off
    pred[0, 1] += [30.0, 0.0]  # and an error on frame 1, which only tapnet scores
    counts = score_video(pred, np.ones((2, 15), bool), stored, (W, H))
    # CRW: frame 2 only; box with joint 0: 60 x 45, diagonal 75, size 45; joint 0's 10 px: 0.222.
    crw = counts["crw"]
    assert _per_joint(crw, 0.2).tolist() == [0.0] + [100.0] * 14
    assert _per_joint(crw, 0.225).tolist() == [100.0] * 15
    assert _pck(crw, 0.1) == pytest.approx(1400 / 15) and _pck(crw, 0.3) == 100.0
    # tapnet: both frames, joint 0 never scored (0 %, as tapnet's max(1e-12, n)); the stored coordinates against
    # vidcorr's centres are 0.71 px apart (no shift), within every alpha of a 54 px box; joint 1 misses frame 1.
    tapnet = counts["tapnet"]
    assert tapnet.scored.tolist() == [0] + [2] * 14
    for alpha in CURVE_ALPHAS:
        assert _per_joint(tapnet, alpha).tolist() == [0.0, 50.0] + [100.0] * 13
    assert _pck(tapnet, 0.1) == pytest.approx(90.0)
    assert _pck(crw, 0.1) != pytest.approx(_pck(tapnet, 0.1))


def _crw_eval_pck(gts: list, preds: list, visible: list | None = None) -> list[float]:
    """A transcription of CRW's code/eval/eval_pck.py loops (pos_img - 1; predictions in the same 0-based
    pixels; a joint with a negative predicted x is absent), returning the mean PCK at 0.1 ... 0.5."""
    dist_all: dict[int, list[float]] = {j: [] for j in range(15)}
    for i, gt in enumerate(gts):  # gt: 2 x 15 x T
        pred = preds[i].copy()
        if visible is not None:
            pred[0][~visible[i].T] = -1
        jnt_visible = np.ones((gt.shape[1], gt.shape[2]))
        for j in range(pred.shape[1]):
            for k in range(pred.shape[2]):
                if pred[0, j, k] < 0:
                    jnt_visible[j, k] = 0
        boxes = np.zeros(gt.shape[2])
        for k in range(gt.shape[2]):
            minx, maxx, miny, maxy = 1e6, -1, 1e6, -1
            for j in range(gt.shape[1]):
                if jnt_visible[j, k] == 0:
                    continue
                minx, miny = min(minx, gt[0, j, k]), min(miny, gt[1, j, k])
                maxx, maxy = max(maxx, gt[0, j, k]), max(maxy, gt[1, j, k])
            boxes[k] = 0.6 * np.linalg.norm(np.subtract([maxx, maxy], [minx, miny]))
        for j in range(gt.shape[1]):
            for k in range(gt.shape[2]):
                if jnt_visible[j, k] == 0 or k == 0:
                    continue
                d = np.linalg.norm(np.subtract(pred[:, j, k], gt[:, j, k]))
                dist_all[j].append(d / boxes[k])
    return [float(np.mean([100.0 * np.sum(np.array(dist_all[j]) <= a) / len(dist_all[j]) for j in range(15)]))
            for a in (0.1, 0.2, 0.3, 0.4, 0.5)]


def _tapnet_pck_evaluate(gts: list, preds: list, sizes: list) -> list[float]:
    """A transcription of tapnet's pck_evaluate: gt_pose_orig (15, T, 2) as stored, predictions (15, T, 2) in
    pixels."""
    dist_all: list[list[float]] = [[] for _ in range(15)]
    for gt_poses, pred, (width, height) in zip(gts, preds, sizes, strict=True):
        pred_poses = np.transpose(pred, (2, 0, 1))  # [2, 15, T]
        invalid_x = np.logical_or(gt_poses[:, 0:1, 0] < 0, gt_poses[:, 0:1, 0] >= width)
        invalid_y = np.logical_or(gt_poses[:, 0:1, 1] < 0, gt_poses[:, 0:1, 1] >= height)
        joint_visible = np.logical_not(np.tile(np.logical_or(invalid_x, invalid_y), [1, gt_poses.shape[1]]))
        gt_t = np.transpose(gt_poses, (2, 0, 1))
        hi, lo = gt_t.copy(), gt_t.copy()
        hi[:, ~joint_visible] = -1
        lo[:, ~joint_visible] = 1e6
        boxes = 0.6 * np.linalg.norm(np.stack((hi[0].max(axis=0) - lo[0].min(axis=0),
                                               hi[1].max(axis=0) - lo[1].min(axis=0))), axis=0)
        for img_idx in range(pred_poses.shape[-1]):
            for t in range(15):
                if joint_visible[t, img_idx]:
                    dist = np.linalg.norm(np.subtract(pred_poses[:, t, img_idx], gt_t[:, t, img_idx]))
                    dist_all[t].append(dist / boxes[img_idx])
    return [float(np.mean([100.0 * np.sum(np.array(d) <= a) / max(1e-12, len(d)) for d in dist_all]))
            for a in (0.1, 0.2, 0.3, 0.4, 0.5)]


def test_pooled_counts_equal_transcriptions_of_crws_and_tapnets_code() -> None:
    rng = np.random.default_rng(0)
    stored, preds, visible, sizes = [], [], [], []
    for length in (5, 9, 2, 7):
        gt = rng.uniform(20, 300, (length, 15, 2)) + rng.uniform(-30, 30, (1, 15, 2))
        gt[:, 2, 0] = -4.0 if length == 9 else gt[:, 2, 0]  # a joint outside every frame of one video
        stored.append(gt)
        preds.append(gt - 0.5 + rng.normal(0, 12, gt.shape))
        visible.append(rng.random((length, 15)) > 0.2)
        sizes.append((W, H))
    per_video = [score_video(p, v, s, size) for p, v, s, size in zip(preds, visible, stored, sizes, strict=True)]
    table = [0.1, 0.2, 0.3, 0.4, 0.5]
    crw_gts = [s.transpose(2, 1, 0) - 1 for s in stored]  # CRW's pos_img - 1
    crw_preds = [p.transpose(2, 1, 0) - 0.5 for p in preds]  # vidcorr's centres -> CRW's 0-based pixels
    # CRW reads a predicted x < 0 as "absent": shift everything right (distances and boxes do not change) so
    # that only the labelled row's absent joints are.
    shifted_gts, shifted_preds = [g + 500 for g in crw_gts], [p + 500 for p in crw_preds]
    ours = [_pck(pool(per_video, "crw"), a) for a in table]
    assert ours == pytest.approx(_crw_eval_pck(shifted_gts, shifted_preds))
    labelled = [_pck(pool(per_video, "crw_visibility"), a) for a in table]
    assert labelled == pytest.approx(_crw_eval_pck(shifted_gts, shifted_preds, visible))
    tapnet = [_pck(pool(per_video, "tapnet"), a) for a in table]
    as_tapnet = [s.transpose(1, 0, 2) for s in stored], [p.transpose(1, 0, 2) for p in preds]  # (15, T, 2)
    assert tapnet == pytest.approx(_tapnet_pck_evaluate(*as_tapnet, sizes))
    assert ours != pytest.approx(tapnet)


def test_label_frames_and_their_exclusion_from_scoring() -> None:
    assert jhmdb_runner.label_frames(10, 1) == (0,)
    assert jhmdb_runner.label_frames(10, 3) == (0, 4, 9)  # evenly spaced, the last frame included
    assert jhmdb_runner.label_frames(2, 5) == (0, 1)
    truth = np.tile(_box_case()[:1], (10, 1, 1))
    counts = score_video(truth, np.ones((10, 15), bool), truth + 0.5, (W, H), label_frames=(0, 4, 9))
    assert counts["crw"].scored.tolist() == [7] * 15  # frames 1-3 and 5-8
    assert counts["tapnet"].scored.tolist() == [8] * 15  # frame 0 too, as tapnet scores its query frame
    jhmdb_runner.check_labels(2)  # several labels per joint: the joint fit takes them
    with pytest.raises(InputError, match="--labels must be at least 1"):
        jhmdb_runner.check_labels(0)


# ----------------------------------------------------------------------------------------------- runner


def _offset_predictor(calls: list[str] | None = None, stop_at: int | None = None):
    """The ground truth moved by an amount that depends on the video's name only (as the method's draws do)."""

    def predict(video, frames) -> JhmdbPrediction:
        if calls is not None:
            calls.append(video.name)
            if stop_at is not None and len(calls) == stop_at:
                raise KeyboardInterrupt
        seed = int(hashlib.sha256(video.name.encode()).hexdigest()[:8], 16)
        points = video.joints_xy + np.random.default_rng(seed).normal(0, 3, video.joints_xy.shape)
        visible = np.ones(points.shape[:2], bool)
        return JhmdbPrediction(points, visible, np.ones(points.shape[:2]))

    return predict


def test_records_round_trip_resume_and_two_shards_merged_equal_one_run(jhmdb_root: Path, tmp_path: Path) -> None:
    source = JhmdbSource(jhmdb_data.resolve_root(jhmdb_root))
    whole = jhmdb_runner.run_jhmdb(source, tmp_path / "whole", _offset_predictor(), options=RunOptions(fsync=False))
    lines = JHMDB_RECORDS.read(tmp_path / "whole" / "jhmdb.jsonl")
    assert [s.video for s in lines] == ["clap/a_clap", "clap/b_clap", "golf/swing"]
    assert [(s.num_frames, s.source_frames, s.joint_frames) for s in lines] == [(3, 5, 3), (4, 4, 4), (3, 3, 6)]
    assert lines[0].counts["crw"].scored.tolist() == [2] * 15
    for score in lines:
        again = score_from_json(json.loads(json.dumps(score_to_json(score))))
        assert again.counts["tapnet"].correct.tolist() == score.counts["tapnet"].correct.tolist()
        assert again.predictions_sha256 == score.predictions_sha256
    saved = np.load(tmp_path / "whole" / "predictions" / "golf_swing.npz")
    assert saved["points"].shape == (3, 15, 2) and saved["joints_matlab"].shape == (3, 15, 2)
    assert saved["label_frames"].tolist() == [0]

    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        jhmdb_runner.run_jhmdb(source, tmp_path / "resumed", _offset_predictor(calls, stop_at=2),
                               options=RunOptions(fsync=False))
    jhmdb_runner.run_jhmdb(source, tmp_path / "resumed", _offset_predictor(calls), options=RunOptions(fsync=False))
    assert calls == ["clap/a_clap", "clap/b_clap", "clap/b_clap", "golf/swing"]  # the finished one not redone

    for index in range(2):
        part = jhmdb_runner.run_jhmdb(source, tmp_path / "sharded", _offset_predictor(),
                                      options=RunOptions(shard=(index, 2), fsync=False))
        assert part.results_path.name == f"jhmdb-shard{index}of2.jsonl"
    merged = JHMDB_RECORDS.merge(JHMDB_RECORDS.results_files(tmp_path / "sharded"))
    resumed = JHMDB_RECORDS.merge(JHMDB_RECORDS.results_files(tmp_path / "resumed"))
    for other in (merged, resumed):
        assert [(s.video, s.predictions_sha256, score_to_json(s)["counts"]) for s in other] == [
            (s.video, s.predictions_sha256, score_to_json(s)["counts"]) for s in whole.records]
    one, two = report.build_report([tmp_path / "whole"]), report.build_report([tmp_path / "sharded"])
    assert report.report_json(one)["jhmdb"] == report.report_json(two)["jhmdb"]


# ----------------------------------------------------------------------------------------------- download


def _archives(root: Path, out: Path) -> dict[str, Path]:
    """The publisher's three archives made from a JHMDB folder: two zips and a tar.gz."""
    out.mkdir(parents=True)
    made = {}
    for name, folder in (("splits.zip", "splits"), ("joint_positions.zip", "joint_positions")):
        with zipfile.ZipFile(out / name, "w") as archive:
            for path in sorted((root / folder).rglob("*")):
                archive.write(path, path.relative_to(root).as_posix())
        made[name] = out / name
    with tarfile.open(out / "Rename_Images.tar.gz", "w:gz") as archive:
        archive.add(root / "Rename_Images", "Rename_Images")
    made["Rename_Images.tar.gz"] = out / "Rename_Images.tar.gz"
    return made


def test_download_checks_the_published_md5s_then_installs_the_layout(jhmdb_root: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The MD5s as published in urs-waldmann/improving-unsupervised-label-propagation's prepare_JHMDB.py.
    published = {r.name: r.md5 for r in download.SOURCES["jhmdb"].files}
    assert published == {"Rename_Images.tar.gz": "23726FBAC4BC69A726DC3DAF2E7AB4C1",
                         "joint_positions.zip": "3D1AC91BCB8544DDFDD9547997DB239F",
                         "splits.zip": "15B9F2F7A99D63C07F3BE0C9ECDE43B5"}
    archives = _archives(jhmdb_root, tmp_path / "served")
    source = download.SOURCES["jhmdb"]

    def serve(md5s: dict[str, str]) -> None:
        files = tuple(download.RemoteFile(archives[r.name].as_uri(), r.name, r.kind, r.place, r.required,
                                          md5=md5s[r.name], installs=r.installs) for r in source.files)
        monkeypatch.setitem(download.SOURCES, "jhmdb", download.BenchmarkSource(
            "jhmdb", source.folder, source.marker, files, source.layout))

    real = {name: hashlib.md5(path.read_bytes()).hexdigest().upper() for name, path in archives.items()}
    serve({**real, "joint_positions.zip": "0" * 32})
    bad_root = tmp_path / "bad"
    with pytest.raises(DataError) as info:
        download.ensure_benchmark("jhmdb", bad_root)
    bad_md5 = hashlib.md5(archives["joint_positions.zip"].read_bytes()).hexdigest()
    assert str(info.value) == (f"{bad_root / 'joint_positions.zip'}: MD5 {bad_md5}, expected {'0' * 32} (a corrupt "
                               "or changed download); delete it and download again")
    assert not (bad_root / "JHMDB" / "joint_positions").exists()  # never extracted

    serve(real)
    root = tmp_path / "fetched"
    assert not download.is_present("jhmdb", root)
    download.ensure_benchmark("jhmdb", root)
    assert download.is_present("jhmdb", root) and not list(root.glob("*.zip"))
    assert JhmdbSource(jhmdb_data.resolve_root(root)).names() == ["clap/a_clap", "clap/b_clap", "golf/swing"]


def test_download_offline_names_the_urls_and_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = download.SOURCES["jhmdb"]
    offline = tuple(download.RemoteFile("http://127.0.0.1:9/" + r.name, r.name, r.kind, r.place, r.required,
                                        md5=r.md5, installs=r.installs) for r in source.files)
    monkeypatch.setitem(download.SOURCES, "jhmdb", download.BenchmarkSource(
        "jhmdb", source.folder, source.marker, offline, source.layout))
    result = cli.invoke(app, ["eval", "jhmdb", "--data-root", str(tmp_path / "data"), "--download", *TINY])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot download http://127.0.0.1:9/splits.zip (")
    assert line.endswith("); without network, fetch it elsewhere and put in place <data-root>/JHMDB/ holding "
                         "Rename_Images/<action>/<video>/%05d.png, "
                         "joint_positions/<action>/<video>/joint_positions.mat and splits/<action>_test_split1.txt "
                         "(extract https://files.is.tue.mpg.de/jhmdb/Rename_Images.tar.gz, joint_positions.zip and "
                         "splits.zip there)")


# ----------------------------------------------------------------------------------------------- end to end


def test_tiny_model_end_to_end_through_the_cli_with_report_picture_and_pages(jhmdb_root: Path,
                                                                            tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "jhmdb", "--data-root", str(jhmdb_root), "--limit", "2", "--out", str(out), *TINY]
    result = cli.invoke(app, [*args, "--visualize"])
    assert result.exit_code == 0, result.output
    assert "jhmdb split 1: 2/2 videos; clap/b_clap done in" in result.stdout
    assert "66.4" in result.stdout and "HVC" in result.stdout  # the published rows, in a narrow terminal too
    lines = [json.loads(line) for line in (out / "jhmdb.jsonl").read_text().splitlines()]
    assert [(line["video"], line["num_frames"], line["labels"]) for line in lines] == [("clap/a_clap", 3, 1),
                                                                                     ("clap/b_clap", 4, 1)]
    saved = np.load(out / "predictions" / "clap_b_clap.npz")
    assert saved["points"].shape == (4, 15, 2) and saved["visible"].dtype == bool
    # At its own query frame a joint is its label: frame 1's prediction is the ground truth in vidcorr's pixels.
    np.testing.assert_allclose(saved["points"][0], saved["joints_matlab"][0] - 0.5)
    setup = json.loads((out / "run.json").read_text())
    assert (setup["benchmark"], setup["split"], setup["labels"], setup["model"]) == ("jhmdb", 1, 1, "tiny")

    built = json.loads((out / "report.json").read_text())["jhmdb"][0]
    assert built["num_videos"] == 2 and built["labels"] == 1
    scores = [JHMDB_RECORDS.parse_line(json.dumps(line).encode()) for line in lines]
    assert built["rows"]["crw"]["pck"]["0.1"] == pytest.approx(_pck(pool((s.counts for s in scores), "crw"), 0.1))
    assert [p["method"] for p in built["published"]][:2] == ["Spa-then-Temp ResNet-50", "HVC"]
    markdown = (out / "report.md").read_text()
    assert "| Spa-then-Temp ResNet-50 (published) | crw | 66.4 | 84.4 |" in markdown
    assert "![JHMDB keypoint propagation (split 1 test): PCK against alpha](report-jhmdb.png)" in markdown
    assert "### JHMDB keypoint propagation (split 1 test) per joint, crw protocol (%)" in markdown
    assert "| clap | 2 |" in markdown  # the per-action table
    picture = cv2.imread(str(out / "report-jhmdb.png"))
    assert picture is not None and picture.shape[1] == 820

    again = cli.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 videos evaluated" in again.stdout and "2 resumed" in again.stdout

    # Each video depends on itself alone: two shards merged equal the unsharded run.
    sharded = tmp_path / "sharded"
    for index in range(2):
        shard = cli.invoke(app, [*args[:-len(TINY) - 2], "--out", str(sharded), "--shard", f"{index}/2", *TINY])
        assert shard.exit_code == 0, shard.output
    merged = JHMDB_RECORDS.merge(JHMDB_RECORDS.results_files(sharded))
    assert [(s.video, s.predictions_sha256) for s in merged] == [(s.video, s.predictions_sha256) for s in scores]

    # The viewer: a run folder names a video to open; a video's page has the joints, the truth and the maps.
    refused = cli.invoke(app, ["view", str(out), "--no-open"])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (f"error: {str(out)!r} holds the pictures of 2 videos, one page each: open one, "
                                      f"e.g. vidcorr view {out / 'vis' / 'clap_a_clap'}")
    page = build_site(out / "vis" / "clap_b_clap")
    data = json.loads(page.read_text().split('id="vidcorr-data">')[1].split("</script>")[0])
    tracks = data["tracks"]
    assert [p["name"] for p in tracks["points"]] == list(JOINTS)
    np.testing.assert_allclose(np.array(tracks["truth"], dtype=float), saved["joints_matlab"] - 0.5, atol=0.006)
    assert all(frame["heat"][0] for frame in tracks["frames"])  # every key frame has each joint's attention map


def test_several_labels_per_joint_are_fitted_jointly_and_reported_apart(jhmdb_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = cli.invoke(app, ["eval", "jhmdb", "--data-root", str(jhmdb_root), "--labels", "2", "--limit", "1",
                              "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    line = json.loads((out / "jhmdb.jsonl").read_text().splitlines()[0])
    assert (line["video"], line["labels"]) == ("clap/a_clap", 2)
    saved = np.load(out / "predictions" / "clap_a_clap.npz")
    # Both label frames (frame 1 and the last of 3) hold the ground truth: each joint was tracked from its labels.
    np.testing.assert_allclose(saved["points"][[0, 2]], saved["joints_matlab"][[0, 2]] - 0.5)
    built = json.loads((out / "report.json").read_text())["jhmdb"][0]
    assert built["labels"] == 2 and "2 labels per joint" in (out / "report.md").read_text()


def test_an_unreadable_frame_and_a_missing_joints_file_are_one_line(jhmdb_root: Path, tmp_path: Path) -> None:
    root = jhmdb_data.resolve_root(jhmdb_root)
    write_clip(root, "wave", "hello", make_clip(2, 5))
    write_split(root, "wave", [("hello", 2)])
    (root / "Rename_Images" / "wave" / "hello" / "00002.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="00002.png: not a readable image"):
        read_video(root, "wave", "hello")
    (root / "joint_positions" / "wave" / "hello" / "joint_positions.mat").unlink()
    result = cli.invoke(app, ["eval", "jhmdb", "--data-root", str(jhmdb_root), "--actions", "wave",
                              "--out", str(tmp_path / "o"), *TINY])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {root / 'joint_positions/wave/hello/joint_positions.mat'}: joints file not found")


def test_report_tables_and_pictures_for_every_benchmark_kind(jhmdb_root: Path, tmp_path: Path) -> None:
    source = JhmdbSource(jhmdb_data.resolve_root(jhmdb_root))
    jhmdb_runner.run_jhmdb(source, tmp_path / "run", _offset_predictor(),
                           options=RunOptions(setup={"benchmark": "jhmdb", "labels": 1, "model": "m", "config": {}},
                                              fsync=False))
    built = report.build_report([tmp_path / "run"])
    (section,) = built.sections
    assert section.kind == "jhmdb" and section.coverage() == "3 videos, 10 frames (of 268 test videos: incomplete)"
    tapnet = section.tables(["tapnet"])
    assert [t.title for t in tapnet[1:]] == [
        "JHMDB keypoint propagation (split 1 test) per joint, tapnet protocol (%)",
        "JHMDB keypoint propagation (split 1 test) per action, tapnet protocol (%)"]
    joints = tapnet[1]
    assert [row[0] for row in joints.rows] == [*JOINTS, "mean over 15 joints"]
    assert joints.rows[0][1] == "10"  # tapnet scores every frame of the 3 clips
    figure = section.figure()
    assert [s.label.split(":")[0] for s in figure.series] == ["crw protocol", "crw protocol", "tapnet protocol"]
    assert {(a.x, a.value) for a in figure.anchors} == {(0.1, 66.4), (0.2, 84.4), (0.1, 61.7), (0.2, 82.8),
                                                        (0.1, 46.6), (0.1, 43.5)}
    report.write_report(built, tmp_path / "rep")
    image = cv2.imread(str(tmp_path / "rep" / "report-jhmdb.png"))
    assert image is not None and image.shape[1] == 820
    # Drawn: the curves' colours are on the canvas (blue for the crw headline, green for tapnet's).
    rgb = image[..., ::-1].reshape(-1, 3)
    assert (np.abs(rgb.astype(int) - [31, 119, 180]).sum(axis=1) < 10).sum() > 200
    assert (np.abs(rgb.astype(int) - [44, 160, 44]).sum(axis=1) < 10).sum() > 200
    with pytest.raises(InputError, match="JHMDB results have no 'seed' protocol"):
        section.tables(["seed"])
