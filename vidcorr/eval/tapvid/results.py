"""TAP-Vid records: one video's scores (tapnet's metrics), their results lines, and the saved predictions.

A results line (format version 1)::

    {"v": 1, "benchmark": "tapvid", "dataset": "davis", "video": "bear", "query_mode": "first",
     "full_res": false, "num_frames": 82, "num_tracks": 21, "num_queries": 21, "source_size_hw": [480, 854],
     "metrics": {"occlusion_accuracy": 0.9, "pts_within_1": 0.2, ..., "average_pts_within_thresh": 0.6},
     "predictions_sha256": "...", "extra": {"seconds": 12.5}}

With K > 1 labels per query (``vidcorr eval tapvid --labels K``) the line also holds ``"labels": K``; a line
without it is tapnet's protocol (K = 1). Lines of different K are different groups, never averaged together.

Metrics are fractions in [0, 1] (tapnet's scale; reports show percent); a metric with nothing to score (NaN
in tapnet) is written as null. ``predictions_sha256`` fingerprints the predicted points and occlusion, so
merging two files that disagree about a video is caught. Files, shards, resuming and merging are those of
every run folder (``vidcorr.runs``); :data:`TAPVID_RECORDS` is this kind's part. Nothing here needs torch.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.eval.tapvid.data import TapVidQueries, TapVidVideo
from vidcorr.eval.tapvid.metrics import compute_tapvid_metrics, metric_names, normalize_query_mode
from vidcorr.io.atomic import atomic_path
from vidcorr.io.names import safe_name
from vidcorr.runs.folder import RecordKind

FORMAT_VERSION = 1
BENCHMARK = "tapvid"
PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class TapVidPrediction:
    """What a tracker says about one video's queries.

    Attributes:
        points_xy: float64 (Q, T, 2) x, y in pixels of ``video.frames`` (full-res pixels with ``full_res``),
            row q for query q.
        occluded: bool (Q, T), True where the tracker judges the point occluded.
        confidence: float (Q, T) in [0, 1], or None where the tracker has none.
    """

    points_xy: np.ndarray
    occluded: np.ndarray
    confidence: np.ndarray | None = None


TapVidPredictor = Callable[[TapVidVideo, TapVidQueries], TapVidPrediction]
"""predict(video, queries) -> TapVidPrediction; ``queries.query_points`` are in pixels of ``video.frames``."""


@dataclass(frozen=True)
class VideoScore:
    """One video's TAP-Vid scores: the content of one results line.

    Attributes:
        dataset, video, query_mode (``first`` or ``strided``), full_res: what was evaluated and how.
        metrics: ``metric_names()`` -> fraction in [0, 1]; NaN where the video has nothing to score.
        num_frames, num_tracks, num_queries: T, the annotated tracks N, the queries Q sampled from them.
        source_size_hw: (H, W) of the frames as stored in the file.
        predictions_sha256: digest of the predicted points (256x256 pixels) and occlusion.
        extra: anything else worth keeping (``seconds``).
        labels: K, labels per query (1: tapnet's protocol); label frames are never scored.
    """

    dataset: str
    video: str
    query_mode: str
    full_res: bool
    metrics: dict[str, float]
    num_frames: int
    num_tracks: int
    num_queries: int
    source_size_hw: tuple[int, int]
    predictions_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)
    labels: int = 1

    @property
    def group(self) -> tuple[str, str, bool, int]:
        """(dataset, query_mode, full_res, labels): scores in one group may be averaged together."""
        return self.dataset, self.query_mode, self.full_res, self.labels


def predictions_digest(points_eval_xy: np.ndarray, occluded: np.ndarray) -> str:
    """sha256 of float64 (Q, T, 2) points and bool (Q, T) occlusion, with their shapes."""
    digest = hashlib.sha256(repr(points_eval_xy.shape).encode())
    digest.update(np.ascontiguousarray(points_eval_xy, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(occluded, dtype=bool).tobytes())
    return digest.hexdigest()


def _check_prediction(prediction: TapVidPrediction, queries: TapVidQueries, num_frames: int) -> None:
    expected = (queries.num_queries, num_frames)
    if np.shape(prediction.points_xy) != (*expected, 2):
        raise ValueError(f"predicted points must have shape {(*expected, 2)}, got {np.shape(prediction.points_xy)}")
    if np.shape(prediction.occluded) != expected or np.asarray(prediction.occluded).dtype != np.bool_:
        raise ValueError(f"predicted occlusion must be bool {expected}, got {np.asarray(prediction.occluded).dtype} "
                         f"{np.shape(prediction.occluded)}")


def score_video(dataset: str, video: TapVidVideo, queries: TapVidQueries, prediction: TapVidPrediction, *,
                full_res: bool = False, extra: Mapping[str, Any] | None = None) -> VideoScore:
    """Score one video's predictions with tapnet's metrics, in 256x256 evaluation pixels.

    The predicted points are mapped with ``video.to_eval_px`` (the identity for 256x256 frames) and compared
    with ``queries.target_points``; ``full_res`` says how ``video`` was read and is recorded in the score. With
    several labels per query, no label frame is scored (``queries.label_mask``).

    Raises:
        ValueError: predictions whose shapes do not match the queries and frames.
    """
    _check_prediction(prediction, queries, video.num_frames)
    pred_eval = video.to_eval_px(prediction.points_xy)
    occluded = np.asarray(prediction.occluded, dtype=bool)
    metrics = compute_tapvid_metrics(queries.query_points, queries.occluded, queries.target_points, occluded,
                                     pred_eval, queries.query_mode, queries.label_mask(video.num_frames))
    return VideoScore(
        dataset=dataset,
        video=video.name,
        query_mode=queries.query_mode,
        full_res=bool(full_res),
        metrics=metrics,
        num_frames=video.num_frames,
        num_tracks=video.num_points,
        num_queries=queries.num_queries,
        source_size_hw=(int(video.source_size_hw[0]), int(video.source_size_hw[1])),
        predictions_sha256=predictions_digest(pred_eval, occluded),
        extra=dict(extra or {}),
        labels=queries.labels,
    )


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def score_to_json(score: VideoScore) -> dict[str, Any]:
    """The JSON object of one results line (see the module docstring)."""
    return {
        "v": FORMAT_VERSION,
        "benchmark": BENCHMARK,
        "dataset": score.dataset,
        "video": score.video,
        "query_mode": score.query_mode,
        "full_res": score.full_res,
        "num_frames": score.num_frames,
        "num_tracks": score.num_tracks,
        "num_queries": score.num_queries,
        "source_size_hw": list(score.source_size_hw),
        "metrics": {name: _finite_or_none(value) for name, value in score.metrics.items()},
        "predictions_sha256": score.predictions_sha256,
        "extra": dict(score.extra),
        **({"labels": score.labels} if score.labels != 1 else {}),
    }


def score_from_json(obj: Any) -> VideoScore:
    """Rebuild a :class:`VideoScore` from a results-line object.

    Raises:
        ValueError: not a version-1 TAP-Vid results object (a missing key, a wrong type, missing metrics).
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if obj.get("v") != FORMAT_VERSION or obj.get("benchmark") != BENCHMARK:
        raise ValueError(f"expected a TAP-Vid results line of format version {FORMAT_VERSION}")
    try:
        metrics = {name: math.nan if value is None else float(value) for name, value in obj["metrics"].items()}
        missing = [name for name in metric_names() if name not in metrics]
        if missing:
            raise ValueError(f"missing metrics {', '.join(missing)}")
        return VideoScore(
            dataset=str(obj["dataset"]),
            video=str(obj["video"]),
            query_mode=normalize_query_mode(str(obj["query_mode"])),
            full_res=bool(obj["full_res"]),
            metrics=metrics,
            num_frames=int(obj["num_frames"]),
            num_tracks=int(obj["num_tracks"]),
            num_queries=int(obj["num_queries"]),
            source_size_hw=(int(obj["source_size_hw"][0]), int(obj["source_size_hw"][1])),
            predictions_sha256=str(obj["predictions_sha256"]),
            extra=dict(obj.get("extra", {})),
            labels=int(obj.get("labels", 1)),
        )
    except KeyError as exc:
        raise ValueError(f"expected key {exc.args[0]!r}") from None
    except (TypeError, AttributeError, IndexError) as exc:
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------------------------- files


def _key(score: VideoScore) -> tuple[str, str, bool, int, str]:
    return (*score.group, score.video)


TAPVID_RECORDS: RecordKind[VideoScore] = RecordKind(
    prefix=BENCHMARK, noun="TAP-Vid results line", to_json=score_to_json, from_json=score_from_json, key=_key,
    fingerprint=lambda score: score.predictions_sha256,
    describe=lambda score: f"TAP-Vid video {score.video!r} ({score.dataset}, query {score.query_mode}"
                           + (f", {score.labels} labels)" if score.labels != 1 else ")"))
"""TAP-Vid records: ``tapvid.jsonl`` / ``tapvid-shard<i>of<n>.jsonl``, keyed by (dataset, query mode, full_res,
labels, video)."""



def predictions_path(out_dir: str | os.PathLike, video: str) -> Path:
    """``<out>/predictions/<video>.npz``, the name made safe for any file system."""
    return Path(out_dir) / PREDICTIONS_DIR / f"{safe_name(video)}.npz"


def save_predictions(path: Path, queries: TapVidQueries, points_eval_xy: np.ndarray,
                     prediction: TapVidPrediction) -> Path:
    """Write one video's predictions atomically.

    Keys: ``query_points`` float64 (Q, 3) t, x, y in pixels of the tracked frames; ``track_index`` int64 (Q,);
    ``points`` float64 (Q, T, 2) predicted x, y in 256x256 evaluation pixels; ``occluded`` bool (Q, T);
    ``confidence`` float32 (Q, T) (absent when the predictor has none); with several labels per query,
    ``labels`` float64 (M, 3) t, x, y in pixels of the tracked frames and ``label_query`` int64 (M,) the query of
    each. Loadable without pickle.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"query_points": queries.query_points, "track_index": queries.track_index,
              "points": np.asarray(points_eval_xy, dtype=np.float64), "occluded": np.asarray(prediction.occluded)}
    if prediction.confidence is not None:
        arrays["confidence"] = np.asarray(prediction.confidence, dtype=np.float32)
    if queries.label_points is not None:
        arrays["labels"] = np.concatenate(queries.label_points) if queries.label_points else np.zeros((0, 3))
        arrays["label_query"] = np.repeat(np.arange(queries.num_queries), [len(r) for r in queries.label_points])
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path
