"""JHMDB keypoint propagation's PCK, under CRW's protocol and tapnet's, per video as counts that pool exactly.

CRW (ajabri/videowalk ``code/eval/eval_pck.py``, which DIFT, VFS, Spa-then-Temp and others reuse):

- ground truth ``pos_img - 1`` (0-based); here ``pos_img - 0.5`` (vidcorr's pixel centres): the same distances;
- on every frame, the reference size is 0.6 x the diagonal of the tight box around that frame's ground-truth
  joints (those the method predicts present); a joint is correct at alpha if ``error / size <= alpha``;
- frame 1 is not scored (its ground truth is the method's input);
- PCK per joint over all frames of all videos, then the mean of the 15 per-joint values.

CRW drops a joint from both the box and the score on a frame where the method predicts it absent. vidcorr's
headline row predicts every joint on every frame (no abstention): ``crw``. The row ``crw_visibility`` applies
vidcorr's visibility (confidence >= the threshold) in CRW's way.

tapnet (google-deepmind/tapnet: ``create_jhmdb_dataset`` in ``tapvid/evaluation_datasets.py``, ``pck_evaluate``
in ``training/supervised_point_prediction.py``; TAP-Net and TAPIR report JHMDB through it) differs in three ways:

- frame 1 is scored too;
- a joint outside the frame on frame 1 (stored ``x < 0 or x >= W or y < 0 or y >= H``) is dropped for the whole
  clip, from the score and from the box;
- the ground truth is taken as stored, with no 1-based shift, and compared with the predicted pixel coordinates.

Both, per joint, count a joint with nothing scored as 0 % (tapnet's ``max(1e-12, n)``; CRW's code would divide
by zero there). ``--labels K`` (K labels per joint: frame 1 and K - 1 later frames) excludes the later label
frames from scoring under both protocols; frame 1 stays as each protocol says.

A video's record keeps, per row, the scored and correct counts per joint at every alpha of :data:`CURVE_ALPHAS`,
so any set of videos pools exactly as one long evaluation would. Nothing here needs torch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from vidcorr.eval.jhmdb.data import NUM_JOINTS, matlab_to_pixel_centres

CURVE_ALPHAS: tuple[float, ...] = tuple(round(0.05 + 0.025 * i, 3) for i in range(19))
"""0.05, 0.075, ..., 0.5: the alphas every record counts at (the table's and the picture's)."""
TABLE_ALPHAS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
HEADLINE_ALPHAS: tuple[float, ...] = (0.1, 0.2)
BOX_SCALE = 0.6
"""The reference size is this times the diagonal of the joints' box."""


class Scoring(str, Enum):
    """The rows every video is scored under (see the module docstring)."""

    CRW = "crw"
    CRW_VISIBILITY = "crw_visibility"
    TAPNET = "tapnet"


SCORINGS: tuple[str, ...] = tuple(s.value for s in Scoring)
PROTOCOL_OF: dict[str, str] = {"crw": "crw", "crw_visibility": "crw", "tapnet": "tapnet"}
"""Row -> the protocol it was scored with (``--protocol crw|tapnet`` shows one)."""


@dataclass(frozen=True)
class JointCounts:
    """One video's (or several pooled) PCK counts under one row.

    Attributes:
        scored: int (15,) joint-frames scored per joint.
        correct: int (15, A) of those correct at each alpha of :data:`CURVE_ALPHAS`.
    """

    scored: np.ndarray
    correct: np.ndarray

    def __add__(self, other: JointCounts) -> JointCounts:
        return JointCounts(self.scored + other.scored, self.correct + other.correct)

    def per_joint(self) -> np.ndarray:
        """float (15, A): percent correct per joint (0 where nothing was scored, as tapnet)."""
        return 100.0 * self.correct / np.maximum(self.scored, 1e-12)[:, None]

    def mean(self) -> np.ndarray:
        """float (A,): the mean over the 15 joints of :meth:`per_joint`: the number papers report."""
        return self.per_joint().mean(axis=0)


def empty_counts() -> JointCounts:
    return JointCounts(np.zeros(NUM_JOINTS, np.int64), np.zeros((NUM_JOINTS, len(CURVE_ALPHAS)), np.int64))


def normalized_errors(pred_xy: np.ndarray, truth_xy: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """float64 (T, J): each joint's error divided by its frame's reference size; NaN where `joints` is False.

    Args:
        pred_xy, truth_xy: float (T, J, 2) in the same pixels.
        joints: bool (T, J): the joints that make each frame's box (and may be scored).

    The size is ``0.6 * hypot(max x - min x, max y - min y)`` over the frame's `joints`. A zero size gives an
    infinite or NaN ratio, never correct (as CRW's and tapnet's division does).
    """
    pred = np.asarray(pred_xy, dtype=np.float64)
    truth = np.asarray(truth_xy, dtype=np.float64)
    masked_lo = np.where(joints[..., None], truth, np.inf).min(axis=1)
    masked_hi = np.where(joints[..., None], truth, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        size = BOX_SCALE * np.hypot(*(masked_hi - masked_lo).T)
        error = np.sqrt(((pred - truth) ** 2).sum(axis=-1)) / size[:, None]
    return np.where(joints, error, np.nan)


def count_correct(errors: np.ndarray, scored: np.ndarray, alphas: Iterable[float] = CURVE_ALPHAS) -> JointCounts:
    """Counts of (T, J) `errors` over the `scored` (T, J) entries: error <= alpha, per joint and alpha."""
    limits = np.asarray(tuple(alphas), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        hits = (errors[..., None] <= limits) & scored[..., None]
    return JointCounts(scored.sum(axis=0).astype(np.int64), hits.sum(axis=0).astype(np.int64))


def tapnet_valid(joints_matlab: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """bool (J,): tapnet keeps a joint whose stored frame-1 position is inside ``[0, W) x [0, H)``."""
    width, height = size_wh
    first = np.asarray(joints_matlab, dtype=np.float64)[0]
    return (first[:, 0] >= 0) & (first[:, 0] < width) & (first[:, 1] >= 0) & (first[:, 1] < height)


def score_video(pred_xy: np.ndarray, visible: np.ndarray, joints_matlab: np.ndarray, size_wh: tuple[int, int],
                label_frames: Collection[int] = (0,)) -> dict[str, JointCounts]:
    """One video's counts under every row of :data:`SCORINGS`.

    Args:
        pred_xy: float (T, 15, 2) predicted x, y in vidcorr's pixel coordinates (pixel centres at +0.5).
        visible: bool (T, 15): the method's visibility (used by ``crw_visibility`` only).
        joints_matlab: float (T, 15, 2) ground truth as stored in ``pos_img`` (MATLAB 1-based).
        size_wh: (W, H) of the frames.
        label_frames: frames whose ground truth the method was given (frame 0 first); the frames after 0 are
            never scored; frame 0 is scored by tapnet only.
    """
    pred = np.asarray(pred_xy, dtype=np.float64)
    stored = np.asarray(joints_matlab, dtype=np.float64)
    num_frames, num_joints = stored.shape[:2]
    if pred.shape != stored.shape:
        raise ValueError(f"predictions {pred.shape} and ground truth {stored.shape} differ in shape")
    later_labels = np.zeros(num_frames, dtype=bool)
    later_labels[[t for t in label_frames if 0 < t < num_frames]] = True
    crw_frames = ~later_labels
    crw_frames[0] = False
    everything = np.ones((num_frames, num_joints), dtype=bool)
    shown = np.asarray(visible, dtype=bool).reshape(num_frames, num_joints)
    valid = np.broadcast_to(tapnet_valid(stored, size_wh), (num_frames, num_joints))
    truth_crw = matlab_to_pixel_centres(stored)
    rows = {
        Scoring.CRW.value: (truth_crw, everything, crw_frames),
        Scoring.CRW_VISIBILITY.value: (truth_crw, shown, crw_frames),
        Scoring.TAPNET.value: (stored, valid, ~later_labels),
    }
    counts = {}
    for name, (truth, joints, frames) in rows.items():
        errors = normalized_errors(pred, truth, joints)
        counts[name] = count_correct(errors, joints & frames[:, None])
    return counts


def pool(per_video: Iterable[Mapping[str, JointCounts]], scoring: str) -> JointCounts:
    """The sum of several videos' counts under `scoring`."""
    total = empty_counts()
    for counts in per_video:
        total = total + counts[scoring]
    return total


def alpha_index(alpha: float) -> int:
    """The column of `alpha` in :data:`CURVE_ALPHAS`; ValueError for another alpha."""
    for index, value in enumerate(CURVE_ALPHAS):
        if abs(value - alpha) < 1e-9:
            return index
    raise ValueError(f"alpha {alpha:g} is not counted; the counted alphas are {CURVE_ALPHAS}")
