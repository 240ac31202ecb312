"""The TAP-Vid loop: per video build tapnet's queries, track them, score with tapnet's metrics, append a line.

One call of :func:`run_tapvid` evaluates one shard of a TAP-Vid dataset into a run folder::

    <out>/run.json                                  the setup (model, config, dataset, query mode, ...)
    <out>/tapvid.jsonl                              unsharded runs
    <out>/tapvid-shard<i>of<n>.jsonl                shard i of n (zero-padded)
    <out>/predictions/<video>.npz                   every video's predicted tracks, in 256x256 pixels

Per video: queries are sampled exactly as tapnet samples them (``query_first``: one per track at its first
visible frame; ``strided``: every 5 frames from every track visible there; see ``vidcorr.eval.tapvid``), each
query is fitted on its own frame and followed through the whole video by :func:`vidcorr.track`, predicted
occlusion is "not visible", and :func:`~vidcorr.eval.tapvid_metrics.compute_tapvid_metrics` scores the
predictions in 256x256 evaluation pixels (with ``full_res`` the frames are tracked as stored and the
predictions scaled to 256x256 first, as tapnet's README asks). The video's predictions are written to
``predictions/`` and then one results line is appended, flushed and fsynced before the next video starts.

With ``labels`` K > 1 (vidcorr's K-label protocol, not tapnet's) each query gets K labels from the ground truth
(the query plus K - 1 visible frames of its track evenly spaced over its visible span: ``data.label_frames``),
is fitted jointly on them and tracked from all of them, and no label frame is scored. K is part of the run's
setup and of every results line's group, so K-label scores are never mixed with the standard protocol's.

The results lines and predictions files are those of ``vidcorr.eval.tapvid_results``.

Resuming, sharding and launchers are those of every run folder (``vidcorr.runs``, whose loop this is):
videos already in ANY results file of the folder are skipped; a half-written last line is cut off and its
video redone; shard ``i`` of ``n`` takes the videos at positions i, i + n, ... of the dataset's order (after
``videos`` and ``limit``); each video's predictions depend on that video alone (every random stream is keyed
by the seed, the query's index and the frame), so shards merged equal one unsharded run.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import DataError, InputError
from vidcorr.eval.tapvid.data import (
    DATASETS,
    QUERY_STRIDE,
    TapVidQueries,
    TapVidVideo,
    kinetics_shards,
    load_tapvid_pickle,
    read_tapvid,
    video_queries,
)
from vidcorr.eval.tapvid.metrics import mean_over_videos, normalize_query_mode
from vidcorr.eval.tapvid.results import (
    BENCHMARK,
    TAPVID_RECORDS,
    TapVidPrediction,
    TapVidPredictor,
    VideoScore,
    predictions_path,
    save_predictions,
    score_video,
)
from vidcorr.io.points import PointLabels
from vidcorr.method.fit import Progress
from vidcorr.method.track import track
from vidcorr.runs.folder import Items, RunOptions, RunOutcome, model_setup

DATASET_FILES: dict[str, tuple[str, ...]] = {
    "davis": ("tapvid_davis.pkl", "tapvid_davis/tapvid_davis.pkl"),
    "rgb_stacking": ("tapvid_rgb_stacking.pkl", "tapvid_rgb_stacking/tapvid_rgb_stacking.pkl"),
    "kinetics": ("tapvid_kinetics",),
}
"""Where each dataset lies inside a data folder, as tapnet's zips unpack (``tapvid_davis.zip`` ->
``tapvid_davis/tapvid_davis.pkl``; ``tapvid_kinetics`` holds the ``*_of_*.pkl`` shards)."""


# --------------------------------------------------------------------------------------------- data


def resolve_tapvid_path(dataset: str, data_root: str | os.PathLike) -> Path:
    """The pickle (DAVIS, RGB-Stacking) or shard folder / shard file (Kinetics) that ``data_root`` names.

    ``data_root`` may be that file or folder itself, or a folder holding it where tapnet's zips put it
    (see :data:`DATASET_FILES`).

    Raises:
        InputError: an unknown dataset. DataError: nothing of the dataset's at or under ``data_root``.
    """
    if dataset not in DATASETS:
        raise InputError(f"unknown TAP-Vid dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    root = Path(data_root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DataError(f"{root}: TAP-Vid file or folder not found")
    if dataset == "kinetics":
        if any(root.glob("*_of_*.pkl")):
            return root
        nested = root / DATASET_FILES["kinetics"][0]
        if nested.is_dir() and any(nested.glob("*_of_*.pkl")):
            return nested
        raise DataError(f"{root}: no TAP-Vid-Kinetics shards (*_of_*.pkl) here or in {nested}")
    for relative in DATASET_FILES[dataset]:
        if (root / relative).is_file():
            return root / relative
    raise DataError(f"{root}: no {' or '.join(DATASET_FILES[dataset])} in this folder; give the pickle itself "
                    "with --data-root")


@dataclass(frozen=True)
class TapVidSource:
    """A TAP-Vid dataset on disk and which of its videos to evaluate.

    Attributes:
        dataset: ``davis``, ``rgb_stacking`` or ``kinetics``.
        path: the pickle, or (Kinetics) one shard or the folder of shards (see :func:`resolve_tapvid_path`).
        full_res: track the frames as stored instead of tapnet's 256x256 frames.
        videos: names or shell patterns to keep (empty: all).
        limit: only the first N videos (after ``videos``), in the dataset's order.
    """

    dataset: str
    path: Path
    full_res: bool = False
    videos: tuple[str, ...] = ()
    limit: int | None = None

    def names(self) -> list[str]:
        """The names :meth:`read` yields, in order, without decoding any frame.

        Reads each pickle once (restricted unpickler) and names its videos as the reader does (dict keys;
        ``<file stem>_<index:04d>`` for lists), so a run knows its total and its shard before any work. Stops
        reading files once ``limit`` names are found.

        Raises:
            InputError: ``limit`` < 1. DataError: an unreadable or refused pickle, a pickle that holds neither a
                dict nor a list, or (without ``limit`` cutting the listing short) a pattern matching no video.
        """
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be a positive number of videos, got {self.limit}")
        sources = kinetics_shards(self.path) if self.dataset == "kinetics" else [Path(self.path)]
        names: list[str] = []
        unmatched = set(self.videos)
        for source in sources:
            data = load_tapvid_pickle(source)
            if isinstance(data, dict):
                keys = [str(key) for key in data]
            elif isinstance(data, (list, tuple)):
                keys = [f"{source.stem}_{index:04d}" for index in range(len(data))]
            else:
                raise DataError(f"{source}: expected a dict or a list of videos, got a {type(data).__name__}")
            del data  # a whole dataset's frames: free them before the next file
            for name in keys:
                hits = {pattern for pattern in self.videos if fnmatch.fnmatchcase(name, pattern)}
                if self.videos and not hits:
                    continue
                unmatched -= hits
                names.append(name)
                if self.limit is not None and len(names) >= self.limit:
                    return names
        if unmatched:
            raise DataError(f"{self.path}: no video matches {', '.join(sorted(unmatched))}")
        return names

    def read(self) -> Iterator[TapVidVideo]:
        """The videos, decoded and (unless ``full_res``) resized to 256x256, one at a time."""
        return read_tapvid(self.dataset, self.path, full_res=self.full_res, videos=list(self.videos) or None,
                           limit=self.limit)


# --------------------------------------------------------------------------------------------- predict


def predict_video(ldm: Any, video: TapVidVideo, queries: TapVidQueries, cfg: Config, *,
                  visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
                  progress: Progress | None = None) -> TapVidPrediction:
    """The method on one video: :func:`vidcorr.track` of every query over every frame.

    Each query is fitted on its labels (its own frame; with K labels every label's frame, jointly), all queries in
    one batch, and followed from its labels forward and backward, from random streams keyed by (video name, query
    index); predicted occlusion is ``not visible`` (confidence below ``visibility_threshold``). Labels are clipped
    into the frame first (0 <= x <= W, 0 <= y <= H): a few Kinetics annotations lie half a pixel outside it. A
    video without queries gets empty predictions.
    """
    num_frames = video.num_frames
    if queries.num_queries == 0:
        return TapVidPrediction(np.zeros((0, num_frames, 2)), np.zeros((0, num_frames), dtype=bool),
                                np.zeros((0, num_frames)))
    # torch, loaded only when this runs: the module stays importable without the model stack
    from vidcorr.method.streams import item_point_ids

    height, width = video.size_hw
    rows = queries.label_points or tuple(queries.query_points[q:q + 1] for q in range(queries.num_queries))
    clipped = tuple(np.column_stack([r[:, :1], np.clip(r[:, 1:], 0.0, [float(width), float(height)])]) for r in rows)
    labels = PointLabels(tuple(str(q) for q in range(queries.num_queries)), clipped)
    tracks = track(ldm, video.frames, labels, cfg, visibility_threshold=visibility_threshold,
                   progress=progress, point_ids=item_point_ids(video.name, queries.num_queries))
    return TapVidPrediction(
        points_xy=np.asarray(tracks.points, dtype=np.float64).transpose(1, 0, 2),
        occluded=~np.asarray(tracks.visible, dtype=bool).T,
        confidence=np.asarray(tracks.confidence, dtype=np.float64).T,
    )


def pending_videos(names: Sequence[str], out_dir: str | os.PathLike, group: tuple[str, str, bool],
                   shard: tuple[int, int] = (0, 1), labels: int = 1) -> list[str]:
    """The videos of shard ``shard`` of ``names`` that no results file in ``out_dir`` holds yet for ``group``
    = (dataset, query mode, full_res) and ``labels`` per query."""
    dataset, query_mode, full_res = group
    key = (dataset, normalize_query_mode(query_mode), bool(full_res), int(labels))
    return TAPVID_RECORDS.pending(names, out_dir, shard, key=lambda name: (*key, name))


# --------------------------------------------------------------------------------------------- setup


def tapvid_setup(source: TapVidSource, query_mode: str, ldm: Any, cfg: Config, *,
                 visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD, labels: int = 1) -> dict[str, Any]:
    """What determines a video's results line: written to ``run.json`` and compared on resume.

    Which videos are evaluated (``videos``, ``limit``, shards) and where the data lies are left out, so a
    run may be extended or resumed with other filters; execution-only config fields are left out too.
    ``labels`` (K labels per query) is recorded when K > 1 (a run without it is tapnet's protocol).
    """

    return {
        "benchmark": BENCHMARK,
        "dataset": source.dataset,
        "query_mode": normalize_query_mode(query_mode),
        "query_stride": QUERY_STRIDE,
        "full_res": bool(source.full_res),
        "visibility_threshold": float(visibility_threshold),
        **model_setup(ldm, cfg),
        **({"labels": int(labels)} if labels != 1 else {}),
    }


# --------------------------------------------------------------------------------------------- the loop


SUMMARY_METRICS: tuple[str, ...] = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")
"""The three numbers papers report: AJ, delta_avg (<δ^x_avg), OA."""


class _RunningMeans:
    """The mean over the finished videos of :data:`SUMMARY_METRICS`."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def add(self, score: VideoScore) -> None:
        self.metrics.append(score.metrics)

    def values(self) -> dict[str, float]:
        mean = mean_over_videos(self.metrics)
        return {name: mean[name] for name in SUMMARY_METRICS}


def _video_name(key: Any) -> str:
    """A record key (dataset, query mode, full_res, labels, video) -> the video's name."""
    return str(key[-1])


def run_tapvid(
    source: TapVidSource,
    out_dir: str | os.PathLike,
    predict: TapVidPredictor,
    *,
    query_mode: str,
    names: Sequence[str] | None = None,
    labels: int = 1,
    options: RunOptions | None = None,
) -> RunOutcome[VideoScore]:
    """Evaluate shard ``options.shard`` = (index, count) of ``source``'s videos into ``out_dir``, resuming what is
    there.

    predict: called as predict(video, queries) for each video still to do (see :func:`predict_video`; tests
        pass their own).
    query_mode: ``first`` (or ``query_first``) or ``strided``.
    names: ``source.names()`` when the caller has it already.
    labels: K labels per query from the ground truth (see the module docstring); 1 is tapnet's protocol.
    options: the shard, the setup for ``run.json``, progress (called once before the first video and after each
        video) and fsync (:class:`~vidcorr.eval.options.RunOptions`; None: its defaults).

    Videos are read one at a time; reading stops after this shard's last pending video. Raises whatever
    ``predict`` raises; the videos finished before stay saved.
    """
    query_mode = normalize_query_mode(query_mode)
    if labels < 1:
        raise InputError(f"--labels must be at least 1 label per query, got {labels}")
    group = (source.dataset, query_mode, bool(source.full_res), int(labels))
    out_dir = Path(out_dir)

    def process(video: TapVidVideo) -> VideoScore:
        start = time.perf_counter()
        queries = video_queries(video, query_mode, labels=labels)
        prediction = predict(video, queries)
        score = score_video(source.dataset, video, queries, prediction, full_res=source.full_res,
                            extra={"seconds": round(time.perf_counter() - start, 3)})
        save_predictions(predictions_path(out_dir, video.name), queries, video.to_eval_px(prediction.points_xy),
                         prediction)
        return score

    keys = [(*group, name) for name in (source.names() if names is None else names)]
    items = Items(keys, lambda todo: source.read(), lambda video: (*group, video.name), name=_video_name,
                  source=str(source.path), noun="videos")
    return (options or RunOptions()).run_items(TAPVID_RECORDS, out_dir, items, process, _RunningMeans())
