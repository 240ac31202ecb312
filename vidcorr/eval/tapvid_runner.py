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

A results line (format version 1)::

    {"v": 1, "benchmark": "tapvid", "dataset": "davis", "video": "bear", "query_mode": "first",
     "full_res": false, "num_frames": 82, "num_tracks": 21, "num_queries": 21, "source_size_hw": [480, 854],
     "metrics": {"occlusion_accuracy": 0.9, "pts_within_1": 0.2, ..., "average_pts_within_thresh": 0.6},
     "predictions_sha256": "...", "extra": {"seconds": 12.5}}

Metrics are fractions in [0, 1] (tapnet's scale; reports show percent); a metric with nothing to score (NaN
in tapnet) is written as null. ``predictions_sha256`` fingerprints the predicted points and occlusion, so
merging two files that disagree about a video is caught.

Resuming, sharding and launchers work as in ``vidcorr.eval.runner`` (whose helpers this module reuses):
videos already in ANY results file of the folder are skipped; a half-written last line is cut off and its
video redone; shard ``i`` of ``n`` takes the videos at positions i, i + n, ... of the dataset's order (after
``videos`` and ``limit``); each video's predictions depend on that video alone (every random stream is keyed
by the seed, the query's index and the frame), so shards merged equal one unsharded run.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.atomic import atomic_path
from vidcorr.config import Config
from vidcorr.errors import DataError, InputError
from vidcorr.eval.results import JsonLinesWriter, shard_of
from vidcorr.eval.runner import EXECUTION_FIELDS, check_setup
from vidcorr.eval.tapvid import (
    DATASETS,
    QUERY_STRIDE,
    TapVidQueries,
    TapVidVideo,
    kinetics_shards,
    load_tapvid_pickle,
    read_tapvid,
    video_queries,
)
from vidcorr.eval.tapvid_metrics import compute_tapvid_metrics, mean_over_videos, metric_names, normalize_query_mode
from vidcorr.fit import Progress
from vidcorr.track import DEFAULT_VISIBILITY_THRESHOLD, track

FORMAT_VERSION = 1
BENCHMARK = "tapvid"
RESULTS_GLOB = "tapvid*.jsonl"
PREDICTIONS_DIR = "predictions"

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


def predict_video(ldm: Any, video: TapVidVideo, queries: TapVidQueries, cfg: Config, *,
                  visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
                  progress: Progress | None = None) -> TapVidPrediction:
    """The method on one video: :func:`vidcorr.track` of every query over every frame.

    Each query is fitted on its own frame (queries sharing a frame in one batch) and followed forward and
    backward, from random streams keyed by (video name, query index); predicted occlusion is ``not visible``
    (confidence below ``visibility_threshold``). Query points are clipped into the frame first
    (0 <= x <= W, 0 <= y <= H): a few Kinetics annotations lie half a pixel outside it. A video without
    queries gets empty predictions.
    """
    num_frames = video.num_frames
    if queries.num_queries == 0:
        return TapVidPrediction(np.zeros((0, num_frames, 2)), np.zeros((0, num_frames), dtype=bool),
                                np.zeros((0, num_frames)))
    from vidcorr.streams import item_point_ids

    height, width = video.size_hw
    query_points = queries.query_points.copy()
    query_points[:, 1:] = np.clip(query_points[:, 1:], 0.0, [float(width), float(height)])
    tracks = track(ldm, video.frames, query_points, cfg, visibility_threshold=visibility_threshold,
                   progress=progress, point_ids=item_point_ids(video.name, queries.num_queries))
    return TapVidPrediction(
        points_xy=np.asarray(tracks.points, dtype=np.float64).transpose(1, 0, 2),
        occluded=~np.asarray(tracks.visible, dtype=bool).T,
        confidence=np.asarray(tracks.confidence, dtype=np.float64).T,
    )


# --------------------------------------------------------------------------------------------- scores


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

    @property
    def group(self) -> tuple[str, str, bool]:
        """(dataset, query_mode, full_res): scores in one group may be averaged together."""
        return self.dataset, self.query_mode, self.full_res


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
    with ``queries.target_points``; ``full_res`` says how ``video`` was read and is recorded in the score.

    Raises:
        ValueError: predictions whose shapes do not match the queries and frames.
    """
    _check_prediction(prediction, queries, video.num_frames)
    pred_eval = video.to_eval_px(prediction.points_xy)
    occluded = np.asarray(prediction.occluded, dtype=bool)
    metrics = compute_tapvid_metrics(queries.query_points, queries.occluded, queries.target_points, occluded,
                                     pred_eval, queries.query_mode)
    return VideoScore(
        dataset=dataset,
        video=video.name,
        query_mode=queries.query_mode,
        full_res=bool(full_res),
        metrics=metrics,
        num_frames=video.num_frames,
        num_tracks=video.num_points,
        num_queries=queries.num_queries,
        source_size_hw=tuple(video.source_size_hw),
        predictions_sha256=predictions_digest(pred_eval, occluded),
        extra=dict(extra or {}),
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
        )
    except KeyError as exc:
        raise ValueError(f"expected key {exc.args[0]!r}") from None
    except (TypeError, AttributeError, IndexError) as exc:
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------------------------- files


def _parse_line(raw: bytes) -> VideoScore:
    return score_from_json(json.loads(raw.decode("utf-8")))


class VideoResultsWriter(JsonLinesWriter[VideoScore]):
    """Append video scores to a TAP-Vid results file, one durable line per video (see JsonLinesWriter)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        super().__init__(path, score_to_json, _parse_line, fsync=fsync)


def read_video_results(path: str | os.PathLike) -> list[VideoScore]:
    """All video scores of a TAP-Vid results file, in file order.

    An unparseable last line (a run killed mid-write) is dropped; blank lines are skipped.

    Raises:
        DataError: the file does not exist, or a line other than the last is not a TAP-Vid results line (the
            message names the file and the 1-based line number).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: results file not found")
    lines = [(n, raw) for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1) if raw.strip()]
    scores = []
    for position, (line_no, raw) in enumerate(lines):
        try:
            scores.append(_parse_line(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            if position == len(lines) - 1:
                break
            raise DataError(f"{path}:{line_no}: not a TAP-Vid results line ({exc})") from None
    return scores


def is_tapvid_results_file(path: str | os.PathLike) -> bool:
    """Whether a results file holds TAP-Vid lines: judged by its first line, or by its name while empty."""
    path = Path(path)
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    break
                return isinstance(obj, dict) and obj.get("benchmark") == BENCHMARK
    return path.name.startswith(BENCHMARK)


def video_results_path(out_dir: str | os.PathLike, shard: tuple[int, int]) -> Path:
    """``tapvid.jsonl`` for one shard of one, else ``tapvid-shard<i>of<n>.jsonl`` (zero-padded)."""
    index, count = shard
    if count == 1:
        return Path(out_dir) / f"{BENCHMARK}.jsonl"
    width = len(str(count - 1))
    return Path(out_dir) / f"{BENCHMARK}-shard{index:0{width}d}of{count}.jsonl"


def video_results_files(out_dir: str | os.PathLike) -> list[Path]:
    """Every TAP-Vid results file of a run folder, sorted."""
    return sorted(p for p in Path(out_dir).glob(RESULTS_GLOB) if p.is_file())


def merge_video_results(paths: Iterable[str | os.PathLike]) -> list[VideoScore]:
    """The video scores of several results files (shards, resumed runs), one per (dataset, query mode,
    resolution, video), sorted by those.

    A video found twice with the same predictions is kept once.

    Raises:
        InputError: no paths.
        DataError: a missing or corrupt file, or one video with two different predictions (the message names
            the video and both files).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no results files to merge")
    merged: dict[tuple[str, str, bool, str], tuple[VideoScore, Path]] = {}
    for path in paths:
        for score in read_video_results(path):
            key = (*score.group, score.video)
            if key not in merged:
                merged[key] = (score, path)
                continue
            first, first_path = merged[key]
            if first.predictions_sha256 != score.predictions_sha256:
                raise DataError(f"TAP-Vid video {score.video!r} ({score.dataset}, query {score.query_mode}) has "
                                f"different predictions in {first_path} and {path}")
    return [merged[key][0] for key in sorted(merged)]


def predictions_path(out_dir: str | os.PathLike, video: str) -> Path:
    """``<out>/predictions/<video>.npz``, the name made safe for any file system."""
    return Path(out_dir) / PREDICTIONS_DIR / f"{re.sub(r'[^A-Za-z0-9._-]', '_', video)}.npz"


def save_predictions(path: Path, queries: TapVidQueries, points_eval_xy: np.ndarray,
                     prediction: TapVidPrediction) -> Path:
    """Write one video's predictions atomically.

    Keys: ``query_points`` float64 (Q, 3) t, x, y in pixels of the tracked frames; ``track_index`` int64 (Q,);
    ``points`` float64 (Q, T, 2) predicted x, y in 256x256 evaluation pixels; ``occluded`` bool (Q, T);
    ``confidence`` float32 (Q, T) (absent when the predictor has none). Loadable without pickle.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"query_points": queries.query_points, "track_index": queries.track_index,
              "points": np.asarray(points_eval_xy, dtype=np.float64), "occluded": np.asarray(prediction.occluded)}
    if prediction.confidence is not None:
        arrays["confidence"] = np.asarray(prediction.confidence, dtype=np.float32)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


# --------------------------------------------------------------------------------------------- setup


def tapvid_setup(source: TapVidSource, query_mode: str, ldm: Any, cfg: Config, *,
                 visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> dict[str, Any]:
    """What determines a video's results line: written to ``run.json`` and compared on resume.

    Which videos are evaluated (``videos``, ``limit``, shards) and where the data lies are left out, so a
    run may be extended or resumed with other filters; execution-only config fields are left out too.
    """
    from vidcorr import __version__

    return {
        "benchmark": BENCHMARK,
        "dataset": source.dataset,
        "query_mode": normalize_query_mode(query_mode),
        "query_stride": QUERY_STRIDE,
        "full_res": bool(source.full_res),
        "visibility_threshold": float(visibility_threshold),
        "model": ldm.model_id,
        "model_fingerprint": ldm.fingerprint(),
        "dtype": str(ldm.dtype).removeprefix("torch."),
        "autocast": ldm.autocast_name,
        "config": {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_FIELDS},
        "vidcorr_version": __version__,
    }


# --------------------------------------------------------------------------------------------- the loop


SUMMARY_METRICS: tuple[str, ...] = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")
"""The three numbers papers report: AJ, delta_avg (<δ^x_avg), OA."""


@dataclass(frozen=True)
class TapVidProgress:
    """Where a run stands, passed to the progress callback after each video (and once before the first).

    Attributes:
        done: videos of this shard finished, those finished by earlier runs included.
        total: videos of this shard.
        resumed: videos finished before this run started.
        video: the video just finished; None on the first call.
        seconds: wall time of that video; None on the first call.
        running: :data:`SUMMARY_METRICS` -> mean over the finished videos of this shard, fractions in [0, 1];
            empty while none is finished.
    """

    done: int
    total: int
    resumed: int
    video: str | None
    seconds: float | None
    running: dict[str, float]


@dataclass(frozen=True)
class TapVidRun:
    """The outcome of :func:`run_tapvid`.

    Attributes:
        results_path: this shard's results file.
        shard: (index, count) this process evaluated.
        total: videos of this shard; resumed: finished before the run; evaluated: computed by this run.
        scores: the scores of this shard's videos, in the dataset's order (resumed ones included).
    """

    results_path: Path
    shard: tuple[int, int]
    total: int
    resumed: int
    evaluated: int
    scores: list[VideoScore] = field(default_factory=list)


def _finished_scores(out_dir: Path, group: tuple[str, str, bool]) -> dict[str, VideoScore]:
    """Scores of ``group`` already in the folder's results files, first occurrence per video."""
    found: dict[str, VideoScore] = {}
    for path in video_results_files(out_dir):
        for score in read_video_results(path):
            if score.group == group:
                found.setdefault(score.video, score)
    return found


def pending_videos(names: Sequence[str], out_dir: str | os.PathLike, group: tuple[str, str, bool],
                   shard: tuple[int, int] = (0, 1)) -> list[str]:
    """The videos of shard ``shard`` of ``names`` that no results file in ``out_dir`` holds yet for ``group``
    = (dataset, query mode, full_res)."""
    dataset, query_mode, full_res = group
    done = _finished_scores(Path(out_dir), (dataset, normalize_query_mode(query_mode), bool(full_res)))
    return [name for name in shard_of(list(names), *shard) if name not in done]


def run_tapvid(
    source: TapVidSource,
    out_dir: str | os.PathLike,
    predict: TapVidPredictor,
    *,
    query_mode: str,
    shard: tuple[int, int] = (0, 1),
    setup: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    progress: Callable[[TapVidProgress], None] | None = None,
    fsync: bool = True,
) -> TapVidRun:
    """Evaluate shard ``shard`` = (index, count) of ``source``'s videos into ``out_dir``, resuming what is there.

    predict: called as predict(video, queries) for each video still to do (see :func:`predict_video`; tests
        pass their own).
    query_mode: ``first`` (or ``query_first``) or ``strided``.
    setup: written to ``run.json``, or compared with the one there (``vidcorr.eval.runner.check_setup``).
    names: ``source.names()`` when the caller has it already.
    progress: called once before the first video and after each video (a KeyboardInterrupt raised there stops
        the run with every finished video saved).

    Videos are read one at a time; reading stops after this shard's last pending video. Raises whatever
    ``predict`` raises; the videos finished before stay saved.
    """
    query_mode = normalize_query_mode(query_mode)
    group = (source.dataset, query_mode, bool(source.full_res))
    out_dir = Path(out_dir)
    mine = shard_of(list(source.names() if names is None else names), *shard)
    if setup is not None:
        check_setup(out_dir, setup)
    path = video_results_path(out_dir, shard)
    scores: dict[str, VideoScore] = {}
    with VideoResultsWriter(path, fsync=fsync) as writer:
        finished = _finished_scores(out_dir, group)  # after the writer repaired this shard's own tail
        scores.update({name: finished[name] for name in mine if name in finished})
        resumed = len(scores)

        def report(video: str | None, seconds: float | None) -> None:
            if progress is None:
                return
            running: dict[str, float] = {}
            if scores:
                mean = mean_over_videos([s.metrics for s in scores.values()])
                running = {name: mean[name] for name in SUMMARY_METRICS}
            progress(TapVidProgress(len(scores), len(mine), resumed, video, seconds, running))

        report(None, None)
        todo = {name for name in mine if name not in scores}
        videos = source.read() if todo else iter(())
        for video in videos:
            if video.name not in todo:
                continue
            start = time.perf_counter()
            queries = video_queries(video, query_mode)
            prediction = predict(video, queries)
            seconds = time.perf_counter() - start
            score = score_video(source.dataset, video, queries, prediction, full_res=source.full_res,
                                extra={"seconds": round(seconds, 3)})
            save_predictions(predictions_path(out_dir, video.name), queries, video.to_eval_px(prediction.points_xy),
                             prediction)
            writer.write(score)
            scores[video.name] = score
            todo.discard(video.name)
            report(video.name, seconds)
            if not todo:
                break
    if todo:
        raise DataError(f"{source.path}: videos {', '.join(sorted(todo))} were listed but not read")
    ordered = [scores[name] for name in mine if name in scores]
    return TapVidRun(path, tuple(shard), len(mine), resumed, len(ordered) - resumed, ordered)
