"""JHMDB records: one video's PCK counts under every row, their results lines, and the saved predictions.

A results line (format version 1)::

    {"v": 1, "benchmark": "jhmdb", "video": "clap/<video>", "action": "clap", "labels": 1, "label_frames": [0],
     "num_frames": 40, "source_frames": 40, "joint_frames": 40, "size": [320, 240],
     "alphas": [0.05, 0.075, ..., 0.5],
     "counts": {"crw": {"scored": [15 ints], "correct": [15 x 19 ints]}, "crw_visibility": {...}, "tapnet": {...}},
     "predictions_sha256": "...", "extra": {"seconds": 12.5}}

``counts`` are those of ``vidcorr.eval.jhmdb.pck`` (joint-frames scored and correct per joint at every alpha),
so merged lines pool exactly. Records are keyed by (labels, video): ``--labels K`` runs are other rows. Files,
shards, resuming and merging are those of every run folder (``vidcorr.runs``). Nothing here needs torch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.eval.jhmdb.data import NUM_JOINTS
from vidcorr.eval.jhmdb.pck import CURVE_ALPHAS, SCORINGS, JointCounts
from vidcorr.io.atomic import atomic_path
from vidcorr.io.names import safe_name
from vidcorr.runs.folder import RecordKind

FORMAT_VERSION = 1
BENCHMARK = "jhmdb"
PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class JhmdbPrediction:
    """What the tracker says about one video's joints.

    Attributes:
        points_xy: float64 (T, 15, 2) x, y in vidcorr's pixel coordinates (pixel centres at +0.5).
        visible: bool (T, 15): predicted visible (confidence >= the threshold).
        confidence: float (T, 15) in [0, 1].
    """

    points_xy: np.ndarray
    visible: np.ndarray
    confidence: np.ndarray


@dataclass(frozen=True)
class JhmdbScore:
    """One video's record: the content of one results line.

    Attributes:
        video: ``<action>/<video>``; action: its action.
        labels: K, labels per joint the method was given; label_frames: their frames (0 first).
        num_frames: T scored (frames with both an image and joints); source_frames, joint_frames: the two counts.
        size: (W, H) of the frames.
        counts: row (``crw``, ``crw_visibility``, ``tapnet``) -> its counts.
        predictions_sha256: digest of the predicted points and visibility.
        extra: anything else worth keeping (``seconds``).
    """

    video: str
    action: str
    labels: int
    label_frames: tuple[int, ...]
    num_frames: int
    source_frames: int
    joint_frames: int
    size: tuple[int, int]
    counts: dict[str, JointCounts]
    predictions_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def predictions_digest(points_xy: np.ndarray, visible: np.ndarray) -> str:
    """sha256 of float64 (T, J, 2) points and bool (T, J) visibility, with their shapes."""
    digest = hashlib.sha256(repr(np.shape(points_xy)).encode())
    digest.update(np.ascontiguousarray(points_xy, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(visible, dtype=bool).tobytes())
    return digest.hexdigest()


def score_to_json(score: JhmdbScore) -> dict[str, Any]:
    """The JSON object of one results line (see the module docstring)."""
    return {
        "v": FORMAT_VERSION, "benchmark": BENCHMARK, "video": score.video, "action": score.action,
        "labels": score.labels, "label_frames": list(score.label_frames), "num_frames": score.num_frames,
        "source_frames": score.source_frames, "joint_frames": score.joint_frames, "size": list(score.size),
        "alphas": list(CURVE_ALPHAS),
        "counts": {name: {"scored": c.scored.tolist(), "correct": c.correct.tolist()}
                   for name, c in score.counts.items()},
        "predictions_sha256": score.predictions_sha256, "extra": dict(score.extra),
    }


def _counts(obj: Any) -> JointCounts:
    scored = np.asarray(obj["scored"], dtype=np.int64)
    correct = np.asarray(obj["correct"], dtype=np.int64)
    if scored.shape != (NUM_JOINTS,) or correct.shape != (NUM_JOINTS, len(CURVE_ALPHAS)):
        raise ValueError(f"counts must be {NUM_JOINTS} scored and {NUM_JOINTS} x {len(CURVE_ALPHAS)} correct, got "
                         f"{scored.shape} and {correct.shape}")
    return JointCounts(scored, correct)


def score_from_json(obj: Any) -> JhmdbScore:
    """Rebuild a :class:`JhmdbScore` from a results-line object.

    Raises:
        ValueError: not a version-1 JHMDB results object (a missing key, a wrong type or shape, other alphas).
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if obj.get("v") != FORMAT_VERSION or obj.get("benchmark") != BENCHMARK:
        raise ValueError(f"expected a JHMDB results line of format version {FORMAT_VERSION}")
    try:
        if [round(float(a), 6) for a in obj["alphas"]] != [round(a, 6) for a in CURVE_ALPHAS]:
            raise ValueError("counted at other alphas than this vidcorr's")
        counts = {str(name): _counts(value) for name, value in obj["counts"].items()}
        missing = [name for name in SCORINGS if name not in counts]
        if missing:
            raise ValueError(f"missing counts {', '.join(missing)}")
        return JhmdbScore(
            video=str(obj["video"]), action=str(obj["action"]), labels=int(obj["labels"]),
            label_frames=tuple(int(t) for t in obj["label_frames"]), num_frames=int(obj["num_frames"]),
            source_frames=int(obj["source_frames"]), joint_frames=int(obj["joint_frames"]),
            size=(int(obj["size"][0]), int(obj["size"][1])), counts=counts,
            predictions_sha256=str(obj["predictions_sha256"]), extra=dict(obj.get("extra", {})),
        )
    except KeyError as exc:
        raise ValueError(f"expected key {exc.args[0]!r}") from None
    except (TypeError, AttributeError, IndexError) as exc:
        raise ValueError(str(exc)) from None


JHMDB_RECORDS: RecordKind[JhmdbScore] = RecordKind(
    prefix=BENCHMARK, noun="JHMDB results line", to_json=score_to_json, from_json=score_from_json,
    key=lambda score: (score.labels, score.video), fingerprint=lambda score: score.predictions_sha256,
    describe=lambda score: f"JHMDB video {score.video!r} ({score.labels} label(s) per joint)")
"""JHMDB records: ``jhmdb.jsonl`` / ``jhmdb-shard<i>of<n>.jsonl``, keyed by (labels, video)."""


def predictions_path(out_dir: str | os.PathLike, video: str) -> Path:
    """``<out>/predictions/<action>_<video>.npz``, the name made safe for any file system."""
    return Path(out_dir) / PREDICTIONS_DIR / f"{safe_name(video)}.npz"


def save_predictions(path: Path, prediction: JhmdbPrediction, joints_matlab: np.ndarray,
                     label_frames: tuple[int, ...]) -> Path:
    """Write one video's predictions atomically.

    Keys: ``points`` float64 (T, 15, 2) predicted x, y (vidcorr's pixel coordinates, centres at +0.5);
    ``visible`` bool (T, 15); ``confidence`` float32 (T, 15); ``joints_matlab`` float64 (T, 15, 2), the ground
    truth as stored (MATLAB 1-based; subtract 0.5 for vidcorr's coordinates); ``label_frames`` int64 (K,).
    Loadable without pickle.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "points": np.asarray(prediction.points_xy, dtype=np.float64),
        "visible": np.asarray(prediction.visible, dtype=bool),
        "confidence": np.asarray(prediction.confidence, dtype=np.float32),
        "joints_matlab": np.asarray(joints_matlab, dtype=np.float64),
        "label_frames": np.asarray(label_frames, dtype=np.int64),
    }
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path
