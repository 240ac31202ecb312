"""Video tracking: fit once on every point's labels, then locate on every other frame from the nearest label.

A point has one or more labels (t, x, y). Its embedding is fitted jointly on all of them (`fit_labels`; every
point of a call in one batch). Then every label is an anchor:

- On a labelled frame the point's track is its label: visible, confidence 1.
- Any other frame is tracked from the nearest label in time (on a tie, the earlier one), which "owns" it: frames
  after their owner are located in a forward sweep (ascending), frames before it in a backward sweep (descending),
  all points active on a frame x restarts batched. On the first frame a sweep locates from a label, the point's
  first crop is a random window keeping the label's position inside the crop margin; on each later frame of the
  same sweep and label, one keeping the point's position on the previous frame so located; each later crop one
  keeping the running argmax inside it, as in the seed. With one label per point this is the forward sweep after
  the query and the backward sweep before it.

Confidence per frame and point (documented rule, `CONFIDENCE_RULE`): the attention probability of the point's
token at the located pixel (restart- and layer-averaged, as `Location.confidence`), divided by the point's
reference attention, clipped to [0, 1]. The reference attention is the same quantity on the point's labelled
frames, measured at fit time: each label's frame is located as a tracked frame is (the first crop anchored at
the label) and its `Location.confidence`, the attention at the pixel located there, is taken; then the mean
over the point's labels. Both ends of the ratio are thus read at a located pixel, the way every frame is read:
re-locating a labelled frame gives 1, and a frame whose point is claimed as strongly as on the labelled frames
is visible. (The attention at the label's own pixel would be the wrong scale: a located pixel's attention is a
maximum over the frame, which is never below one pixel's, so the ratio would sit at 1 wherever the fit's peak
is a pixel off.) `visible = confidence >= visibility_threshold`, on the confidence as saved (float32): the rule
holds on the saved values, and a confidence equal to the threshold is visible.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import InputError
from vidcorr.io.images import frame_digest
from vidcorr.io.points import PointLabels, check_labels
from vidcorr.io.reader import VideoReader
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.method import checkpoint as resume
from vidcorr.method import streams
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress, fit_labels, precision_name
from vidcorr.method.locate import Location, locate
from vidcorr.method.model import LDM
from vidcorr.method.plan import prepare
from vidcorr.validate import check_fraction

CONFIDENCE_RULE = ("attention probability of the point's token at the located pixel (mean over restarts and "
                   "layers) divided by the same at the pixel located on each labelled frame (located from the label) "
                   "averaged over the point's labels, clipped to [0, 1]")

FrameCallback = Callable[[int, np.ndarray, Location], None]
"""on_frame(frame_index, point indices (M,), Location of those points on that frame)."""


def fit_queries(ldm: LDM, video: Any, queries: PointLabels | np.ndarray, cfg: Config | None = None,
                progress: Progress | None = None, point_ids: Sequence[int] | None = None) -> Embeddings:
    """Fit one embedding per point on every frame where it is labelled (`fit_labels`: the joint fit), all points
    in one batch.

    Args:
        ldm: the model.
        video: a path, a VideoReader, or a sequence of (H, W, 3) uint8 frames.
        queries: the points' labels (`PointLabels`), or (N, 3) float t, x, y: one label per point.
        cfg: the hyper-parameters (default ``Config()``).
        progress: ``progress(stage, done, total)``.
        point_ids: (N,) keys of the points' random streams (default 0..N-1), as in `vidcorr.fit`.

    Returns:
        Embeddings (N, R, 77, D) in point order with `labels` (and `frames`, `points`: the first labels) set, and
        in `extra` what identifies the labelled frames, ``frame_sha256`` (frame -> `frame_digest`, see
        `Embeddings.fitted_on`), and the confidence scale: ``label_ref_attention``, per point and label the
        attention at the pixel located on the label's frame when it is located from the label (its
        `Location.confidence`), and ``ref_attention``, per point the mean over its labels (see `CONFIDENCE_RULE`).
    """
    cfg = prepare(ldm, cfg)
    reader = open_video(video)
    info = reader.info
    labels = check_labels(queries, info.num_frames, info.size)
    ids = streams.point_ids(point_ids, labels.num_points)
    images = {t: reader.get_frame(t) for t in sorted({int(t) for rows in labels.labels for t in rows[:, 0]})}
    embeddings = fit_labels(ldm, images, labels, cfg, progress=progress, point_ids=ids)
    at_label = [np.zeros(len(rows)) for rows in labels.labels]
    for t, image in images.items():
        # The reference scale of confidence: each labelled frame located from its labels.
        owners = [(n, k) for n, rows in enumerate(labels.labels) for k in np.flatnonzero(rows[:, 0] == t)]
        idx = [n for n, _ in owners]
        ref = locate(ldm, image, embeddings.subset(idx), cfg, stream_key=t, point_ids=[ids[n] for n in idx],
                     anchors_xy=np.array([labels.labels[n][k, 1:] for n, k in owners]))
        for (n, k), confidence in zip(owners, ref.confidence, strict=True):
            at_label[n][k] = confidence
    embeddings.extra.update({"ref_attention": [float(np.mean(a)) for a in at_label],
                             "label_ref_attention": [[float(c) for c in a] for a in at_label],
                             "video_size": list(info.size), "video_frames": int(info.num_frames),
                             "frame_sha256": {str(t): frame_digest(image) for t, image in images.items()}})
    return embeddings


def track(ldm: LDM, video: Any, queries: PointLabels | np.ndarray | None = None, cfg: Config | None = None, *,
          embeddings: Embeddings | None = None, global_search: bool = False, start: int = 0,
          end: int | None = None, stride: int = 1, visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
          progress: Progress | None = None, on_frame: FrameCallback | None = None,
          return_maps: bool | Collection[int] = False, read_batch: int = 8,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          point_ids: Sequence[int] | None = None) -> Tracks:
    """Track points through `video`.

    The keyword options are the public API's; the work is done by :class:`_Tracker` in named steps: the
    checkpoint and the embeddings (fitted here unless given), the maps of frames passed before a
    checkpoint, the forward sweep, the backward sweep, the result.

    Args:
        ldm: the model.
        video: a path, a VideoReader, or a sequence of (H, W, 3) uint8 frames.
        queries: the points' labels (`PointLabels`: one or more t, x, y per point), or (N, 3) float t, x, y (one
            label per point), in the video's pixels; fitted here unless `embeddings` is given (then their labels
            are the anchors). See the module docstring for how labels anchor the track.
        cfg: the hyper-parameters (default: the embeddings' own).
        embeddings: fitted embeddings to track with instead of fitting.
        global_search: the embeddings come from another video, so no frame is a reference: every point is
            searched from the seed's corner crops on the first tracked frame and followed from there.
        start, end, stride: which frames are tracked.
        visibility_threshold: visible = confidence >= this.
        progress: ``progress(stage, done, total)`` for ``fit``, ``locate`` and ``track`` (frames).
        on_frame: ``on_frame(frame_index, point indices (M,), Location)`` after each located frame, with
            Location.maps on every frame (return_maps=True) or on the frames in return_maps (a collection
            of frame indices; maps cost memory traffic).
        read_batch: frames decoded at a time.
        checkpoint: a file to resume from and to save to (see `vidcorr.resume`): loaded if present (it must
            come from a run with the same settings, else InputError), then saved after fitting (the fitted
            embeddings beside it, so a resumed run never fits again), every `checkpoint_every` frames (None:
            about one minute of work at the measured rate) and once more when done. The result is identical,
            bit for bit, to an uninterrupted run's. Frames located before the checkpoint are not passed to
            on_frame again, except those in a `return_maps` collection: they are located once more from the
            recorded anchors (the same Location, maps included) and passed to on_frame before tracking goes
            on. The checkpoint is left in place when done (a re-run returns at once);
            `resume.remove_checkpoint` deletes it once the caller's outputs are written.
        checkpoint_every: frames between checkpoints (needs `checkpoint`).
        point_ids: (N,) keys of the points' random streams (default 0..N-1): give distinct ones to points of
            different videos that must not share draws (an evaluation keys them by video and query).

    Returns:
        Tracks: points float (T, N, 2) x, y pixels, visible bool (T, N), confidence (T, N) in [0, 1],
        queries (N, 3) t, x, y (each point's first label), frame_indices (T,), labels (every point's labels;
        None for a global search).
    """
    check_fraction(visibility_threshold, "visibility_threshold")
    if embeddings is None and queries is None:
        raise InputError("give the points to track (queries) or fitted embeddings")
    if checkpoint is None and checkpoint_every is not None:
        raise InputError("checkpoint_every needs a checkpoint file to save to")
    reader = open_video(video)
    settings = resume.TrackSettings(reader.frame_indices(start, end, stride), stride, visibility_threshold,
                                    global_search, point_ids)
    saver = None
    if checkpoint is not None:
        given = None if embeddings is not None or queries is None else check_labels(
            queries, reader.info.num_frames, reader.info.size)
        identity = resume.track_identity(
            ldm, cfg or (embeddings.config if embeddings is not None else Config()),
            resume.video_identity(video, reader), settings, labels=given, embeddings=embeddings)
        saver = resume.Checkpointer(checkpoint, identity, checkpoint_every)
    state = saver.load() if saver is not None else None
    if embeddings is None and state is not None and saver is not None:
        embeddings = saver.load_embeddings(state)
    if embeddings is None:
        embeddings = fit_queries(ldm, reader, queries, cfg, progress, point_ids)  # type: ignore[arg-type]
        if saver is not None:
            saver.save_embeddings(embeddings)
    tracker = _Tracker.start(ldm, reader, embeddings, cfg, settings, saver, state)
    tracker.replay(on_frame, return_maps)
    tracker.sweeps(stride, read_batch, on_frame, return_maps, progress)
    return tracker.result(visibility_threshold)


@dataclass
class _Tracker:
    """One tracking run's fixed inputs and its state, for the steps of :func:`track`."""

    ldm: LDM
    reader: VideoReader
    embeddings: Embeddings
    cfg: Config
    tracked: np.ndarray  # (T,) frame indices
    row_of: dict[int, int]  # frame index -> its row in the tracks
    global_search: bool
    ids: np.ndarray  # (N,) the points' stream keys
    query_t: np.ndarray  # (N,) int64, -1 under global search
    query_xy: np.ndarray  # (N, 2) float64
    labels: PointLabels | None  # every point's labels (None under global search)
    anchor_rows: list[np.ndarray]  # per point, (K, 3) t, x, y of its labels (the query "before the video" globally)
    steps: tuple[list[SweepStep], list[SweepStep]]  # the forward and the backward sweep
    ref_attention: np.ndarray  # (N,) the confidence scale
    state: resume.TrackState
    saver: resume.Checkpointer | None

    @classmethod
    def start(cls, ldm: LDM, reader: VideoReader, embeddings: Embeddings, cfg: Config | None,
              settings: resume.TrackSettings, saver: resume.Checkpointer | None,
              state: resume.TrackState | None) -> _Tracker:
        """Check the embeddings against the model and the video, and set up (or restore) the state."""
        tracked, global_search = settings.tracked, settings.global_search
        cfg = prepare(ldm, cfg or embeddings.config)
        embeddings.check_compatible(ldm, cfg)
        if embeddings.frames is None and not global_search:
            raise InputError("these embeddings were fitted on an image, not a video frame: track with global search")
        n = embeddings.num_points
        info = reader.info
        query_t = np.full(n, -1, dtype=np.int64) if global_search else np.asarray(embeddings.frames, dtype=np.int64)
        query_xy = np.asarray(embeddings.points, dtype=np.float64)
        # Global search: no frame of this video is labelled; each point is followed from frame to frame after a
        # label "before the video" (t = -1) whose position is unknown (the seed's corner crops).
        labels = None if global_search else check_labels(embeddings.point_labels(), info.num_frames, info.size)
        anchor_rows = [np.column_stack([query_t[p:p + 1], query_xy[p:p + 1]]) for p in range(n)] \
            if labels is None else list(labels.labels)
        scale = np.asarray(embeddings.extra.get("ref_attention", [1.0] * n), dtype=np.float64)
        row_of = {int(f): i for i, f in enumerate(tracked)}
        if state is None:
            digest = "" if saver is None else (saver.identity["embeddings"] or resume.embeddings_digest(embeddings))
            state = _initial_state(digest, anchor_rows, query_xy, row_of, len(tracked), global_search)
            if saver is not None:
                saver.save(state)  # the embeddings are kept: a kill from here on never fits again
        return cls(ldm, reader, embeddings, cfg, tracked, row_of, global_search,
                   np.asarray(streams.point_ids(settings.point_ids, n), dtype=object), query_t, query_xy, labels,
                   anchor_rows, sweeps([rows[:, 0] for rows in anchor_rows], tracked), np.maximum(scale, 1e-6),
                   state, saver)

    def locate(self, f: int, image: np.ndarray, active: np.ndarray, anchors: np.ndarray | None,
               maps: bool) -> Location:
        """The `active` points on frame `f` (their crops around `anchors`; the seed's corners where None)."""
        return locate(self.ldm, image, self.embeddings.subset(active), self.cfg, stream_key=f,
                      point_ids=self.ids[active].tolist(), anchors_xy=anchors, return_maps=maps)

    def replay(self, on_frame: FrameCallback | None, return_maps: bool | Collection[int]) -> None:
        """Pass again the maps of frames located before a checkpoint: the same inputs give the same Location."""
        if on_frame is None or not self.state.replay:
            return
        for f in sorted(f for f in self.state.replay if _maps_on(return_maps, f)):
            active, anchors = self.state.replay[f]
            on_frame(f, active, self.locate(f, self.reader.get_frame(f), active, anchors, True))

    def sweeps(self, stride: int, read_batch: int, on_frame: FrameCallback | None,
               return_maps: bool | Collection[int], progress: Progress | None) -> None:
        """The forward sweep, then the backward one (see the module docstring for which frames each holds)."""
        state = self.state
        total = len(self.steps[0]) + len(self.steps[1])
        if progress is not None and state.done:
            progress("track", state.done, total)
        if self.saver is not None:
            self.saver.start_clock()
        for sweep, steps in zip((resume.FORWARD, resume.BACKWARD), self.steps, strict=True):
            if sweep < state.sweep:
                continue
            if sweep > state.sweep:
                state.start_sweep(sweep, self.query_xy, self.global_search)
            todo = steps[state.position:]
            frames = _frames_in_order(self.reader, [s.frame for s in todo], stride, read_batch)
            for step, (f, image) in zip(todo, frames, strict=True):
                loc = self.step(step, image, return_maps)
                if on_frame is not None:
                    on_frame(f, step.points, loc)
                if self.saver is not None:
                    self.saver.frame_done(state)
                if progress is not None:
                    progress("track", state.done, total)
        if not state.finished:
            state.sweep = resume.FINISHED
            if self.saver is not None:
                self.saver.save(state)

    def step(self, step: SweepStep, image: np.ndarray, return_maps: bool | Collection[int]) -> Location:
        """Locate the points of one sweep step on its frame and record them in the state."""
        state, f, active = self.state, step.frame, step.points
        if self.labels is None:
            anchors = state.previous_xy[active] if state.previous_known[active].all() else None
        else:  # a sweep's first frame from a label starts at the label, later ones at the previous position
            from_label = np.array([self.anchor_rows[p][k, 1:] for p, k in zip(active, step.labels, strict=True)])
            anchors = np.where(step.fresh[:, None], from_label, state.previous_xy[active])
        loc = self.locate(f, image, active, anchors, _maps_on(return_maps, f))
        row = self.row_of[f]
        state.points[row, active] = loc.points
        state.confidence[row, active] = np.minimum(loc.confidence / self.ref_attention[active], 1.0)
        state.previous_xy[active] = loc.points
        state.previous_known[active] = True
        if _maps_on(return_maps, f) and not isinstance(return_maps, bool):
            state.replay[f] = (active, anchors)
        state.position += 1
        state.done += 1
        return loc

    def result(self, visibility_threshold: float) -> Tracks:
        """The tracks, with what made them in ``meta``."""
        embeddings, confidence = self.embeddings, self.state.confidence
        # Fit steps each point skipped (non-finite fp16 gradients), summed over restarts; None if unknown.
        skipped = None if embeddings.skipped_steps is None else embeddings.skipped_steps.tolist()
        info = self.reader.info
        saved = confidence.astype(np.float32)  # the rule holds on the values the tracks keep
        return Tracks(points=self.state.points, visible=saved.astype(np.float64) >= visibility_threshold,
                      confidence=saved,
                      queries=np.column_stack([self.query_t, self.query_xy]), frame_indices=self.tracked,
                      fps=info.fps, size=info.size,
                      meta={"model": self.ldm.model_id, "autocast": self.ldm.autocast_name,
                            "precision": precision_name(self.ldm), "fit_precision": embeddings.precision,
                            "skipped_steps": skipped, "config": self.cfg.to_dict(),
                            "confidence_rule": CONFIDENCE_RULE, "visibility_threshold": visibility_threshold,
                            "global_search": self.global_search}, labels=self.labels)


def _maps_on(return_maps: bool | Collection[int], f: int) -> bool:
    return return_maps if isinstance(return_maps, bool) else f in return_maps


def _initial_state(embeddings_sha256: str, labels: list[np.ndarray], query_xy: np.ndarray, row_of: dict[int, int],
                   num_rows: int, global_search: bool) -> resume.TrackState:
    """Before the first frame: labelled rows hold the labels (confidence 1), the forward sweep is next."""
    n = len(query_xy)
    points = np.zeros((num_rows, n, 2), dtype=np.float64)
    confidence = np.zeros((num_rows, n), dtype=np.float64)
    for p, rows in enumerate(labels):
        for t, x, y in rows:
            if int(t) in row_of:
                points[row_of[int(t)], p] = (x, y)
                confidence[row_of[int(t)], p] = 1.0
    state = resume.TrackState(sweep=resume.FORWARD, position=0, done=0, previous_xy=query_xy,
                              previous_known=np.zeros(n, bool), points=points, confidence=confidence,
                              embeddings_sha256=embeddings_sha256)
    state.start_sweep(resume.FORWARD, query_xy, global_search)
    return state


@dataclass(frozen=True)
class SweepStep:
    """One frame of a sweep: which points are located there, from which label, and where their crops start.

    frame: the video frame. points: (M,) the points it locates. labels: (M,) for each, the index (into the point's
    labels) of the label it is tracked from. fresh: (M,) bool, True where this is the sweep's first frame from that
    label (the first crop's anchor is the label), False where the point's position on the sweep's previous frame
    from the same label is.
    """

    frame: int
    points: np.ndarray
    labels: np.ndarray
    fresh: np.ndarray


def owning_labels(label_frames: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(F,) int64: for each frame, the index of the label it is tracked from, -1 on a labelled frame.

    The owner is the label nearest in time; on a tie, the earlier one. `label_frames` (K,) ascending.
    """
    t = np.asarray(label_frames, dtype=np.int64)
    f = np.asarray(frames, dtype=np.int64)
    after = np.searchsorted(t, f)  # the first label at or after each frame
    later = np.minimum(after, len(t) - 1)
    earlier = np.maximum(after - 1, 0)
    take_earlier = (after == len(t)) | ((after > 0) & (f - t[earlier] <= t[later] - f))
    owner = np.where(take_earlier, earlier, later)
    owner[t[later] == f] = -1
    return owner


def sweeps(label_frames: Sequence[np.ndarray], tracked: np.ndarray) -> tuple[list[SweepStep], list[SweepStep]]:
    """The forward sweep (ascending) and the backward sweep (descending) over the tracked frames.

    label_frames: per point, its labels' frames (ascending). A tracked frame that is not one of a point's labels
    is located in the forward sweep when its owning label (`owning_labels`) is earlier, else in the backward one.
    """
    frames = np.asarray(tracked, dtype=np.int64)
    owners = np.stack([owning_labels(t, frames) for t in label_frames], axis=1)  # (F, N)
    owner_t = np.stack([np.asarray(t, dtype=np.int64)[np.maximum(owners[:, p], 0)]
                        for p, t in enumerate(label_frames)], axis=1)
    located = owners >= 0
    out = []
    for forward in (True, False):
        mine = located & ((owner_t < frames[:, None]) if forward else (owner_t > frames[:, None]))
        last = np.full(len(label_frames), -1, dtype=np.int64)
        steps = []
        for row in (range(len(frames)) if forward else range(len(frames) - 1, -1, -1)):
            points = np.flatnonzero(mine[row])
            if len(points) == 0:
                continue
            labels = owners[row, points]
            steps.append(SweepStep(int(frames[row]), points, labels, labels != last[points]))
            last[points] = labels
        out.append(steps)
    return out[0], out[1]


def _frames_in_order(reader: VideoReader, frames: list[int], stride: int, read_batch: int):
    """Yield (frame index, image) for `frames` (ascending or descending, on one stride grid, gaps allowed: a
    sweep skips frames no point is located on from its side), decoding runs of consecutive grid frames
    `read_batch` at a time so memory stays flat."""
    if not frames:
        return
    descending = len(frames) > 1 and frames[0] > frames[-1]
    blocks: list[list[int]] = []
    for f in sorted(frames):
        if blocks and f - blocks[-1][-1] == stride and len(blocks[-1]) < read_batch:
            blocks[-1].append(f)
        else:
            blocks.append([f])
    for block in (reversed(blocks) if descending else blocks):
        batch = next(iter(reader.iter_frames(start=block[0], end=block[-1] + 1, stride=stride,
                                              batch_size=len(block))))
        pairs = list(zip(batch.indices.tolist(), batch.frames, strict=True))
        yield from (reversed(pairs) if descending else pairs)
