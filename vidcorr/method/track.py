"""Video tracking: fit once per reference frame, then locate on every frame forward and backward.

For each query (t, x, y) the embedding is fitted on frame t (queries sharing a frame are fitted in
one batch). Each point is then located on every tracked frame after t (a forward sweep) and before
t (a backward sweep, in reverse order), all active points x restarts batched per frame. On each
frame the first crop of a point is a random window that keeps its position on the previous frame processed
inside the crop margin, and each later crop one that keeps the running argmax inside it, as in the seed; at
its own query frame a point is the query.

Confidence per frame and point (documented rule): the attention probability of the point's token at
the located pixel (restart- and layer-averaged, as `Location.confidence`), divided by the same
quantity on the reference frame at fit time, clipped to [0, 1]. 1 means "claimed as strongly as the
query point itself"; `visible = confidence >= visibility_threshold`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import InputError
from vidcorr.io.points import check_queries
from vidcorr.io.reader import VideoReader
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.method import checkpoint as resume
from vidcorr.method import streams
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress, fit, precision_name
from vidcorr.method.locate import Location, locate
from vidcorr.method.model import LDM
from vidcorr.method.plan import prepare
from vidcorr.validate import check_fraction

CONFIDENCE_RULE = ("attention probability of the point's token at the located pixel (mean over restarts and "
                   "layers) divided by the same on the reference frame, clipped to [0, 1]")

FrameCallback = Callable[[int, np.ndarray, Location], None]
"""on_frame(frame_index, point indices (M,), Location of those points on that frame)."""


def fit_queries(ldm: LDM, video: Any, queries: np.ndarray, cfg: Config | None = None,
                progress: Progress | None = None, point_ids: Sequence[int] | None = None) -> Embeddings:
    """Fit an embedding per query (t, x, y) on its own frame; queries sharing a frame in one batch.

    Args:
        ldm: the model.
        video: a path, a VideoReader, or a sequence of (H, W, 3) uint8 frames.
        queries: (N, 3) float t, x, y in the video's pixels.
        cfg: the hyper-parameters (default ``Config()``).
        progress: ``progress(stage, done, total)``.
        point_ids: (N,) keys of the queries' random streams (default 0..N-1), as in `vidcorr.fit`.

    Returns:
        Embeddings (N, R, 77, D) in query order with `frames` (N,) set, and in `extra["ref_attention"]` the
        attention each point's embedding gives its query point on its own frame (the confidence scale).
    """
    cfg = prepare(ldm, cfg)
    reader = open_video(video)
    info = reader.info
    q = check_queries(queries, info.num_frames, info.size)
    frames = q[:, 0].astype(np.int64)
    ids = streams.point_ids(point_ids, len(q))
    parts: dict[int, tuple[np.ndarray, Embeddings, np.ndarray]] = {}
    for t in np.unique(frames):
        idx = np.flatnonzero(frames == t)
        image = reader.get_frame(int(t))
        emb = fit(ldm, image, q[idx, 1:], cfg, progress=progress, point_ids=[ids[i] for i in idx],
                  frames=frames[idx])
        # The reference scale of confidence: the query frame located from the query points.
        ref = locate(ldm, image, emb, cfg, stream_key=int(t), point_ids=[ids[i] for i in idx],
                     anchors_xy=q[idx, 1:])
        parts[int(t)] = (idx, emb, ref.confidence)
    order = np.concatenate([p[0] for p in parts.values()])
    inverse = np.argsort(order)
    tensors = torch.cat([p[1].tensors for p in parts.values()])[torch.from_numpy(inverse)]
    ref_attention = np.concatenate([p[2] for p in parts.values()])[inverse]
    skipped = np.concatenate([p[1].skipped_steps for p in parts.values()])[inverse]
    return Embeddings(tensors, q[:, 1:].copy(), info.size, cfg, ldm.model_id, ldm.fingerprint(), frames.copy(),
                      {"ref_attention": [float(a) for a in ref_attention], "video_size": list(info.size),
                       "video_frames": int(info.num_frames)}, precision=next(iter(parts.values()))[1].precision,
                      skipped_steps=skipped)


def track(ldm: LDM, video: Any, queries: np.ndarray | None = None, cfg: Config | None = None, *,
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
        queries: (N, 3) float t, x, y in the video's pixels; fitted here unless `embeddings` is given
            (then their frames and points are the queries).
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
        checkpoint: a file to resume from and to save to (see `vidcorr.method.checkpoint`): loaded if present
            (it must come from a run with the same settings, else InputError), then saved after fitting (the
            fitted embeddings beside it, so a resumed run never fits again), every `checkpoint_every` frames
            (None: about one minute of work at the measured rate) and once more when done. The result is
            identical, bit for bit, to an uninterrupted run's. Frames located before the checkpoint are not
            passed to on_frame again, except those in a `return_maps` collection: they are located once more
            from the recorded anchors (the same Location, maps included) and passed to on_frame before
            tracking goes on. The checkpoint is left in place when done (a re-run returns at once);
            `checkpoint.remove_checkpoint` deletes it once the caller's outputs are written.
        checkpoint_every: frames between checkpoints (needs `checkpoint`).
        point_ids: (N,) keys of the points' random streams (default 0..N-1): give distinct ones to points of
            different videos that must not share draws (an evaluation keys them by video and query).

    Returns:
        Tracks: points float (T, N, 2) x, y pixels, visible bool (T, N), confidence (T, N) in [0, 1],
        queries (N, 3) t, x, y, frame_indices (T,).
    """
    check_fraction(visibility_threshold, "visibility_threshold")
    if embeddings is None and queries is None:
        raise InputError("give the points to track (queries) or fitted embeddings")
    if checkpoint is None and checkpoint_every is not None:
        raise InputError("checkpoint_every needs a checkpoint file to save to")
    reader = open_video(video)
    tracked = reader.frame_indices(start, end, stride)
    saver = None
    if checkpoint is not None:
        given = None if embeddings is not None or queries is None else check_queries(
            queries, reader.info.num_frames, reader.info.size)
        identity = resume.track_identity(
            ldm, cfg or (embeddings.config if embeddings is not None else Config()),
            resume.video_identity(video, reader), tracked, stride, visibility_threshold=visibility_threshold,
            global_search=global_search, queries=given, embeddings=embeddings, point_ids=point_ids)
        saver = resume.Checkpointer(checkpoint, identity, checkpoint_every)
    state = saver.load() if saver is not None else None
    if embeddings is None and state is not None and saver is not None:
        embeddings = saver.load_embeddings(state)
    if embeddings is None:
        embeddings = fit_queries(ldm, reader, queries, cfg, progress, point_ids)  # type: ignore[arg-type]
        if saver is not None:
            saver.save_embeddings(embeddings)
    tracker = _Tracker.start(ldm, reader, embeddings, cfg, tracked, global_search, point_ids, saver, state)
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
    ref_attention: np.ndarray  # (N,) the confidence scale
    state: resume.TrackState
    saver: resume.Checkpointer | None

    @classmethod
    def start(cls, ldm: LDM, reader: VideoReader, embeddings: Embeddings, cfg: Config | None, tracked: np.ndarray,
              global_search: bool, point_ids: Sequence[int] | None, saver: resume.Checkpointer | None,
              state: resume.TrackState | None) -> _Tracker:
        """Check the embeddings against the model and the video, and set up (or restore) the state."""
        cfg = prepare(ldm, cfg or embeddings.config)
        embeddings.check_compatible(ldm, cfg)
        if embeddings.frames is None and not global_search:
            raise InputError("these embeddings were fitted on an image, not a video frame: track with global search")
        n = embeddings.num_points
        info = reader.info
        query_t = np.full(n, -1, dtype=np.int64) if global_search else np.asarray(embeddings.frames, dtype=np.int64)
        query_xy = np.asarray(embeddings.points, dtype=np.float64)
        if not global_search:
            check_queries(np.column_stack([query_t, query_xy]), info.num_frames, info.size)
        scale = np.asarray(embeddings.extra.get("ref_attention", [1.0] * n), dtype=np.float64)
        row_of = {int(f): i for i, f in enumerate(tracked)}
        if state is None:
            digest = "" if saver is None else (saver.identity["embeddings"] or resume.embeddings_digest(embeddings))
            state = _initial_state(digest, query_t, query_xy, row_of, len(tracked), global_search)
            if saver is not None:
                saver.save(state)  # the embeddings are kept: a kill from here on never fits again
        return cls(ldm, reader, embeddings, cfg, tracked, row_of, global_search,
                   np.asarray(streams.point_ids(point_ids, n), dtype=object), query_t, query_xy,
                   np.maximum(scale, 1e-6), state, saver)

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
        """The forward sweep (frames after some query frame), then the backward one (before some), each frame's
        first crops anchored at the point's position on the frame processed before it."""
        state = self.state
        forward = [int(f) for f in self.tracked if np.any(self.query_t < f)]
        backward = [int(f) for f in self.tracked[::-1] if np.any(self.query_t > f)]
        total = len(forward) + len(backward)
        if progress is not None and state.done:
            progress("track", state.done, total)
        if self.saver is not None:
            self.saver.start_clock()
        for sweep, frame_list in ((resume.FORWARD, forward), (resume.BACKWARD, backward)):
            if sweep < state.sweep:
                continue
            if sweep > state.sweep:
                state.start_sweep(sweep, self.query_xy, self.global_search)
            for f, image in _frames_in_order(self.reader, frame_list[state.position:], stride, read_batch):
                loc, active = self.step(sweep, f, image, return_maps)
                if on_frame is not None:
                    on_frame(f, active, loc)
                if self.saver is not None:
                    self.saver.frame_done(state)
                if progress is not None:
                    progress("track", state.done, total)
        if not state.finished:
            state.sweep = resume.FINISHED
            if self.saver is not None:
                self.saver.save(state)

    def step(self, sweep: int, f: int, image: np.ndarray,
             return_maps: bool | Collection[int]) -> tuple[Location, np.ndarray]:
        """Locate frame `f` of `sweep` and record it in the state; (its Location, the points located)."""
        state = self.state
        active = np.flatnonzero(self.query_t < f) if sweep == resume.FORWARD else np.flatnonzero(self.query_t > f)
        anchors = state.previous_xy[active] if state.previous_known[active].all() else None
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
        return loc, active

    def result(self, visibility_threshold: float) -> Tracks:
        """The tracks, with what made them in ``meta``."""
        embeddings, confidence = self.embeddings, self.state.confidence
        # Fit steps each point skipped (non-finite fp16 gradients), summed over restarts; None if unknown.
        skipped = None if embeddings.skipped_steps is None else embeddings.skipped_steps.tolist()
        info = self.reader.info
        return Tracks(points=self.state.points, visible=confidence >= visibility_threshold, confidence=confidence,
                      queries=np.column_stack([self.query_t, self.query_xy]), frame_indices=self.tracked,
                      fps=info.fps, size=info.size,
                      meta={"model": self.ldm.model_id, "autocast": self.ldm.autocast_name,
                            "precision": precision_name(self.ldm), "fit_precision": embeddings.precision,
                            "skipped_steps": skipped, "config": self.cfg.to_dict(),
                            "confidence_rule": CONFIDENCE_RULE, "visibility_threshold": visibility_threshold,
                            "global_search": self.global_search})


def _maps_on(return_maps: bool | Collection[int], f: int) -> bool:
    return return_maps if isinstance(return_maps, bool) else f in return_maps


def _initial_state(embeddings_sha256: str, query_t: np.ndarray, query_xy: np.ndarray, row_of: dict[int, int],
                   num_rows: int, global_search: bool) -> resume.TrackState:
    """Before the first frame: query rows hold the queries (confidence 1), the forward sweep is next."""
    n = len(query_xy)
    points = np.zeros((num_rows, n, 2), dtype=np.float64)
    confidence = np.zeros((num_rows, n), dtype=np.float64)
    for p in range(n):
        if int(query_t[p]) in row_of:
            points[row_of[int(query_t[p])], p] = query_xy[p]
            confidence[row_of[int(query_t[p])], p] = 1.0
    state = resume.TrackState(sweep=resume.FORWARD, position=0, done=0, previous_xy=query_xy,
                              previous_known=np.zeros(n, bool), points=points, confidence=confidence,
                              embeddings_sha256=embeddings_sha256)
    state.start_sweep(resume.FORWARD, query_xy, global_search)
    return state


def _frames_in_order(reader: VideoReader, frames: list[int], stride: int, read_batch: int):
    """Yield (frame index, image) for `frames` (ascending or descending, on one stride grid),
    decoding `read_batch` frames at a time so memory stays flat."""
    if not frames:
        return
    descending = len(frames) > 1 and frames[0] > frames[-1]
    ordered = sorted(frames)
    blocks = [ordered[i:i + read_batch] for i in range(0, len(ordered), read_batch)]
    for block in (reversed(blocks) if descending else blocks):
        batch = next(iter(reader.iter_frames(start=block[0], end=block[-1] + 1, stride=stride,
                                              batch_size=len(block))))
        pairs = list(zip(batch.indices.tolist(), batch.frames, strict=True))
        yield from (reversed(pairs) if descending else pairs)
