"""The JHMDB loop: per video fit the 15 joints on their labels, track them forward, score, append a line.

One call of :func:`run_jhmdb` evaluates one shard of split 1's test videos into a run folder::

    <out>/run.json                                  the setup (model, config, labels, visibility threshold, ...)
    <out>/jhmdb.jsonl                               unsharded runs
    <out>/jhmdb-shard<i>of<n>.jsonl                 shard i of n (zero-padded)
    <out>/predictions/<action>_<video>.npz          every video's predicted joints (see ``vidcorr.eval.jhmdb.results``)
    <out>/vis/<action>_<video>/keyframes/           with visualize: what ``vidcorr view`` shows of a video

Per video: the label frames are chosen (:func:`label_frames`: frame 0 and, with ``labels`` K > 1, K - 1 evenly
spaced later frames), each joint's ground truth there becomes its labels (:func:`joint_labels`), one embedding per
joint is fitted (the 15 in one fit call) and tracked through the clip (:func:`track_joints`), and the video is
scored under every row of ``vidcorr.eval.jhmdb.pck``. Its predictions are saved, then one results line is
appended, flushed and fsynced before the next video starts.

Resuming, sharding and launchers are those of every run folder (``vidcorr.runs``): videos already in ANY results
file of the folder are skipped; shard ``i`` of ``n`` takes the videos at positions i, i + n, ... of the
benchmark's order (after ``actions``, ``videos`` and ``limit``); a video's predictions depend on that video alone
(its random streams are keyed by its name and the joint), so shards merged equal one unsharded run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import InputError
from vidcorr.eval.jhmdb.data import JOINTS, JhmdbSource, JhmdbVideo
from vidcorr.eval.jhmdb.pck import SCORINGS, JointCounts, alpha_index, empty_counts, score_video
from vidcorr.eval.jhmdb.results import (
    BENCHMARK,
    JHMDB_RECORDS,
    JhmdbPrediction,
    JhmdbScore,
    predictions_digest,
    predictions_path,
    save_predictions,
)
from vidcorr.io.names import VIS_DIR, safe_name
from vidcorr.io.points import PointLabels
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress
from vidcorr.method.track import fit_queries, track
from vidcorr.pipelines.track import add_reference_maps
from vidcorr.runs.folder import Items, RunOptions, RunOutcome, model_setup
from vidcorr.web.visuals import (
    DEFAULT_KEY_FRAMES,
    KeyFrameMaps,
    ViewOptions,
    choose_key_frames,
    write_track_visuals,
)

JhmdbPredictor = Callable[[JhmdbVideo, tuple[int, ...]], JhmdbPrediction]
"""predict(video, label frames) -> JhmdbPrediction (see :func:`predict_video`; tests pass their own)."""


# --------------------------------------------------------------------------------------------- labels


def check_labels(labels: int) -> None:
    """Refuse a labels count below 1 (frame 1's labels are always given).

    Raises:
        InputError: one line saying why.
    """
    if labels < 1:
        raise InputError(f"--labels must be at least 1 (frame 1's labels), got {labels}")


def label_frames(num_frames: int, labels: int) -> tuple[int, ...]:
    """Frame 0 and ``labels - 1`` evenly spaced later frames (the last included), as ``choose_key_frames``
    spaces frames; fewer where the clip has fewer frames."""
    return tuple(choose_key_frames(range(num_frames), labels, always=(0,)))


def joint_labels(video: JhmdbVideo, frames: Sequence[int]) -> PointLabels:
    """Each joint's ground truth on `frames` as its labels (rows t, x, y in vidcorr's pixel coordinates).

    A joint annotated outside the frame (JHMDB annotates occluded and off-frame joints) is labelled at the
    nearest point of the frame (x in [0, W], y in [0, H]): the tracker takes labels inside the frame only, and
    every joint is predicted on every frame (no abstention).
    """
    width, height = video.size_wh
    xy = np.clip(video.joints_xy[list(frames)], 0.0, [float(width), float(height)])  # (K, 15, 2)
    times = np.asarray(frames, dtype=np.float64)[:, None]
    return PointLabels(JOINTS, tuple(np.column_stack([times, xy[:, j]]) for j in range(len(JOINTS))))


def track_joints(ldm: Any, video: JhmdbVideo, labels: PointLabels, cfg: Config, *,
                 visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD, progress: Progress | None = None,
                 on_frame: Any = None, return_maps: bool | set[int] = False) -> tuple[Tracks, Embeddings]:
    """The one call into the tracker: fit one embedding per point on all its labels (the joint fit, every point
    in one call), then track every point through the clip from its nearest label.

    Random streams are keyed by (video name, joint index), so a video's predictions depend on it alone.
    """
    # torch, loaded only when this runs: the module stays importable without the model stack
    from vidcorr.method.streams import item_point_ids

    reader = open_video(list(video.frames))
    ids = item_point_ids(video.name, labels.num_points)
    embeddings = fit_queries(ldm, reader, labels, cfg, progress, ids)
    tracks = track(ldm, reader, cfg=cfg, embeddings=embeddings, visibility_threshold=visibility_threshold,
                   progress=progress, on_frame=on_frame, return_maps=return_maps, point_ids=ids)
    return tracks, embeddings


def predict_video(ldm: Any, video: JhmdbVideo, frames: tuple[int, ...], cfg: Config, *,
                  visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD, progress: Progress | None = None,
                  vis_dir: str | os.PathLike | None = None) -> JhmdbPrediction:
    """The method on one video: the joints fitted on their labels on `frames` and tracked (:func:`track_joints`).

    With `vis_dir`, also writes ``<vis_dir>/keyframes/`` (key frames, each joint's attention map on them and on
    frame 0, predicted joints beside the ground truth) for ``vidcorr view``.
    """
    maps = None
    return_maps: bool | set[int] = False
    key_frames: list[int] = []
    if vis_dir is not None:
        key_frames = choose_key_frames(range(video.num_frames), DEFAULT_KEY_FRAMES, always=frames)
        maps = KeyFrameMaps(key_frames)
        return_maps = set(key_frames)
    tracks, embeddings = track_joints(ldm, video, joint_labels(video, frames), cfg,
                                      visibility_threshold=visibility_threshold, progress=progress, on_frame=maps,
                                      return_maps=return_maps)
    if vis_dir is not None and maps is not None:
        reader = open_video(list(video.frames))
        add_reference_maps(maps, ldm, reader, embeddings, cfg)
        tracks.meta["video"] = video.name
        write_track_visuals(Path(vis_dir), reader, tracks, key_frames, maps,
                            view=ViewOptions(truth=video.joints_xy, names=JOINTS))
    return JhmdbPrediction(np.asarray(tracks.points, dtype=np.float64), np.asarray(tracks.visible, dtype=bool),
                           np.asarray(tracks.confidence, dtype=np.float64))


def vis_folder(out_dir: str | os.PathLike, video: str) -> Path:
    """``<out>/vis/<action>_<video>``: where :func:`predict_video` puts a video's pictures."""
    return Path(out_dir) / VIS_DIR / safe_name(video)


# --------------------------------------------------------------------------------------------- setup


def jhmdb_setup(labels: int, ldm: Any, cfg: Config, *,
                visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> dict[str, Any]:
    """What determines a video's results line: written to ``run.json`` and compared on resume.

    Which videos are evaluated and where the data lies are left out, so a run may be extended or resumed with
    other filters; execution-only config fields are left out too.
    """
    return {
        "benchmark": BENCHMARK,
        "split": 1,
        "labels": int(labels),
        "visibility_threshold": float(visibility_threshold),
        **model_setup(ldm, cfg),
    }


def pending_videos(names: Sequence[str], out_dir: str | os.PathLike, labels: int,
                   shard: tuple[int, int] = (0, 1)) -> list[str]:
    """The videos of shard `shard` of `names` that no results file in `out_dir` holds yet for `labels`."""
    return JHMDB_RECORDS.pending(names, out_dir, shard, key=lambda name: (labels, name))


# --------------------------------------------------------------------------------------------- the loop


class _RunningPCK:
    """PCK@0.1 and @0.2 (mean over joints) of the videos finished so far, under CRW's and tapnet's headline rows:
    keys ``crw@0.1``, ``crw@0.2``, ``tapnet@0.1``, ``tapnet@0.2``."""

    def __init__(self) -> None:
        self.totals: dict[str, JointCounts] = {row: empty_counts() for row in SCORINGS}

    def add(self, score: JhmdbScore) -> None:
        for row in SCORINGS:
            self.totals[row] = self.totals[row] + score.counts[row]

    def values(self) -> dict[Any, float]:
        return {f"{row}@{alpha:g}": float(self.totals[row].mean()[alpha_index(alpha)])
                for row in ("crw", "tapnet") for alpha in (0.1, 0.2)}


def _video_name(key: Any) -> str:
    """A record key (labels, video) -> the video's name."""
    return str(key[1])


def score_record(video: JhmdbVideo, labels: int, frames: tuple[int, ...], prediction: JhmdbPrediction,
                 extra: Mapping[str, Any] | None = None) -> JhmdbScore:
    """Score one video's prediction under every row (see ``vidcorr.eval.jhmdb.pck``).

    Raises:
        ValueError: predictions whose shapes do not match the video's joints.
    """
    expected = video.joints_matlab.shape
    if np.shape(prediction.points_xy) != expected or np.shape(prediction.visible) != expected[:2]:
        raise ValueError(f"predicted joints must have shape {expected} and visibility {expected[:2]}, got "
                         f"{np.shape(prediction.points_xy)} and {np.shape(prediction.visible)}")
    counts = score_video(prediction.points_xy, prediction.visible, video.joints_matlab, video.size_wh, frames)
    return JhmdbScore(video.name, video.action, labels, frames, video.num_frames, video.source_frames,
                      video.joint_frames, video.size_wh, counts,
                      predictions_digest(prediction.points_xy, prediction.visible), dict(extra or {}))


def run_jhmdb(
    source: JhmdbSource,
    out_dir: str | os.PathLike,
    predict: JhmdbPredictor,
    *,
    labels: int = 1,
    names: Sequence[str] | None = None,
    options: RunOptions | None = None,
) -> RunOutcome[JhmdbScore]:
    """Evaluate shard ``options.shard`` = (index, count) of `source`'s videos into `out_dir`, resuming what is
    there.

    predict: called as predict(video, label frames) for each video still to do.
    labels: K, labels per joint (frame 0 and K - 1 later frames; see :func:`label_frames`).
    names: ``source.names()`` when the caller has it already.
    options: the shard, the setup for ``run.json``, progress (called once before the first video and after each
        video) and fsync (:class:`~vidcorr.eval.options.RunOptions`; None: its defaults).

    Videos are read one at a time; reading stops after this shard's last pending video. Raises whatever
    `predict` raises; the videos finished before stay saved.
    """
    out_dir = Path(out_dir)
    names = source.names() if names is None else list(names)

    def process(video: JhmdbVideo) -> JhmdbScore:
        start = time.perf_counter()
        frames = label_frames(video.num_frames, labels)
        prediction = predict(video, frames)
        score = score_record(video, labels, frames, prediction,
                             {"seconds": round(time.perf_counter() - start, 3)})
        save_predictions(predictions_path(out_dir, video.name), prediction, video.joints_matlab, frames)
        return score

    keys = [(labels, name) for name in names]
    items = Items(keys, lambda todo: source.read({_video_name(k) for k in todo}, names),
                  lambda video: (labels, video.name), name=_video_name, source=str(source.root), noun="videos")
    return (options or RunOptions()).run_items(JHMDB_RECORDS, out_dir, items, process, _RunningPCK())
