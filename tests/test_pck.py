"""PCK thresholds, correctness flags and aggregates, against hand-computed numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_pairs import (
    CUB_SAMPLE_CLASSES,
    CUB_SAMPLE_IMAGES,
    memory_pair,
    willow_sample,
    write_cub,
    write_pfwillow,
)

from vidcorr.errors import DataError
from vidcorr.eval.pairs import cub, pfwillow
from vidcorr.eval.pairs.pck import (
    PairScore,
    PCKProtocol,
    correct_flags,
    pck_threshold,
    score_pair,
    summarize,
    to_protocol_space,
)


def test_a_point_exactly_at_the_threshold_is_correct() -> None:
    # 3-4-5 triangle: the distance is exactly 5.0; 0.1 * 50 == 5.0 exactly in float64.
    gt = np.array([[0.0, 0.0]])
    assert correct_flags(np.array([[3.0, 4.0]]), gt, 50.0).tolist() == [[False, True]]
    assert correct_flags(np.array([[3.0, 4.0]]), gt, 50.0, alphas=(0.1,)).tolist() == [[True]]
    just_outside = np.array([[3.0, np.nextafter(4.0, 5.0)]])
    assert correct_flags(just_outside, gt, 50.0).tolist() == [[False, False]]
    assert correct_flags(np.array([[np.nan, 0.0]]), gt, 50.0).tolist() == [[False, False]]


def test_official_and_seed_protocols_differ_as_computed_by_hand() -> None:
    # Non-square images, different source and target boxes.
    pair = memory_pair(
        "p",
        src_size=(1024, 512),
        trg_size=(256, 512),
        src_kps=[[1.0, 1.0], [2.0, 2.0]],
        trg_kps=[[100.0, 100.0], [50.0, 200.0]],
        src_bbox=(0.0, 0.0, 400.0, 100.0),
        trg_bbox=(0.0, 0.0, 100.0, 300.0),
    )
    # official: target box 100 x 300 -> 300; seed: source box squashed (x/2, y) -> 200 x 100 -> 200.
    assert pck_threshold(pair, "official") == 300.0
    assert pck_threshold(pair, "seed") == 200.0
    pred = np.array([[120.0, 100.0], [50.0, 212.0]])
    score = score_pair(pair, pred)
    # Keypoint 0: 20 px off in x. official: 20 > 15, 20 <= 30. seed: x doubled (512/256) -> 40 > 10, 40 > 20.
    # Keypoint 1: 12 px off in y. official: 12 <= 15. seed: y unscaled (512/512) -> 12 > 10, 12 <= 20.
    assert score.correct["official"].tolist() == [[False, True], [True, True]]
    assert score.correct["seed"].tolist() == [[False, False], [False, True]]
    assert summarize([score], "official").overall.per_image == pytest.approx((50.0, 100.0))
    assert summarize([score], "seed").overall.per_image == pytest.approx((0.0, 50.0))
    assert score.thresholds == {"official": 300.0, "seed": 200.0}


def test_squashed_seed_space() -> None:
    np.testing.assert_array_equal(
        to_protocol_space([[100.0, 100.0]], (1024, 256), "spair", "seed"), [[50.0, 200.0]]
    )
    np.testing.assert_array_equal(to_protocol_space([[3.0, 4.0]], (1024, 256), "spair", "official"), [[3.0, 4.0]])
    with pytest.raises(ValueError, match="tapvid"):
        to_protocol_space([[0.0, 0.0]], (1, 1), "tapvid", "seed")


def _score(pair_id: str, category: str, correct: list[list[bool]], occlusion: int) -> PairScore:
    k = len(correct)
    return PairScore(
        pair_id=pair_id,
        category=category,
        dataset="spair",
        alphas=(0.05, 0.1),
        pred_xy=np.zeros((k, 2)),
        true_xy=np.zeros((k, 2)),
        trg_size=(10, 10),
        thresholds={"official": 1.0},
        correct={"official": correct},
        flags={"occlusion": occlusion},
    )


def test_per_image_and_per_keypoint_means_differ_as_computed_by_hand() -> None:
    scores = [
        _score("a1", "aeroplane", [[True, True]], 0),  # fractions (1, 1)
        _score("a2", "aeroplane", [[False, True], [False, False], [False, True], [False, True]], 1),  # (0, .75)
        _score("c1", "cat", [[False, True], [True, True]], 1),  # (0.5, 1)
    ]
    summary = summarize(scores)
    assert summary.protocol == "official" and summary.alphas == (0.05, 0.1)
    overall = summary.overall
    assert overall.per_image == pytest.approx((100 * 1.5 / 3, 100 * 2.75 / 3))  # (50.0, 91.67)
    assert overall.per_keypoint == pytest.approx((100 * 2 / 7, 100 * 6 / 7))  # (28.57, 85.71)
    assert (overall.num_pairs, overall.num_keypoints) == (3, 7)
    assert list(summary.per_category) == ["aeroplane", "cat"]
    aero = summary.per_category["aeroplane"]
    assert aero.per_image == pytest.approx((50.0, 87.5))
    assert aero.per_keypoint == pytest.approx((20.0, 80.0))
    assert summary.per_category["cat"].per_image == pytest.approx((50.0, 100.0))
    assert summary.category_mean == pytest.approx((50.0, 93.75))
    occlusion = summary.per_flag["occlusion"]
    assert occlusion[0].per_image == pytest.approx((100.0, 100.0))
    assert occlusion[1].per_image == pytest.approx((25.0, 87.5))
    assert occlusion[1].per_keypoint == pytest.approx((100 / 6, 500 / 6))
    assert occlusion[1].num_pairs == 2


def test_summarize_rejects_empty_mixed_or_missing_protocol() -> None:
    with pytest.raises(DataError, match="no pair results"):
        summarize([])
    one = _score("a", "x", [[True, True]], 0)
    other = PairScore(
        pair_id="b",
        category="x",
        dataset="spair",
        alphas=(0.1,),
        pred_xy=np.zeros((1, 2)),
        true_xy=np.zeros((1, 2)),
        trg_size=(1, 1),
        thresholds={"official": 1.0},
        correct={"official": [[True]]},
    )
    with pytest.raises(DataError, match="mix alphas"):
        summarize([one, other])
    with pytest.raises(DataError, match="no 'seed' PCK"):
        summarize([one], "seed")


def test_ground_truth_predictions_score_100_under_every_protocol(tmp_path: Path) -> None:
    rows, sizes = willow_sample()
    willow = pfwillow.read_pairs(write_pfwillow(tmp_path / "w", rows, sizes))
    birds = cub.read_pairs(write_cub(tmp_path / "cub", CUB_SAMPLE_CLASSES, CUB_SAMPLE_IMAGES), num_classes=None)
    spair_like = [
        memory_pair("s1", src_size=(300, 200), trg_size=(123, 456), trg_kps=[[1.5, 2.5]], trg_bbox=(0, 0, 9, 7)),
        memory_pair("s2", src_size=(64, 64), trg_size=(77, 33), trg_kps=[[76.0, 0.0]]),
    ]
    for pairs in (willow, birds, spair_like):
        scores = [score_pair(p, p.trg_kps) for p in pairs]
        for protocol in PCKProtocol:
            summary = summarize(scores, protocol)
            assert summary.overall.per_image == (100.0, 100.0)
            assert summary.overall.per_keypoint == (100.0, 100.0)
