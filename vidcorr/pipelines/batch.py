"""Track many videos into one run folder: sharded over processes and GPUs, resumable across and within videos.

:func:`track_many` (or :func:`prepare_batch`, no model, then :func:`run_batch`) tracks every video of a batch
(paths, folders, globs, a list file: ``vidcorr.batch_inputs.expand_inputs``) into its own folder of a run
folder::

    <out>/run.json                                the batch's identity (model, config, frames, points...)
    <out>/tracked.jsonl                           completion records (tracked-shard<i>of<n>.jsonl per shard)
    <out>/batch.json                              every video: status, frames, points, output folder
    <out>/<name>/                                 one video's outputs, as ``vidcorr track`` writes them
    <out>/.staging/<name>.checkpoint              a video in progress: its checkpoint
    <out>/.staging/<name>.claim                   a video in progress: which process works on it

It is a kind of run of ``vidcorr.runs`` (:data:`VIDEO_RECORDS`): identity, shards, durable records and resume
are those of every run folder. Per video, in order: the video is tracked with a checkpoint in the staging
area (``vidcorr.resume``: a kill resumes within the video, with identical tracks), its outputs are written
as ``vidcorr track`` writes them (``vidcorr.outputs``: staged, then renamed to ``<out>/<name>`` whole,
replacing an earlier unrecorded run there), the completion record is appended (fsynced), and only then is
the checkpoint removed. A video is finished exactly when a record says so.

Shards take videos balanced by frame count (``runs.shards.shard_of`` weighted by frames); a video's tracks depend on
that video alone, so shards merged equal one run. A video that cannot be decoded, or whose points do not fit
it, is recorded as failed with its one-line reason and the batch goes on; a re-run retries failed videos
and skips done ones. ``batch.json`` is rebuilt from every shard's records after each video (atomically),
so once the last process finishes it describes the whole batch.

Several processes may share one run folder, sharded or not: each claims a video before working on it
(``vidcorr.runs.claims``: a file created exclusively, released once the video's record is written) and leaves
a video claimed by another process, or recorded by one since it began, to that process. A claim whose process
died on this host, or that was not refreshed for ``runs.claims.DEFAULT_STALE_S`` seconds, is taken over. So
every video is tracked once and has one record, whichever processes run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr import memory
from vidcorr.config import Config, config_for
from vidcorr.errors import InputError, VidcorrError
from vidcorr.io.atomic import write_json
from vidcorr.io.names import BATCH_INDEX, EMBEDDINGS
from vidcorr.io.outputs import check_out_dir
from vidcorr.io.points import PointLabels, check_labels, points_for_videos
from vidcorr.io.video import open_video
from vidcorr.method.embeddings import Embeddings
from vidcorr.pipelines.options import TrackOptions
from vidcorr.runs.claims import CLAIM_SUFFIX, Claim, claim
from vidcorr.runs.folder import Items, RecordKind, RunProgress, check_setup, model_setup, read_setup, run_items
from vidcorr.runs.inputs import expand_inputs, output_names
from vidcorr.runs.outcome import DONE, FAILED, one_line, run_video
from vidcorr.runs.shards import Shard, resolve_shard, shard_of

STAGING_DIR = ".staging"
PENDING = "pending"
RECORD_FORMAT = "vidcorr-track-video"
SETUP_KIND = "vidcorr-track-batch"

PointsSpec = Any
"""Per-video queries: an (N, 3) array for every video, a function of a video's ``VideoInfo`` giving them, a
mapping video path -> (N, 3) array or `PointLabels`, or :class:`PerVideoPoints` (a points file with a ``video``
column: ``vidcorr.io.points.read_video_points_file``)."""


@dataclass(frozen=True)
class PerVideoPoints:
    """A points file's rows by the video they name, matched to the batch's videos once its inputs are expanded.

    Attributes:
        points: video as the file names it -> its points. base: the folder relative names resolve from.
    """

    points: Mapping[str, Any]
    base: Path


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class VideoRecord:
    """One video's record: its completion (``done``) or its failure (``failed``, with the one-line reason).

    Attributes:
        video: the video's absolute path (the key). name: its output folder under the run folder.
        status: ``done`` or ``failed``. frames: frames tracked (T). points: points tracked (N).
        error: the reason a video failed. seconds: wall time spent on it.
        tracks_sha256: digest of its points, visible and confidence (equal exactly when the tracks are).
        queries_sha256: digest of the points it was asked to track (its queries, or the embeddings).
    """

    video: str
    name: str
    status: str
    frames: int = 0
    points: int = 0
    error: str | None = None
    seconds: float = 0.0
    tracks_sha256: str | None = None
    queries_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": RECORD_FORMAT, "video": self.video, "name": self.name, "status": self.status,
                "frames": self.frames, "points": self.points, "error": self.error, "seconds": round(self.seconds, 3),
                "tracks_sha256": self.tracks_sha256, "queries_sha256": self.queries_sha256}

    @staticmethod
    def from_json(obj: Any) -> VideoRecord:
        if not isinstance(obj, dict) or obj.get("kind") != RECORD_FORMAT:
            raise ValueError("not a batch video record")
        if obj.get("status") not in (DONE, FAILED) or not isinstance(obj.get("video"), str) \
                or not isinstance(obj.get("name"), str):
            raise ValueError("a batch video record needs video, name and status done|failed")
        return VideoRecord(obj["video"], obj["name"], obj["status"], int(obj.get("frames") or 0),
                           int(obj.get("points") or 0), obj.get("error"), float(obj.get("seconds") or 0.0),
                           obj.get("tracks_sha256"), obj.get("queries_sha256"))


VIDEO_RECORDS: RecordKind[VideoRecord] = RecordKind(
    prefix="tracked", noun="batch record line", to_json=VideoRecord.to_json, from_json=VideoRecord.from_json,
    key=lambda r: r.video, fingerprint=lambda r: (r.status, r.tracks_sha256, r.error),
    describe=lambda r: f"video {r.video!r}")
"""The batch's kind of run: one completion (or failure) record per video."""


def tracks_digest(tracks: Any) -> str:
    """sha256 of a Tracks' points, visible and confidence, as saved (equal exactly when they are)."""
    digest = hashlib.sha256()
    for array in (tracks.points, tracks.visible, tracks.confidence):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def queries_digest(queries: PointLabels | None, embeddings: Embeddings | None = None) -> str:
    """sha256 of what a video is asked to track: its points' labels, or the embeddings' digest. Points with one
    label each digest as their (N, 3) queries (as batches recorded them before labels)."""
    if embeddings is not None:
        # torch, loaded only when this runs: the module stays importable without the model stack
        from vidcorr.method.checkpoint import embeddings_digest

        return embeddings_digest(embeddings)
    assert queries is not None
    if int(queries.counts.max(initial=1)) == 1:
        return hashlib.sha256(np.ascontiguousarray(queries.queries, dtype=np.float64).tobytes()).hexdigest()
    ids, rows = queries.rows()
    return hashlib.sha256(json.dumps([ids, rows.tolist()]).encode()).hexdigest()


def read_records(out: str | os.PathLike) -> dict[str, VideoRecord]:
    """video -> its record in the run folder: a ``done`` record wherever one is, else the last failure."""
    found: dict[str, VideoRecord] = {}
    for path in VIDEO_RECORDS.results_files(out):
        for record in VIDEO_RECORDS.read(path):
            old = found.get(record.video)
            if old is None or old.status != DONE:
                found[record.video] = record
    return found


# --------------------------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs, beside what it tracks.

    Attributes:
        list_file: more videos, one path per line (``--list``); cwd: where relative inputs resolve (None: here).
        shard: ``--shard`` (index, count), composed with a SLURM array and the launcher's ranks in `env`
            (torchrun, srun; see ``runs.shards.resolve_shard``; None: ``os.environ``).
        checkpoint_every: frames between checkpoints within a video (None: about one minute of work).
    """

    list_file: str | os.PathLike | None = None
    cwd: str | os.PathLike | None = None
    shard: tuple[int, int] | None = None
    env: Mapping[str, str] | None = None
    checkpoint_every: int | None = None



@dataclass(frozen=True)
class BatchVideo:
    """One video of a batch, checked (see :func:`prepare_batch`).

    Attributes:
        path: the video. name: its output folder's name. frames: its frame count (0 if unreadable).
        tracked: the frames it will track. queries: its points' labels (checked), or None with embeddings.
        error: why it cannot be tracked (unreadable, points outside it), or None.
        reuse: its earlier output whose embeddings its unchanged points keep (``prepare_track``'s reuse), or None.
    """

    path: Path
    name: str
    frames: int
    tracked: int
    queries: PointLabels | None
    error: str | None = None
    reuse: Path | None = None

    @property
    def key(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class BatchJob:
    """A checked batch, ready for a model (see :func:`prepare_batch`).

    Attributes:
        out: the run folder. videos: every video of the batch, in order. shard: this process's shard.
        mine: the videos of this shard (balanced by frame count), in batch order.
        cfg: the config. embeddings: fitted embeddings tracked on every video (global search), or None.
        options: the track options shared by every video.
        checkpoint_every: frames between checkpoints within a video (None: about a minute of work).
    """

    out: Path
    videos: list[BatchVideo]
    shard: Shard
    mine: list[BatchVideo]
    cfg: Config
    embeddings: Embeddings | None
    options: TrackOptions = TrackOptions()
    checkpoint_every: int | None = None
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    reuse: Path | None = None

    @property
    def pending(self) -> list[BatchVideo]:
        """This shard's videos not done yet (failed ones are retried)."""
        done = {v for v, r in read_records(self.out).items() if r.status == DONE}
        return [v for v in self.mine if v.key not in done]

    @property
    def points_to_fit(self) -> int:
        """Points fitted over this shard's pending videos (0 with embeddings)."""
        return 0 if self.embeddings is not None else sum(v.queries.num_points for v in self.pending
                                                         if v.queries is not None)

    def setup(self, ldm: Any) -> dict[str, Any]:
        """What determines every video's outputs: written to ``run.json`` and compared on resume.

        Which videos are in the batch, how it is sharded and how often it checkpoints are left out, so a batch
        may be extended, re-sharded or resumed with another interval; each video's points are checked against
        its record (see :func:`run_batch`).
        """

        options = dataclasses.asdict(self.options)
        options["visibility_threshold"] = float(options["visibility_threshold"])
        return {
            "kind": SETUP_KIND,
            # The whole config, as each video's checkpoint records it (micro-batching can change rounding).
            **model_setup(ldm, self.cfg, execution_fields=True),
            "points": "embeddings" if self.embeddings is not None else "queries",
            "embeddings": None if self.embeddings is None else queries_digest(None, self.embeddings),
            **options,
            **({} if self.reuse is None else {"reuse": str(self.reuse)}),
        }


def _video_labels(points: PointsSpec, video: Path, info: Any) -> PointLabels:
    given = points[video] if isinstance(points, Mapping) else points(info) if callable(points) else points
    return check_labels(given, info.num_frames, info.size)


def _check_video(path: Path, name: str, points: PointsSpec | None, options: TrackOptions) -> BatchVideo:
    """Open `path` (header only), count its frames and check its queries; a problem is the video's error."""
    try:
        reader = open_video(path, fps=options.fps)
    except VidcorrError as exc:
        return BatchVideo(path, name, 0, 0, None, one_line(exc))
    try:
        info = reader.info
        frames = int(info.num_frames)
        try:
            tracked = len(reader.frame_indices(options.start, options.end, options.stride))
            queries = None if points is None else _video_labels(points, path, info)
        except VidcorrError as exc:
            return BatchVideo(path, name, frames, 0, None, one_line(exc))
        return BatchVideo(path, name, frames, tracked, queries)
    finally:
        reader.close()


def prepare_batch(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                  points: PointsSpec | None = None, embeddings: str | os.PathLike | Embeddings | None = None,
                  preset: str | None = None, overrides: Mapping[str, Any] | None = None,
                  options: TrackOptions | None = None, run: BatchOptions | None = None,
                  reuse: str | os.PathLike | None = None,
                  model: str | None = None) -> BatchJob:
    """Check a batch before any model work: its videos, their names, this process's shard, the points.

    Args:
        inputs: the videos (paths, folders, globs; see ``runs.inputs.expand_inputs``).
        out: the run folder.
        points: what to fit on each video (see :data:`PointsSpec`); exactly one of `points` and `embeddings`.
        embeddings: fitted embeddings (or their file) searched globally on each video.
        preset, overrides: the config, as ``prepare_track`` takes them.
        options: the track options of every video (:class:`TrackOptions`; None: the defaults).
        run: where the inputs resolve, this process's shard and the checkpoint interval (:class:`BatchOptions`).
        reuse: an earlier batch's folder: each video it tracked keeps the embeddings of its points whose labels did
            not change (``prepare_track``'s reuse); a video it did not track is fitted afresh.
        model: the model's name, for the memory check of each of this shard's videos before it loads (as
            ``prepare_track`` takes it).

    Raises:
        InputError: no videos, a bad option, points for videos not in the batch, an unusable run folder, a video
            of this shard whose run cannot fit in memory (one line with the estimate).
            A video that cannot be read, or whose points do not fit it, is not an error here: it is recorded
            as failed when its shard gets to it.
    """

    if (points is None) == (embeddings is None):
        raise InputError("give either embeddings or points to fit for every video, not both" if points is not None
                         else "give the points to track (queries) or fitted embeddings")
    options, run = options or TrackOptions(), run or BatchOptions()
    options.check_same_video(embeddings is not None)
    every = run.checkpoint_every
    if every is not None and (isinstance(every, bool) or every < 1):
        raise InputError(f"--checkpoint-every must be a whole number of frames >= 1, got {every!r}")
    videos = expand_inputs(inputs, run.list_file, cwd=run.cwd)
    if isinstance(points, PerVideoPoints):
        points = points_for_videos(points.points, videos, base=points.base)
    out = check_out_dir(out)
    if out.is_dir():
        read_setup(out)  # a damaged run.json fails here, before any work
    previous = {r.video: r.name for r in read_records(out).values()} if out.is_dir() else {}
    names = output_names(videos, previous)
    if isinstance(points, Mapping):
        missing = [v for v in videos if v not in points]
        if missing:
            raise InputError(f"no points for video {str(missing[0])!r}")
    loaded = None
    if embeddings is not None:
        loaded = embeddings if isinstance(embeddings, Embeddings) else Embeddings.load(embeddings)
    earlier = {} if reuse is None else earlier_outputs(reuse, points is not None)
    fitted = loaded.config if loaded is not None else (  # with reuse, the earlier fits' config
        Embeddings.load(next(iter(earlier.values())) / EMBEDDINGS).config if earlier else None)
    cfg = config_for(preset, overrides, fitted=fitted)
    checked = [dataclasses.replace(_check_video(v, names[v], points, options), reuse=earlier.get(str(v)))
               for v in videos]
    placement = resolve_shard(run.shard, run.env)
    mine = shard_of(checked, placement.index, placement.count, weights=[v.frames for v in checked])
    floor = memory.model_floor(model)
    for video in mine:
        labels = video.queries
        num_points = labels.num_points if labels is not None else loaded.num_points if loaded is not None else 0
        if video.error is None and num_points:
            options.check_memory(num_points, video.tracked, cfg, floor, fit=loaded is None, video=str(video.path),
                                 labels=1 if labels is None else int(max(labels.counts)),
                                 query_frames=0 if labels is None else len({int(t) for rows in labels.labels
                                                                            for t in rows[:, 0]}))
    return BatchJob(out, checked, placement, mine, cfg, loaded, options, every, preset,
                    {k: v for k, v in (overrides or {}).items() if v is not None},
                    None if reuse is None else Path(reuse))


def earlier_outputs(folder: str | os.PathLike, with_points: bool) -> dict[str, Path]:
    """An earlier batch's finished videos: video (its key, the absolute path) -> its output folder.

    Raises:
        InputError: not a batch's folder, or reuse without points to fit.
    """
    folder = Path(folder)
    if not with_points:
        raise InputError("--reuse needs the points to track (--points-file), not --embeddings")
    try:
        entries = json.loads((folder / BATCH_INDEX).read_text(encoding="utf-8"))["entries"]
        return {str(e["video"]): folder / str(e["output"]) for e in entries
                if e.get("status") == DONE and e.get("output") and (folder / str(e["output"]) / EMBEDDINGS).is_file()}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"--reuse {str(folder)!r} is not a batch's folder (no readable {BATCH_INDEX})") from None


# --------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands (this process's shard), passed to the progress callback.

    Called once before the first video, after each video and after each tracked frame.

    Attributes:
        done, total: videos of this shard finished (done or failed; earlier runs' included) / in it.
        resumed: videos done by earlier runs (skipped). failed: videos failed in this run.
        frames_done, frames_total: frames of this shard tracked (finished videos count all theirs) / in it.
        video: the video being tracked (its output name), or None between videos.
        video_done, video_total: frames located in it so far / to locate (the tracker's sweeps).
        finished: the video just finished, on the call after it (its name), else None; status: its status.
        seconds: its wall time.
    """

    done: int
    total: int
    resumed: int
    failed: int
    frames_done: float
    frames_total: int
    video: str | None = None
    video_done: int = 0
    video_total: int = 0
    finished: str | None = None
    status: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """What :func:`run_batch` did.

    Attributes:
        out: the run folder; index_path: its ``batch.json``; results_path: this shard's records file.
        shard: (index, count). total: videos of this shard. skipped: done before this run.
        done: tracked by this run. failed: (video, one-line reason) of this shard's failures in this run.
        records: this shard's records, in batch order.
        elsewhere: videos of this shard that another process was tracking (or finished meanwhile), left to it.
    """

    out: Path
    index_path: Path
    results_path: Path
    shard: tuple[int, int]
    total: int
    skipped: int
    done: int
    failed: list[tuple[str, str]]
    records: list[VideoRecord]
    elsewhere: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def checkpoint_path(out: Path, name: str) -> Path:
    """The checkpoint file of the video named `name` in run folder `out`."""
    return out / STAGING_DIR / f"{name}.checkpoint"


def claim_path(out: Path, name: str) -> Path:
    """The claim file of the video named `name` in run folder `out` (``vidcorr.runs.claims``)."""
    return out / STAGING_DIR / f"{name}{CLAIM_SUFFIX}"


def write_index(job: BatchJob) -> Path:
    """Rebuild ``batch.json`` from every records file of the run folder and the batch's videos (atomically).

    Lists the batch's videos in order, then videos of earlier runs into the same folder that this batch no
    longer names; each with its status (``done``, ``failed``, ``pending``), frames, points and output folder.
    """
    records = read_records(job.out)
    entries = []
    for video in job.videos:
        record = records.pop(video.key, None)
        entries.append(_entry(video.key, video.name, record, video))
    for record in records.values():
        entries.append(_entry(record.video, record.name, record, None))
    counts = {status: sum(e["status"] == status for e in entries) for status in (DONE, FAILED, PENDING)}
    return write_json(job.out / BATCH_INDEX, {"format": "vidcorr-batch-index", "version": 1, "videos": len(entries),
                                              **counts, "entries": entries})


def _entry(video: str, name: str, record: VideoRecord | None, batch: BatchVideo | None) -> dict[str, Any]:
    if record is not None:
        return {"video": video, "status": record.status, "output": record.name if record.status == DONE else None,
                "name": record.name, "frames": record.frames, "points": record.points, "error": record.error,
                "seconds": record.seconds}
    assert batch is not None
    points = 0 if batch.queries is None else batch.queries.num_points
    return {"video": video, "status": PENDING, "output": None, "name": name, "frames": batch.tracked,
            "points": points, "error": None, "seconds": None}


def _check_points_unchanged(job: BatchJob) -> None:
    """Refuse, in one line, a batch whose points for a video differ from those it was (being) tracked with."""
    # torch, loaded only when this runs: the module stays importable without the model stack
    from vidcorr.method.checkpoint import embeddings_digest, load_checkpoint

    records = read_records(job.out)
    embeddings_sha256 = None if job.embeddings is None else embeddings_digest(job.embeddings)
    for video in job.mine:  # other shards check their own videos
        if video.error is not None:
            continue
        now = embeddings_sha256 or queries_digest(video.queries)
        record = records.get(video.key)
        if record is not None and record.status == DONE and record.queries_sha256 != now:
            raise InputError(f"{job.out} holds video {video.key!r} tracked with other points; resume it with the "
                             "same points or choose another --out")
        checkpoint = checkpoint_path(job.out, video.name)
        if video.reuse is not None:
            continue  # its checkpoint records the embeddings with reuse: the video's own run compares them
        if record is None or record.status != DONE:
            try:
                loaded = load_checkpoint(checkpoint)
            except InputError:
                continue  # a damaged checkpoint: the video's own run reports it
            if loaded is None:
                continue
            identity = loaded[0]
            then = identity.get("embeddings") if job.embeddings is not None else identity.get("queries")
            wanted = (now if job.embeddings is not None
                      else np.asarray(video.queries.queries if video.queries is not None else [],
                                      dtype=np.float64).tolist())
            if then != wanted:
                raise InputError(f"{checkpoint} was written for other points of video {video.key!r}; resume with "
                                 "the same points, or delete it to track this video from the start")


def run_batch(ldm: Any, job: BatchJob, *, progress: Callable[[BatchProgress], None] | None = None,
              stage: Callable[[str, int, int], None] | None = None, fsync: bool = True) -> BatchOutcome:
    """Track this shard's pending videos of `job` into its run folder, resuming what is there.

    Args:
        ldm: the model. job: from :func:`prepare_batch`.
        progress: see :class:`BatchProgress` (a KeyboardInterrupt raised there stops the batch with every
            finished video saved).
        stage: ``stage(name, done, total)`` inside a video (``fit``, ``locate``, ``track``).
        fsync: fsync each record (off for tests).

    Raises:
        InputError: the run folder holds a batch made with other settings (``run.json``) or other points for a
            video (one line naming what differs). A video's own failure is recorded instead; anything else (a
            bug, out of memory) propagates, the videos finished before staying saved.
    """
    # The model stack (torch) loads when a batch runs, not when the CLI prepares or describes one.
    from vidcorr.method.checkpoint import embeddings_digest

    check_setup(job.out, job.setup(ldm))
    _check_points_unchanged(job)
    batch = _BatchRun(ldm, job, progress, stage,
                      None if job.embeddings is None else embeddings_digest(job.embeddings))
    batch.clean_finished()
    try:
        items = Items([v.key for v in job.videos], lambda todo: iter(job.mine), lambda v: v.key, source="the batch",
                      noun="videos", mine=[v.key for v in job.mine])
        outcome = run_items(VIDEO_RECORDS, job.out, items, batch.process, shard=(job.shard.index, job.shard.count),
                            progress=batch.after, fsync=fsync, redo=lambda r: r.status == FAILED)
    finally:
        batch.close()
    return BatchOutcome(job.out, job.out / BATCH_INDEX, outcome.results_path, outcome.shard, outcome.total,
                        outcome.resumed, outcome.evaluated - len(batch.failures), batch.failures, outcome.records,
                        [str(key) for key in outcome.elsewhere])


@dataclass
class _BatchRun:
    """One process's pass over its shard of a batch: each video tracked and recorded, progress reported."""

    ldm: Any
    job: BatchJob
    progress: Callable[[BatchProgress], None] | None
    stage: Callable[[str, int, int], None] | None
    embeddings_sha256: str | None
    failures: list[tuple[str, str]] = field(default_factory=list)
    latest: dict[str, VideoRecord] = field(default_factory=dict)
    seen: dict[str, VideoRecord] = field(default_factory=dict)  # the records when this run began
    claims: dict[str, Claim] = field(default_factory=dict)  # the video this process works on, claimed
    done: int = 0
    resumed: int = 0
    finished_frames: float = 0.0
    video: str | None = None  # the video being tracked, its frames located so far / to locate, tracked
    video_done: int = 0
    video_total: int = 0
    video_tracked: int = 0

    @property
    def frames_of(self) -> dict[str, int]:
        return {v.key: v.tracked for v in self.job.mine}

    def clean_finished(self) -> None:
        """Remove the checkpoints of videos recorded as done (a kill between a record and its clean-up)."""
        from vidcorr.method.checkpoint import remove_checkpoint  # torch: see run_batch

        records = read_records(self.job.out)
        self.seen = records
        for video in self.job.mine:
            record = records.get(video.key)
            if record is not None and record.status == DONE:
                remove_checkpoint(checkpoint_path(self.job.out, video.name))

    def emit(self, **extra: Any) -> None:
        if self.progress is None:
            return
        share = self.video_tracked * self.video_done / self.video_total if self.video_total else 0.0
        self.progress(BatchProgress(self.done, len(self.job.mine), self.resumed, len(self.failures),
                                    self.finished_frames + share, sum(self.frames_of.values()), self.video,
                                    self.video_done, self.video_total, **extra))

    def on_stage(self, name: str, done: int, total: int) -> None:
        for held in self.claims.values():
            held.refresh()
        if self.stage is not None:
            self.stage(name, done, total)
        if name == "track":
            self.video_done, self.video_total = done, total
            self.emit()

    def process(self, video: BatchVideo) -> VideoRecord | None:
        """Track one video into its folder (or record why it cannot be): its completion record; None where another
        process has claimed the video, or recorded it since this run began (it is left to that process)."""
        held = claim(claim_path(self.job.out, video.name))
        if held is None:
            return None
        if read_records(self.job.out).get(video.key) != self.seen.get(video.key):
            held.release()
            return None
        self.claims[video.key] = held
        try:
            record = self._record(video) if video.error is None else \
                VideoRecord(video.key, video.name, FAILED, error=video.error)
        except BaseException:
            self.claims.pop(video.key).release()
            raise
        self.latest[video.key] = record
        return record

    def _record(self, video: BatchVideo) -> VideoRecord:
        from vidcorr.method.checkpoint import remove_checkpoint  # torch: see run_batch
        from vidcorr.pipelines.track import prepare_track, run_track

        job, digest = self.job, self.embeddings_sha256 or queries_digest(video.queries)
        self.video, self.video_done, self.video_total, self.video_tracked = video.name, 0, 0, video.tracked
        self.emit()
        checkpoint = checkpoint_path(job.out, video.name)

        def work(path: Path) -> Any:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            # Staged and renamed into place whole (io/outputs); an earlier run there that no record marks
            # as done (killed between its rename and its record) is replaced.
            track_job = prepare_track(path, job.out / video.name, queries=video.queries, embeddings=job.embeddings,
                                      preset=job.preset, overrides=job.overrides, options=job.options,
                                      overwrite=True, reuse=video.reuse)
            try:
                return run_track(self.ldm, track_job, progress=self.on_stage, checkpoint=checkpoint,
                                 checkpoint_every=job.checkpoint_every)
            finally:
                track_job.reader.close()

        outcome = run_video(video.path, work)
        if outcome.failed:
            remove_checkpoint(checkpoint)
            return VideoRecord(video.key, video.name, FAILED, video.tracked, 0 if video.queries is None
                               else video.queries.num_points, outcome.error, outcome.seconds, queries_sha256=digest)
        assert outcome.result is not None
        tracks = outcome.result.tracks
        return VideoRecord(video.key, video.name, DONE, int(tracks.num_frames), int(tracks.num_points), None,
                           outcome.seconds, tracks_digest(tracks), digest)

    def after(self, update: RunProgress) -> None:
        """After each video (and once before the first): the checkpoint removed once recorded, the index."""
        from vidcorr.method.checkpoint import remove_checkpoint  # torch: see run_batch

        self.done, self.resumed = update.done, update.resumed
        frames_of = self.frames_of
        if update.item is None:
            self.finished_frames = float(sum(frames_of[k] for k, r in read_records(self.job.out).items()
                                             if k in frames_of and r.status == DONE))
            self.emit()
            return
        record = self.latest[update.item]
        if record.status == DONE:  # the completion record is durable: the checkpoint may go
            remove_checkpoint(checkpoint_path(self.job.out, record.name))
        else:
            self.failures.append((record.video, record.error or ""))
        self.claims.pop(record.video).release()  # recorded: no process takes the video again
        self.finished_frames += frames_of.get(record.video, 0)
        self.video, self.video_done, self.video_total, self.video_tracked = None, 0, 0, 0
        write_index(self.job)
        self.emit(finished=record.name, status=record.status, seconds=update.seconds)

    def close(self) -> None:
        """The index, whatever happened; the staging area once no shard has work left in it."""
        index = write_index(self.job)
        if not json.loads(index.read_text())[PENDING]:
            try:
                (self.job.out / STAGING_DIR).rmdir()  # only once empty
            except OSError:
                pass


def track_many(ldm: Any, inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
               progress: Callable[[BatchProgress], None] | None = None,
               stage: Callable[[str, int, int], None] | None = None, **options: Any) -> BatchOutcome:
    """Track every video of `inputs` into run folder `out`: :func:`prepare_batch` then :func:`run_batch`.

    `options` are those of :func:`prepare_batch` (``points`` or ``embeddings``, ``preset``, ``overrides``), the
    fields of :class:`TrackOptions` (``start``, ``stride``, ``keyframes``, ...) and of :class:`BatchOptions`
    (``list_file``, ``shard``, ``checkpoint_every``, ...). Re-running into the same `out` skips the videos done
    and resumes the one in progress where it stopped::

        outcome = vidcorr.track_many(ldm, ["clips/"], "labels", points=[[0, 60.5, 90.5]], preset="fast")
        outcome.done, outcome.skipped, outcome.failed    # batch.json lists every video and its folder
    """
    track_options, rest = TrackOptions.split(options)
    batch_fields = {f.name for f in dataclasses.fields(BatchOptions)}
    run = BatchOptions(**{k: v for k, v in rest.items() if k in batch_fields})
    job = prepare_batch(inputs, out, options=track_options, run=run,
                        **{k: v for k, v in rest.items() if k not in batch_fields})
    return run_batch(ldm, job, progress=progress, stage=stage)

