"""TAP-Vid metrics, with the semantics of tapnet's ``compute_tapvid_metrics``.

Reference: google-deepmind/tapnet, ``tapnet/tapvid/evaluation_datasets.py`` (``compute_tapvid_metrics``), and the
TAP-Vid README: "the final metrics for the paper can be computed by simple averaging across all videos".

Conventions (the same as tapnet's, stated here once):

- Scale: every metric is a fraction in [0, 1], as tapnet returns it. Papers (and vidcorr's report tables)
  multiply by 100 for display; nothing in this module does.
- Space: positions are (x, y) pixels of the 256x256 evaluation frames (``TapVidVideo.eval_points`` and
  ``TapVidVideo.to_eval_px`` give them); the thresholds 1, 2, 4, 8, 16 are pixels in that space.
- One score per video: :func:`compute_tapvid_metrics` takes one video's queries and returns floats;
  :func:`compute_tapvid_metrics_batched` takes tapnet's leading batch axis (one video per row) and returns
  arrays of shape (B,); :func:`mean_over_videos` averages the per-video scores.
- Evaluated frames: the query frame itself is never scored. ``first``: only frames strictly after it
  (tapnet assumes every earlier frame is known to be occluded); ``strided``: every other frame. With several
  labels per query (vidcorr's K-label protocol), the frames given in ``excluded`` (every label) are not scored
  either.
- Only the frame index (column 0, rounded to the nearest integer) of a query point is read, so tapnet's
  (t, y, x) queries and vidcorr's (t, x, y) queries give the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

THRESHOLDS_PX: tuple[int, ...] = (1, 2, 4, 8, 16)
"""Distance thresholds of pts_within_{d} and jaccard_{d}, in pixels of the 256x256 evaluation frames."""

QUERY_MODES: tuple[str, ...] = ("first", "strided")


def normalize_query_mode(query_mode: str) -> str:
    """Return ``"first"`` or ``"strided"``; ``"query_first"`` (the TAP-Vid paper's name) means ``"first"``."""
    mode = "first" if query_mode == "query_first" else query_mode
    if mode not in QUERY_MODES:
        raise ValueError(f"query_mode must be 'first' (or 'query_first') or 'strided', got {query_mode!r}")
    return mode


def metric_names() -> list[str]:
    """The keys of a metrics dict, in tapnet's order."""
    names = ["occlusion_accuracy"]
    for thresh in THRESHOLDS_PX:
        names += [f"pts_within_{thresh}", f"jaccard_{thresh}"]
    return names + ["average_jaccard", "average_pts_within_thresh"]


def _evaluated_frames(query_frame: np.ndarray, num_frames: int, query_mode: str) -> np.ndarray:
    """Which frames are scored for each query: bool (..., T) from integer query frames (...,)."""
    frame = np.arange(num_frames)
    if query_mode == "first":
        return frame > query_frame[..., None]
    return frame != query_frame[..., None]


def compute_tapvid_metrics_batched(
    query_points: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    query_mode: str,
    excluded: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """TAP-Vid metrics of B videos at once, exactly as tapnet's ``compute_tapvid_metrics``.

    Args:
        query_points: float (B, Q, 3); column 0 is the query frame index (rounded to the nearest integer),
            columns 1-2 are not read (tapnet stores y, x there; vidcorr stores x, y).
        gt_occluded: bool (B, Q, T); True where the ground-truth point is occluded.
        gt_tracks: float (B, Q, T, 2) ground-truth x, y in 256x256 evaluation pixels.
        pred_occluded: bool (B, Q, T) predicted occlusion.
        pred_tracks: float (B, Q, T, 2) predicted x, y in 256x256 evaluation pixels.
        query_mode: ``"first"`` (or ``"query_first"``) or ``"strided"``.
        excluded: bool (B, Q, T), frames never scored besides the query mode's (a query's labels), or None.

    Returns:
        ``metric_names()`` -> float64 (B,), fractions in [0, 1]. Per video, over the evaluated frames:
        ``occlusion_accuracy`` = fraction with pred_occluded == gt_occluded; ``pts_within_d`` = among
        ground-truth-visible frames, the fraction with squared distance < d**2 (strict), whatever the
        predicted occlusion; ``jaccard_d`` = TP / (gt visible + FP), TP = visible, predicted visible and
        within d, FP = predicted visible but ground-truth occluded or not within d; the two averages are
        means over d in (1, 2, 4, 8, 16). A video with no evaluated (or no visible) frame gets NaN, as in
        tapnet.
    """
    query_mode = normalize_query_mode(query_mode)
    query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks = _checked_inputs(
        query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks)
    evaluated = _evaluated_mask(query_points, gt_tracks.shape[2], query_mode, excluded)
    metrics = _scores(gt_occluded, gt_tracks, pred_occluded, pred_tracks, evaluated)
    return {name: metrics[name].astype(np.float64) for name in metric_names()}


def _checked_inputs(query_points: np.ndarray, gt_occluded: np.ndarray, gt_tracks: np.ndarray,
                    pred_occluded: np.ndarray, pred_tracks: np.ndarray) -> tuple[np.ndarray, ...]:
    """The five arrays of `compute_tapvid_metrics_batched` as numpy (tracks float64), their shapes and the
    occlusion flags' dtype checked (ValueError naming the array)."""
    query_points = np.asarray(query_points)
    gt_tracks = np.asarray(gt_tracks, dtype=np.float64)
    pred_tracks = np.asarray(pred_tracks, dtype=np.float64)
    gt_occluded = np.asarray(gt_occluded)
    pred_occluded = np.asarray(pred_occluded)
    if gt_tracks.ndim != 4 or gt_tracks.shape[-1] != 2:
        raise ValueError(f"gt_tracks must have shape (B, Q, T, 2), got {gt_tracks.shape}")
    batch, num_queries, num_frames, _ = gt_tracks.shape
    expected = {
        "query_points": (query_points, (batch, num_queries, 3)),
        "gt_occluded": (gt_occluded, (batch, num_queries, num_frames)),
        "pred_occluded": (pred_occluded, (batch, num_queries, num_frames)),
        "pred_tracks": (pred_tracks, (batch, num_queries, num_frames, 2)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape} to match gt_tracks, got {array.shape}")
    for name, array in (("gt_occluded", gt_occluded), ("pred_occluded", pred_occluded)):
        if array.dtype != np.bool_:
            raise ValueError(f"{name} must be a bool array (True = occluded), got dtype {array.dtype}")
    return query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks


def _evaluated_mask(query_points: np.ndarray, num_frames: int, query_mode: str,
                    excluded: np.ndarray | None) -> np.ndarray:
    """bool (B, Q, T): the frames scored for each query, the query mode's (see `_evaluated_frames`) less
    `excluded`."""
    query_frame = np.round(query_points[..., 0]).astype(np.int64)
    if query_frame.size and (query_frame.min() < 0 or query_frame.max() >= num_frames):
        raise ValueError(
            f"query frames must lie in [0, {num_frames - 1}], got {query_frame.min()}..{query_frame.max()}"
        )
    evaluated = _evaluated_frames(query_frame, num_frames, query_mode)
    if excluded is not None:
        excluded = np.asarray(excluded, dtype=bool)
        if excluded.shape != evaluated.shape:
            raise ValueError(f"excluded must have shape {evaluated.shape} to match gt_tracks, got {excluded.shape}")
        evaluated = evaluated & ~excluded
    return evaluated


def _scores(gt_occluded: np.ndarray, gt_tracks: np.ndarray, pred_occluded: np.ndarray, pred_tracks: np.ndarray,
            evaluated: np.ndarray) -> dict[str, np.ndarray]:
    """tapnet's metrics over the `evaluated` frames, per video (B,): occlusion accuracy, then per threshold the
    fraction within it and the Jaccard, then their means."""
    axes = (1, 2)
    visible = ~gt_occluded
    pred_visible = ~pred_occluded
    num_visible = np.sum(visible & evaluated, axis=axes)

    metrics: dict[str, np.ndarray] = {}
    # 0/0 is NaN on purpose (tapnet's result for a video with nothing to score); keep numpy quiet about it.
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.sum((pred_occluded == gt_occluded) & evaluated, axis=axes)
        metrics["occlusion_accuracy"] = agree / np.sum(evaluated, axis=axes)
        within_fractions = []
        jaccards = []
        squared_distance = np.sum(np.square(pred_tracks - gt_tracks), axis=-1)
        for thresh in THRESHOLDS_PX:
            within = squared_distance < thresh**2
            correct = within & visible
            within_fraction = np.sum(correct & evaluated, axis=axes) / num_visible
            true_positives = np.sum(correct & pred_visible & evaluated, axis=axes)
            false_positives = np.sum((~visible | ~within) & pred_visible & evaluated, axis=axes)
            jaccard = true_positives / (num_visible + false_positives)
            metrics[f"pts_within_{thresh}"] = within_fraction
            metrics[f"jaccard_{thresh}"] = jaccard
            within_fractions.append(within_fraction)
            jaccards.append(jaccard)
    metrics["average_jaccard"] = np.mean(np.stack(jaccards, axis=1), axis=1)
    metrics["average_pts_within_thresh"] = np.mean(np.stack(within_fractions, axis=1), axis=1)
    return metrics


def compute_tapvid_metrics(
    query_points: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    query_mode: str,
    excluded: np.ndarray | None = None,
) -> dict[str, float]:
    """TAP-Vid metrics of one video (tapnet's ``compute_tapvid_metrics`` on a batch of one).

    Args:
        query_points: float (Q, 3) t, x, y (only t is read; see the module docstring).
        gt_occluded: bool (Q, T), True = occluded.
        gt_tracks: float (Q, T, 2) x, y in 256x256 evaluation pixels.
        pred_occluded: bool (Q, T).
        pred_tracks: float (Q, T, 2) x, y in 256x256 evaluation pixels.
        query_mode: ``"first"`` (or ``"query_first"``) or ``"strided"``.
        excluded: bool (Q, T), frames never scored besides the query mode's (a query's labels), or None.

    Returns:
        ``metric_names()`` -> float fraction in [0, 1] (NaN where the video has nothing to score).
    """
    batched = compute_tapvid_metrics_batched(
        np.asarray(query_points)[None],
        np.asarray(gt_occluded)[None],
        np.asarray(gt_tracks)[None],
        np.asarray(pred_occluded)[None],
        np.asarray(pred_tracks)[None],
        query_mode,
        None if excluded is None else np.asarray(excluded)[None],
    )
    return {name: float(value[0]) for name, value in batched.items()}


def mean_over_videos(per_video: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Benchmark score: the plain mean over videos of each metric (tapnet's protocol), still in [0, 1].

    Every video weighs the same whatever its number of queries. A NaN score (a video with nothing to
    score) makes that metric's mean NaN, as a plain mean does in tapnet, so it cannot go unnoticed.

    Args:
        per_video: one dict per video, as returned by :func:`compute_tapvid_metrics`; all with the same keys.
    """
    if not per_video:
        raise ValueError("mean_over_videos needs at least one video's metrics, got none")
    names = list(per_video[0])
    for index, metrics in enumerate(per_video):
        if set(metrics) != set(names):
            raise ValueError(f"video {index} has metrics {sorted(metrics)}, expected {sorted(names)}")
    return {name: float(np.mean([float(metrics[name]) for metrics in per_video])) for name in names}
