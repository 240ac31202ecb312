"""The seed's PCK scoring, pinned against a transcription of its formulas written here (not vidcorr's helpers).

Transcribed from ubc-vision/LDM_correspondences at HEAD (eval/dataset.py, eval/spair.py, eval/pfwillow.py,
eval/cub2011.py, scored by CATs' ``Evaluator.eval_kps_transfer``):

- every image is squashed to 512 x 512 by its own size: ``x * 512 / W``, ``y * 512 / H``;
- SPair: threshold ``max(w, h)`` of the SOURCE box squashed by the source's size;
- PF-Willow (``get_pckthres``, thres 'bbox'): ``max(kps.max(1) - kps.min(1))`` over the TARGET keypoints
  squashed by the target's size and padded with -1 up to ``max_pts`` = 40 columns (so -1 enters the min);
- CUB: ``max(bbox w, bbox h)`` of the TARGET box times ``512 / W_target`` (x scale only);
- verdict ``torch.le(dist, alpha * thres)``: a point exactly at the threshold is correct.

The official protocol (target box, or the valid target keypoints' extent on PF-Willow, original target pixels)
is pinned the same way. The acceptance test runs ``vidcorr eval pfwillow|cub --protocol seed`` on folders in
the exact on-disk formats and checks every pair's thresholds and verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_pairs import CubImage, WillowRow, memory_pair, write_cub, write_pfwillow
from typer.testing import CliRunner

from vidcorr.eval.pairs import runner
from vidcorr.eval.pairs.pair import Prediction
from vidcorr.eval.pairs.pck import pck_threshold, score_pair
from vidcorr_cli.app import app

ALPHAS = (0.05, 0.1, 0.2)
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]


# --------------------------------------------------------------------------------------------- the transcription


def seed_squash(points: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """eval/dataset.py's keypoint resize: x * 512 / W, y * 512 / H, as (2, K) rows like the seed's tensors."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2).T
    return np.stack([pts[0] * 512 / size_wh[0], pts[1] * 512 / size_wh[1]])


def seed_pfwillow_threshold(trg_kps: np.ndarray, trg_size: tuple[int, int]) -> float:
    kps = seed_squash(trg_kps, trg_size)
    padded = np.concatenate([kps, -np.ones((2, 40 - kps.shape[1]))], axis=1)  # get_points' pad_pts
    return float(np.max(padded.max(1) - padded.min(1)))


def seed_cub_threshold(trg_box_xywh: tuple[float, ...], trg_size: tuple[int, int]) -> float:
    _, _, w, h = trg_box_xywh
    return max(w, h) * 512 / trg_size[0]


def seed_spair_threshold(src_box: tuple[float, ...], src_size: tuple[int, int]) -> float:
    x1, y1, x2, y2 = src_box
    return max((x2 - x1) * 512 / src_size[0], (y2 - y1) * 512 / src_size[1])


def seed_verdicts(pred: np.ndarray, gt: np.ndarray, trg_size: tuple[int, int], threshold: float) -> np.ndarray:
    """CATs' classify_prd in the squashed target: dist <= alpha * thres, (K, A)."""
    dist = np.linalg.norm(seed_squash(pred, trg_size) - seed_squash(gt, trg_size), axis=0)
    return dist[:, None] <= np.array(ALPHAS)[None, :] * threshold


def official_verdicts(pred: np.ndarray, gt: np.ndarray, threshold: float) -> np.ndarray:
    dist = np.linalg.norm(np.asarray(pred, float) - np.asarray(gt, float), axis=1)
    return dist[:, None] <= np.array(ALPHAS)[None, :] * threshold


# --------------------------------------------------------------------------------------------- hand-computed values


def test_pfwillow_seed_threshold_is_the_target_keypoints_with_the_minus_one_padding_by_hand() -> None:
    pair = memory_pair("w", dataset="pfwillow", category="car(G)", src_size=(256, 128), trg_size=(128, 256),
                       src_kps=[[10.0, 5.0], [60.0, 20.0]], trg_kps=[[30.0, 40.0], [70.0, 10.0]],
                       src_bbox=None, trg_bbox=None)
    # Target squashed by (512/128, 512/256) = (4, 2): (120, 80), (280, 20). With -1 in the minimum:
    # x: 280 - (-1) = 281, y: 80 - (-1) = 81 -> 281. (Their own extent would be 160; the source's 100.)
    assert pck_threshold(pair, "seed") == 281.0
    # official: the valid target keypoints' extent in original pixels: 40 x 30 -> 40.
    assert pck_threshold(pair, "official") == 40.0


def test_pfwillow_with_forty_keypoints_has_no_padding() -> None:
    kps = [[10.0 + i, 20.0 + (i % 7)] for i in range(40)]
    pair = memory_pair("w40", dataset="pfwillow", trg_size=(512, 512), src_kps=kps, trg_kps=kps,
                       src_bbox=None, trg_bbox=None)
    assert pck_threshold(pair, "seed") == 39.0  # x 10..49; no -1 column when K == max_pts


def test_cub_seed_threshold_scales_the_longer_side_by_the_width_only_by_hand() -> None:
    # Box 100 wide, 50 high in a 400 x 200 target: 100 * 512 / 400 = 128.
    wide = memory_pair("c", dataset="cub", trg_size=(400, 200), trg_kps=[[100.0, 50.0]],
                       trg_bbox=(10.0, 20.0, 110.0, 70.0))
    assert pck_threshold(wide, "seed") == 128.0
    # The longer side is the height (80) in a 256 wide, 1024 high target: 80 * 512 / 256 = 160 (the x scale),
    # though the height's own scale (0.5) would give 40.
    tall = memory_pair("t", dataset="cub", trg_size=(256, 1024), trg_kps=[[10.0, 10.0]],
                       trg_bbox=(0.0, 0.0, 30.0, 80.0))
    assert pck_threshold(tall, "seed") == 160.0
    assert pck_threshold(tall, "official") == 80.0
    # Points are squashed (no letterbox): 8 px down in y is 8 * 512 / 1024 = 4 seed pixels, <= 0.05 * 160 = 8.
    # 6 px across in x is 12 seed pixels: > 8, <= 16.
    score = score_pair(tall, [[10.0, 18.0]], alphas=(0.05, 0.1))
    assert score.correct["seed"].tolist() == [[True, True]]
    assert score.correct["official"].tolist() == [[False, True]]  # 8 > 4, 8 <= 8
    score = score_pair(tall, [[16.0, 10.0]], alphas=(0.05, 0.1))
    assert score.correct["seed"].tolist() == [[False, True]]


def test_spair_seed_threshold_is_the_source_box_squashed_by_the_source_by_hand() -> None:
    pair = memory_pair("s", src_size=(1024, 256), trg_size=(64, 512), trg_kps=[[32.0, 100.0]],
                       src_bbox=(0.0, 0.0, 512.0, 100.0), trg_bbox=(0.0, 0.0, 10.0, 20.0))
    # Source box 512 x 100 squashed by (0.5, 2) -> 256 x 200 -> 256.
    assert pck_threshold(pair, "seed") == 256.0
    assert pck_threshold(pair, "official") == 20.0
    # 3 px in x in the 64-wide target is 24 seed pixels: > 0.05 * 256 = 12.8, <= 25.6; official: 3 <= 1 fails,
    # 3 <= 2 fails. 20 px down in y is 20 seed pixels (512 high): <= 25.6.
    score = score_pair(pair, [[35.0, 100.0]], alphas=(0.05, 0.1))
    assert score.correct["seed"].tolist() == [[False, True]]
    assert score.correct["official"].tolist() == [[False, False]]
    score = score_pair(pair, [[32.0, 120.0]], alphas=(0.05, 0.1))
    assert score.correct["seed"].tolist() == [[False, True]]


def test_a_point_exactly_at_the_seed_threshold_counts() -> None:
    # 512 x 512 target: the squash is the identity. Threshold 99 - (-1) = 100; alpha 0.1 -> 10 px.
    pair = memory_pair("e", dataset="pfwillow", trg_size=(512, 512), src_kps=[[0.0, 0.0], [1.0, 1.0]],
                       trg_kps=[[50.0, 20.0], [99.0, 30.0]], src_bbox=None, trg_bbox=None)
    assert pck_threshold(pair, "seed") == 100.0
    at = score_pair(pair, [[56.0, 28.0], [99.0, 30.0]], alphas=(0.1,))  # a 6-8-10 triangle
    assert at.correct["seed"].tolist() == [[True], [True]]
    beyond = score_pair(pair, [[56.0, np.nextafter(28.0, 29.0)], [99.0, 30.0]], alphas=(0.1,))
    assert beyond.correct["seed"].tolist() == [[False], [True]]


# --------------------------------------------------------------------------------------------- the acceptance test


WILLOW_SIZES = {
    "PF-dataset/car(G)/a.png": (300, 200),
    "PF-dataset/car(G)/b.png": (150, 400),
    "PF-dataset/duck(S)/c.png": (512, 512),
    "PF-dataset/duck(S)/d.png": (90, 60),
}


def _willow_rows() -> list[WillowRow]:
    rng = np.random.default_rng(11)

    def kps(size: tuple[int, int]) -> list[tuple[float, float]]:
        w, h = size
        return [(float(x), float(y)) for x, y in zip(rng.uniform(0.2 * w, 0.9 * w, 10),
                                                     rng.uniform(0.3 * h, 0.8 * h, 10), strict=True)]

    names = list(WILLOW_SIZES)
    pairs = [(names[0], names[1]), (names[1], names[0]), (names[2], names[3]), (names[3], names[2])]
    return [WillowRow(a, b, kps(WILLOW_SIZES[a]), kps(WILLOW_SIZES[b])) for a, b in pairs]


CUB_CLASSES = {1: "001.Black_footed_Albatross", 2: "002.Laysan_Albatross"}
CUB_IMAGES = [
    CubImage(1, 1, "a.jpg", 0, (120, 80), (10, 5, 60, 70), {1: (20, 30, 1), 2: (50, 40, 1), 3: (70, 60, 1)}),
    CubImage(2, 1, "b.jpg", 0, (64, 200), (4, 10, 40, 150), {1: (10, 50, 1), 2: (30, 90, 1), 4: (5, 5, 1)}),
    CubImage(3, 1, "c.jpg", 0, (200, 100), (30, 10, 120, 30), {2: (100, 20, 1), 3: (60, 70, 1), 4: (9, 9, 0)}),
    CubImage(4, 2, "d.jpg", 0, (90, 90), (0, 0, 80, 20), {5: (10, 10, 1), 6: (70, 15, 1)}),
    CubImage(5, 2, "e.jpg", 0, (45, 180), (5, 20, 30, 100), {5: (20, 60, 1), 6: (25, 90, 1), 7: (1, 1, 1)}),
]


def _offsets(trg_kps: np.ndarray, scale: float, key: str) -> np.ndarray:
    """Predictions off the truth by 0..0.25 * `scale` in a random direction: verdicts of every kind."""
    rng = np.random.default_rng(sum(key.encode()))
    radius = rng.uniform(0.0, 0.25 * scale, len(trg_kps))
    angle = rng.uniform(0.0, 2 * np.pi, len(trg_kps))
    return np.asarray(trg_kps) + np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def _fake_predictor(monkeypatch: pytest.MonkeyPatch) -> None:
    def predict(ldm, pair, src, trg, cfg, *, return_maps=False, progress=None) -> Prediction:
        scale = max(pair.trg_size)
        return Prediction(_offsets(pair.trg_kps, scale * 0.3, pair.pair_id))

    monkeypatch.setattr(runner, "predict_pair", predict)


def _lines(out: Path) -> dict[str, dict]:
    return {line["pair_id"]: line for line in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def _run(tmp_path: Path, command: str, extra: list[str]) -> dict[str, dict]:
    out = tmp_path / f"out-{command}"
    args = ["eval", command, "--data-root", str(tmp_path), "--out", str(out), "--protocol", "seed",
            *[a for alpha in ALPHAS for a in ("--alpha", str(alpha))], *extra, *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # The report: the paper's numbers beside seed / per image only, and the seed's rule said in words.
    markdown = (out / "report.md").read_text()
    paper = {"pfwillow": ("53.0", "84.3"), "cub": ("61.6", "77.5")}[command]
    rows = [line for line in markdown.splitlines() if line.startswith("| official |") or line.startswith("| seed |")]
    assert [r for r in rows if all(p in r for p in paper)] == [r for r in rows if r.startswith("| seed | per image")]
    assert len([r for r in rows if r.startswith("| seed | per image")]) == 1
    note = {"pfwillow": "padded with -1 up to 40; the -1 enters the minimum", "cub": "512 / W_target (the x scale"}
    assert note[command] in markdown and note[command] in " ".join(result.output.split())
    return _lines(out)


def test_eval_pfwillow_seed_gives_the_seeds_thresholds_and_verdicts_pair_by_pair(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    _fake_predictor(monkeypatch)
    rows = _willow_rows()
    write_pfwillow(tmp_path / "PF-WILLOW", rows, WILLOW_SIZES)
    lines = _run(tmp_path, "pfwillow", [])
    assert len(lines) == len(rows)
    seen = set()
    for number, row in enumerate(rows, start=1):
        pair_id = f"{number:03d}-{Path(row.src).stem}-{Path(row.trg).stem}:{Path(row.src).parent.name}"
        line = lines[pair_id]
        trg_size = WILLOW_SIZES[row.trg]
        gt = np.array(row.trg_kps)
        pred = np.array(line["pred_xy"])
        np.testing.assert_array_equal(np.array(line["true_xy"]), gt)
        seed = seed_pfwillow_threshold(gt, trg_size)
        official = float(np.max(gt.max(0) - gt.min(0)))
        assert line["thresholds"] == pytest.approx({"seed": seed, "official": official}, rel=1e-12)
        expected = seed_verdicts(pred, gt, trg_size, seed)
        assert np.array(line["correct"]["seed"]).tolist() == expected.tolist(), pair_id
        assert np.array(line["correct"]["official"]).tolist() == official_verdicts(pred, gt, official).tolist()
        seen |= set(expected.ravel().tolist())
    assert seen == {True, False}  # the predictions exercise both verdicts


def test_eval_cub_seed_gives_the_seeds_thresholds_and_verdicts_pair_by_pair(tmp_path: Path, monkeypatch) -> None:
    _fake_predictor(monkeypatch)
    write_cub(tmp_path / "CUB_200_2011", CUB_CLASSES, CUB_IMAGES)
    lines = _run(tmp_path, "cub", ["--num-classes", "0"])
    by_id = {im.image_id: im for im in CUB_IMAGES}
    # The seed's pairing: every two test images of a class, parts visible in both, part id order.
    expected_ids = ["00001-00002:001.Black_footed_Albatross", "00001-00003:001.Black_footed_Albatross",
                    "00002-00003:001.Black_footed_Albatross", "00004-00005:002.Laysan_Albatross"]
    assert sorted(lines) == expected_ids
    shared = {"00001-00002": [1, 2], "00001-00003": [2, 3], "00002-00003": [2], "00004-00005": [5, 6]}
    seen = set()
    for pair_id, line in lines.items():
        trg = by_id[int(pair_id.split(":")[0].split("-")[1])]
        parts = shared[pair_id.split(":")[0]]
        gt = np.array([trg.parts[p][:2] for p in parts], dtype=float)
        np.testing.assert_array_equal(np.array(line["true_xy"]), gt)
        pred = np.array(line["pred_xy"])
        seed = seed_cub_threshold(trg.box_xywh, trg.size)
        official = float(max(trg.box_xywh[2], trg.box_xywh[3]))
        assert line["thresholds"] == pytest.approx({"seed": seed, "official": official}, rel=1e-12)
        expected = seed_verdicts(pred, gt, trg.size, seed)
        assert np.array(line["correct"]["seed"]).tolist() == expected.tolist(), pair_id
        assert np.array(line["correct"]["official"]).tolist() == official_verdicts(pred, gt, official).tolist()
        seen |= set(expected.ravel().tolist())
    assert seen == {True, False}


def test_spair_seed_and_official_against_the_transcription() -> None:
    rng = np.random.default_rng(3)
    seen = set()
    for i in range(20):
        src_size = (int(rng.integers(50, 900)), int(rng.integers(50, 900)))
        trg_size = (int(rng.integers(50, 900)), int(rng.integers(50, 900)))
        src_box = (5.0, 7.0, 5.0 + rng.uniform(10, src_size[0] - 6), 7.0 + rng.uniform(10, src_size[1] - 8))
        trg_box = (1.0, 2.0, 1.0 + rng.uniform(10, trg_size[0] - 2), 2.0 + rng.uniform(10, trg_size[1] - 3))
        gt = rng.uniform(0, 1, (5, 2)) * trg_size
        pair = memory_pair(f"s{i}", src_size=src_size, trg_size=trg_size, src_kps=gt, trg_kps=gt,
                           src_bbox=src_box, trg_bbox=trg_box)
        pred = _offsets(gt, 0.1 * max(trg_size), pair.pair_id)
        score = score_pair(pair, pred, alphas=ALPHAS)
        seed = seed_spair_threshold(src_box, src_size)
        official = max(trg_box[2] - trg_box[0], trg_box[3] - trg_box[1])
        assert score.thresholds == pytest.approx({"seed": seed, "official": official}, rel=1e-12)
        expected = seed_verdicts(pred, gt, trg_size, seed)
        assert score.correct["seed"].tolist() == expected.tolist()
        assert score.correct["official"].tolist() == official_verdicts(pred, gt, official).tolist()
        seen |= set(expected.ravel().tolist())
    assert seen == {True, False}
