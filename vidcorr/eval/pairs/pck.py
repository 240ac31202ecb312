"""PCK (percentage of correct keypoints) for the image-pair benchmarks, under two protocols.

A predicted point is correct at `alpha` iff ``||pred - gt|| <= alpha * threshold`` (``<=``: a point exactly
at the threshold counts), with distances and threshold measured in the same space. Predictions and ground
truth are always given in the TARGET image's original pixels; each protocol says into which space both are
mapped and what the threshold (the length at alpha = 1) is:

``official`` (SPair devkit, DIFT, SD-DINO), in the target image's original pixels:
    SPair, CUB: the longer side of the TARGET bounding box, ``max(x2 - x1, y2 - y1)``.
    PF-Willow: the longer side of the box around the TARGET keypoints (PF-Willow has no boxes).

``seed`` (the seed's evaluation at HEAD: ubc-vision/LDM_correspondences eval/dataset.py, eval/spair.py,
eval/pfwillow.py, eval/cub2011.py, scored by CATs' evaluator), bugs included, in the seed's 512 x 512 space.
Every image is squashed to 512 x 512 by its own size (no aspect kept, no letterbox), so predictions and
ground truth map into the TARGET's square as ``(x * 512 / W_trg, y * 512 / H_trg)``. The threshold:
    SPair: the SOURCE box squashed by the SOURCE's size (x * 512 / W_src, y * 512 / H_src), longer side
    (CATs' ``get_pckthres`` reads ``batch['src_bbox']`` after ``get_bbox`` squashed it).
    PF-Willow (``get_pckthres``, thres ``bbox``): ``max(kps.max(1) - kps.min(1))`` over the TARGET
    keypoints squashed by the target's size and padded with -1 up to ``max_pts`` = 40 columns, so
    whenever a pair has fewer than 40 keypoints (every PF-Willow pair has 10) the -1 enters the minimum:
    the threshold is ``max(max_x + 1, max_y + 1)`` of the squashed target keypoints, the box from (-1, -1)
    to their far corner rather than their own extent.
    CUB (eval/cub2011.py): the TARGET box's longer side in its original pixels, ``max(w, h)``, times
    ``512 / W_trg``: the x scale only, even where the longer side is the height.
The verdict is CATs' ``torch.le``: ``||pred - gt|| <= alpha * threshold``.

Aggregates (:func:`summarize`) report, per alpha, as percentages 0..100: the per-image mean (the mean over
pairs of each pair's fraction of correct keypoints; SPair's and the seed's "PCK") and the per-keypoint mean
(all keypoints pooled), overall, per category and, where pairs carry difficulty flags (SPair), per level
of each flag; plus the unweighted mean over categories of the per-image PCK (the seed's printed "overall
average").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from vidcorr.errors import DataError
from vidcorr.eval.pairs.pair import Pair

DEFAULT_ALPHAS: tuple[float, ...] = (0.05, 0.10)
SEED_SIDE_PX = 512
"""Side of the seed's square image space."""


class PCKProtocol(str, Enum):
    """How distances and thresholds are measured (see the module docstring)."""

    OFFICIAL = "official"
    SEED = "seed"


DATASETS = ("spair", "pfwillow", "cub")
SEED_MAX_PTS = 40
"""CATs' ``max_pts``: keypoint arrays are padded with -1 up to this many columns."""


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"no PCK rule for dataset {dataset!r}; expected spair, pfwillow or cub")


def to_protocol_space(
    points_xy: np.ndarray, size_wh: tuple[int, int], dataset: str, protocol: PCKProtocol | str
) -> np.ndarray:
    """Map points from an image's original pixels into `protocol`'s space for that image.

    Args:
        points_xy: float (K, 2) x, y in original pixels of an image of `size_wh` = (W, H).
        dataset: ``spair``, ``pfwillow`` or ``cub`` (the seed squashes all three).
        protocol: ``official`` (identity) or ``seed``.

    Returns:
        float64 (K, 2) x, y in the protocol's pixels: official, the same; seed, squashed
        ``(x * 512 / W, y * 512 / H)``.
    """
    protocol = PCKProtocol(protocol)
    _check_dataset(dataset)
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if protocol is PCKProtocol.OFFICIAL:
        return points.copy()
    width, height = size_wh
    return points * np.array([SEED_SIDE_PX / width, SEED_SIDE_PX / height])


def _box_side(box: Sequence[float], scale_xy: tuple[float, float] = (1.0, 1.0)) -> float:
    x1, y1, x2, y2 = box
    return float(max((x2 - x1) * scale_xy[0], (y2 - y1) * scale_xy[1]))


def _kps_side(kps: np.ndarray) -> float:
    """Longer side of the box around keypoints (the official PF-Willow threshold)."""
    points = np.asarray(kps, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0:
        raise ValueError("a keypoint-extent threshold needs at least one keypoint")
    return float(np.max(points.max(axis=0) - points.min(axis=0)))


def _seed_pfwillow_side(trg_kps: np.ndarray, trg_size: tuple[int, int]) -> float:
    """CATs' PF-Willow ``get_pckthres``: target keypoints squashed, -1-padded to 40, max of max - min."""
    squashed = np.asarray(trg_kps, dtype=np.float64).reshape(-1, 2) * np.array(
        [SEED_SIDE_PX / trg_size[0], SEED_SIDE_PX / trg_size[1]])
    if len(squashed) == 0:
        raise ValueError("a keypoint-extent threshold needs at least one keypoint")
    padding = np.full((max(0, SEED_MAX_PTS - len(squashed)), 2), -1.0)
    padded = np.concatenate([squashed, padding])
    return float(np.max(padded.max(axis=0) - padded.min(axis=0)))


def pck_threshold(pair: Pair, protocol: PCKProtocol | str) -> float:
    """The PCK threshold at alpha = 1 of `pair` under `protocol`, in that protocol's pixels.

    Raises:
        ValueError: an SPair or CUB pair without the box the rule needs, or an unknown dataset.
    """
    protocol = PCKProtocol(protocol)
    _check_dataset(pair.dataset)
    if pair.dataset == "pfwillow":
        if protocol is PCKProtocol.OFFICIAL:
            return _kps_side(pair.trg_kps)
        return _seed_pfwillow_side(pair.trg_kps, pair.trg_size)
    src_bbox, trg_bbox = pair.src_bbox, pair.trg_bbox  # spair or cub: both rules read a box
    if trg_bbox is None or src_bbox is None:
        raise ValueError(f"pair {pair.pair_id!r}: {pair.dataset} PCK needs source and target boxes")
    if protocol is PCKProtocol.OFFICIAL:
        return _box_side(trg_bbox)
    if pair.dataset == "cub":
        x1, y1, x2, y2 = trg_bbox
        return float(max(x2 - x1, y2 - y1)) * SEED_SIDE_PX / pair.trg_size[0]
    return _box_side(src_bbox, (SEED_SIDE_PX / pair.src_size[0], SEED_SIDE_PX / pair.src_size[1]))


def correct_flags(
    pred_xy: np.ndarray, gt_xy: np.ndarray, threshold: float, alphas: Sequence[float] = DEFAULT_ALPHAS
) -> np.ndarray:
    """bool (K, A): ``||pred_xy[k] - gt_xy[k]|| <= alphas[a] * threshold``.

    Args:
        pred_xy, gt_xy: float (K, 2) x, y in the same space as `threshold` (pixels). A non-finite
            prediction is never correct.
        threshold: the length at alpha = 1, in pixels.
        alphas: (A,) fractions of the threshold.
    """
    pred = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    gt = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    if pred.shape != gt.shape:
        raise ValueError(f"pred_xy {pred.shape} and gt_xy {gt.shape} differ in shape")
    distance = np.sqrt(((pred - gt) ** 2).sum(axis=1))
    limits = np.asarray(alphas, dtype=np.float64) * float(threshold)
    return distance[:, None] <= limits[None, :]


@dataclass(frozen=True, eq=False)
class PairScore:
    """One scored pair: what a results line holds, and what the aggregates are computed from.

    Attributes:
        pair_id, category, dataset: as in :class:`vidcorr.eval.pairs.Pair`.
        alphas: (A,) the alphas of the columns of `correct`.
        pred_xy: float64 (K, 2) predicted x, y in the target image's original pixels.
        true_xy: float64 (K, 2) ground-truth x, y in the same pixels.
        trg_size: (W, H) of the target image.
        thresholds: protocol name -> threshold at alpha = 1 in that protocol's pixels.
        correct: protocol name -> bool (K, A).
        flags: difficulty levels (SPair), else empty.
        extra: JSON-serialisable extras a runner attaches (confidences, timings); metrics ignore it.
    """

    pair_id: str
    category: str
    dataset: str
    alphas: tuple[float, ...]
    pred_xy: np.ndarray
    true_xy: np.ndarray
    trg_size: tuple[int, int]
    thresholds: Mapping[str, float]
    correct: Mapping[str, np.ndarray]
    flags: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pred = np.array(self.pred_xy, dtype=np.float64).reshape(-1, 2)
        true = np.array(self.true_xy, dtype=np.float64).reshape(-1, 2)
        alphas = tuple(float(a) for a in self.alphas)
        if pred.shape != true.shape:
            raise ValueError(f"pred_xy {pred.shape} and true_xy {true.shape} differ in shape")
        correct = {}
        for name, flags in self.correct.items():
            array = np.array(flags, dtype=bool).reshape(len(true), len(alphas))
            array.setflags(write=False)
            correct[PCKProtocol(name).value] = array
        thresholds = {PCKProtocol(k).value: float(v) for k, v in self.thresholds.items()}
        if set(thresholds) != set(correct):
            raise ValueError(f"thresholds {sorted(thresholds)} and correct {sorted(correct)} differ")
        for array in (pred, true):
            array.setflags(write=False)
        object.__setattr__(self, "pred_xy", pred)
        object.__setattr__(self, "true_xy", true)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "trg_size", (int(self.trg_size[0]), int(self.trg_size[1])))
        object.__setattr__(self, "flags", {str(k): int(v) for k, v in self.flags.items()})
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def num_keypoints(self) -> int:
        """K."""
        return int(self.true_xy.shape[0])

    def correct_for(self, protocol: PCKProtocol | str) -> np.ndarray:
        """bool (K, A) under `protocol`; a DataError if this score was not computed for it."""
        name = PCKProtocol(protocol).value
        if name not in self.correct:
            raise DataError(f"pair {self.pair_id!r} has no {name!r} PCK (it has {sorted(self.correct)})")
        return self.correct[name]


def score_pair(
    pair: Pair,
    pred_xy: np.ndarray,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    protocols: Sequence[PCKProtocol | str] = tuple(PCKProtocol),
    extra: Mapping[str, Any] | None = None,
) -> PairScore:
    """Score predicted target points of `pair` under each of `protocols`.

    Args:
        pair: the benchmark pair; its ``trg_kps`` are the ground truth.
        pred_xy: float (K, 2) predicted x, y in the target image's original pixels, row k for
            ``pair.src_kps[k]``.
        alphas: (A,) PCK alphas.
        protocols: which protocols to compute (both by default).
        extra: JSON-serialisable extras stored with the score.
    """
    pred = np.array(pred_xy, dtype=np.float64).reshape(-1, 2)
    if pred.shape != pair.trg_kps.shape:
        raise ValueError(f"pair {pair.pair_id!r}: pred_xy {pred.shape} is not trg_kps' {pair.trg_kps.shape}")
    alphas = tuple(float(a) for a in alphas)
    thresholds, correct = {}, {}
    for protocol in (PCKProtocol(p) for p in protocols):
        threshold = pck_threshold(pair, protocol)
        pred_p = to_protocol_space(pred, pair.trg_size, pair.dataset, protocol)
        true_p = to_protocol_space(pair.trg_kps, pair.trg_size, pair.dataset, protocol)
        thresholds[protocol.value] = threshold
        correct[protocol.value] = correct_flags(pred_p, true_p, threshold, alphas)
    return PairScore(
        pair_id=pair.pair_id,
        category=pair.category,
        dataset=pair.dataset,
        alphas=alphas,
        pred_xy=pred,
        true_xy=np.array(pair.trg_kps),
        trg_size=pair.trg_size,
        thresholds=thresholds,
        correct=correct,
        flags=dict(pair.flags),
        extra=dict(extra or {}),
    )


@dataclass(frozen=True)
class PCKValues:
    """PCK of a set of pairs, one value per alpha, in percent (0..100).

    Attributes:
        per_image: (A,) mean over pairs of each pair's percentage of correct keypoints.
        per_keypoint: (A,) percentage of correct keypoints, all keypoints pooled.
        num_pairs: pairs counted (pairs without keypoints are left out of both means).
        num_keypoints: keypoints counted.
    """

    per_image: tuple[float, ...]
    per_keypoint: tuple[float, ...]
    num_pairs: int
    num_keypoints: int


@dataclass(frozen=True)
class PCKSummary:
    """PCK tables of one protocol over a set of scored pairs.

    Attributes:
        protocol: ``official`` or ``seed``.
        alphas: (A,) the alphas of every tuple below.
        overall: all pairs pooled.
        per_category: category -> its pairs' PCK, categories sorted by name.
        category_mean: (A,) unweighted mean over categories of their per-image PCK, in percent.
        per_flag: flag name -> level -> PCK of the pairs at that level (SPair's difficulty flags).
    """

    protocol: str
    alphas: tuple[float, ...]
    overall: PCKValues
    per_category: dict[str, PCKValues]
    category_mean: tuple[float, ...]
    per_flag: dict[str, dict[int, PCKValues]]


def pck_values(scores: Sequence[PairScore], protocol: PCKProtocol | str) -> PCKValues:
    """Per-image and per-keypoint PCK of `scores` under `protocol` (see :class:`PCKValues`)."""
    flags = [s.correct_for(protocol) for s in scores if s.num_keypoints > 0]
    if not flags:
        raise DataError("no scored keypoints to compute PCK from")
    per_pair = np.stack([f.mean(axis=0) for f in flags])
    pooled = np.concatenate(flags, axis=0)
    return PCKValues(
        per_image=tuple(float(v) for v in 100.0 * per_pair.mean(axis=0)),
        per_keypoint=tuple(float(v) for v in 100.0 * pooled.mean(axis=0)),
        num_pairs=len(flags),
        num_keypoints=int(pooled.shape[0]),
    )


def summarize(scores: Iterable[PairScore], protocol: PCKProtocol | str = PCKProtocol.OFFICIAL) -> PCKSummary:
    """PCK tables of `scores` under `protocol`: overall, per category, per difficulty-flag level.

    Raises:
        DataError: no scores, scores with different alphas, or scores lacking `protocol`.
    """
    scores = list(scores)
    if not scores:
        raise DataError("no pair results to summarize")
    alphas = scores[0].alphas
    for score in scores:
        if tuple(score.alphas) != tuple(alphas):
            raise DataError(f"results mix alphas {alphas} and {score.alphas} (pair {score.pair_id!r})")
    by_category: dict[str, list[PairScore]] = {}
    by_flag: dict[str, dict[int, list[PairScore]]] = {}
    for score in scores:
        by_category.setdefault(score.category, []).append(score)
        for name, level in score.flags.items():
            by_flag.setdefault(name, {}).setdefault(int(level), []).append(score)
    per_category = {name: pck_values(group, protocol) for name, group in sorted(by_category.items())}
    category_mean = tuple(
        float(np.mean([values.per_image[a] for values in per_category.values()])) for a in range(len(alphas))
    )
    per_flag = {
        name: {level: pck_values(group, protocol) for level, group in sorted(levels.items())}
        for name, levels in sorted(by_flag.items())
    }
    return PCKSummary(
        protocol=PCKProtocol(protocol).value,
        alphas=tuple(alphas),
        overall=pck_values(scores, protocol),
        per_category=per_category,
        category_mean=category_mean,
        per_flag=per_flag,
    )


def pck_curve(scores: Sequence[PairScore], protocol: PCKProtocol | str, alphas: Sequence[float]) -> tuple[float, ...]:
    """Per-image PCK (percent) of `scores` under `protocol` at any `alphas`, recomputed from each line's points and
    threshold (so a report can draw PCK against alpha beyond the alphas the run scored).

    The verdict is :func:`correct_flags`' in the protocol's space; pairs without keypoints are left out.

    Raises:
        DataError: no scored keypoints, or scores lacking `protocol`.
    """
    name = PCKProtocol(protocol).value
    fractions = []
    for score in scores:
        if score.num_keypoints == 0:
            continue
        if name not in score.thresholds:
            raise DataError(f"pair {score.pair_id!r} has no {name!r} PCK (it has {sorted(score.thresholds)})")
        pred = to_protocol_space(score.pred_xy, score.trg_size, score.dataset, name)
        true = to_protocol_space(score.true_xy, score.trg_size, score.dataset, name)
        fractions.append(correct_flags(pred, true, score.thresholds[name], alphas).mean(axis=0))
    if not fractions:
        raise DataError("no scored keypoints to compute PCK from")
    return tuple(float(v) for v in 100.0 * np.mean(fractions, axis=0))
