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
from typing import Any

import numpy as np

from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import InputError
from vidcorr.io.points import PointLabels
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
                   "layers) divided by the same on the reference frame, clipped to [0, 1]")

FrameCallback = Callable[[int, np.ndarray, Location], None]
"""on_frame(frame_index, point indices (M,), Location of those points on that frame)."""


def check_queries(queries: np.ndarray | Sequence, num_frames: int, size_wh: tuple[int, int]) -> np.ndarray:
    """Validate (N, 3) t, x, y queries against a video; float64 copy."""
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 3 or q.shape[0] == 0:
        raise InputError(f"queries must be a non-empty (N, 3) array of t, x, y, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise InputError("queries must be finite numbers")
    width, height = size_wh
    for i, (t, x, y) in enumerate(q):
        if t != int(t) or not 0 <= t < num_frames:
            raise InputError(f"query {i} is on frame {t:g}, outside the video (frames 0..{num_frames - 1})")
        if not (0 <= x <= width and 0 <= y <= height):
            raise InputError(f"query {i} ({x:g}, {y:g}) is outside the frame ({width}x{height} pixels)")
    return q


def check_labels(labels: PointLabels | np.ndarray | Sequence, num_frames: int, size_wh: tuple[int, int]) -> PointLabels:
    """Validate points' labels against a video: `PointLabels`, or (N, 3) t, x, y queries (one label per point,
    checked by `check_queries`, ids "0".."N-1")."""
    if not isinstance(labels, PointLabels):
        return PointLabels.from_queries(check_queries(labels, num_frames, size_wh))
    if labels.num_points == 0:
        raise InputError("give at least one point to track")
    width, height = size_wh
    for point_id, rows in zip(labels.ids, labels.labels, strict=True):
        if not np.all(np.isfinite(rows)):
            raise InputError(f"point {point_id}: labels must be finite numbers")
        for t, x, y in rows:
            if t != int(t) or not 0 <= t < num_frames:
                raise InputError(f"point {point_id} has a label on frame {t:g}, outside the video "
                                 f"(frames 0..{num_frames - 1})")
            if not (0 <= x <= width and 0 <= y <= height):
                raise InputError(f"point {point_id}: label ({x:g}, {y:g}) on frame {int(t)} is outside the frame "
                                 f"({width}x{height} pixels)")
    return labels


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
        the confidence scale in `extra`: ``label_ref_attention``, per point and label the attention the point's
        embedding gives its label when located on the label's frame from there, and ``ref_attention``, per point
        the mean over its labels (see `CONFIDENCE_RULE`).
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
                             "video_size": list(info.size), "video_frames": int(info.num_frames)})
    return embeddings


def track(ldm: LDM, video: Any, queries: np.ndarray | None = None, cfg: Config | None = None, *,
          embeddings: Embeddings | None = None, global_search: bool = False, start: int = 0,
          end: int | None = None, stride: int = 1, visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
          progress: Progress | None = None, on_frame: FrameCallback | None = None,
          return_maps: bool | Collection[int] = False, read_batch: int = 8,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          point_ids: Sequence[int] | None = None) -> Tracks:
    """Track points through `video`.

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
        queries (N, 3) t, x, y, frame_indices (T,).
    """
    check_fraction(visibility_threshold, "visibility_threshold")
    reader = open_video(video)
    info = reader.info
    tracked = reader.frame_indices(start, end, stride)
    if embeddings is None and queries is None:
        raise InputError("give the points to track (queries) or fitted embeddings")
    if checkpoint is None and checkpoint_every is not None:
        raise InputError("checkpoint_every needs a checkpoint file to save to")
    saver, state = None, None
    if checkpoint is not None:
        fitted_cfg = cfg or (embeddings.config if embeddings is not None else Config())
        given_queries = None
        if embeddings is None:
            assert queries is not None  # checked above
            given_queries = check_queries(queries, info.num_frames, info.size)
        identity = resume.track_identity(ldm, fitted_cfg, resume.video_identity(video, reader), tracked, stride,
                                         visibility_threshold=visibility_threshold, global_search=global_search,
                                         queries=given_queries, embeddings=embeddings, point_ids=point_ids)
        saver = resume.Checkpointer(checkpoint, identity, checkpoint_every)
        state = saver.load()
        if state is not None and embeddings is None:
            embeddings = saver.load_embeddings(state)
    if embeddings is None:
        assert queries is not None  # checked above
        embeddings = fit_queries(ldm, reader, queries, cfg, progress, point_ids)
        if saver is not None:
            saver.save_embeddings(embeddings)
    cfg = prepare(ldm, cfg or embeddings.config)
    embeddings.check_compatible(ldm, cfg)
    if embeddings.frames is None and not global_search:
        raise InputError("these embeddings were fitted on an image, not a video frame: track with global search")
    n = embeddings.num_points
    ids = np.asarray(streams.point_ids(point_ids, n), dtype=object)
    query_t = np.full(n, -1, dtype=np.int64) if global_search else np.asarray(embeddings.frames, dtype=np.int64)
    query_xy = np.asarray(embeddings.points, dtype=np.float64)
    if not global_search:
        check_queries(np.column_stack([query_t, query_xy]), info.num_frames, info.size)
    ref_attention = np.maximum(np.asarray(embeddings.extra.get("ref_attention", [1.0] * n), dtype=np.float64), 1e-6)

    row_of = {int(f): i for i, f in enumerate(tracked)}
    if state is None:
        digest = "" if saver is None else (saver.identity["embeddings"] or resume.embeddings_digest(embeddings))
        state = _initial_state(digest, query_t, query_xy, row_of, len(tracked), global_search)
        if saver is not None:
            saver.save(state)  # the embeddings are kept: a kill from here on never fits again
    maps_on = (lambda f: return_maps) if isinstance(return_maps, bool) else (lambda f: f in return_maps)

    def located(f: int, image: np.ndarray, active: np.ndarray, anchors: np.ndarray | None) -> Location:
        return locate(ldm, image, embeddings.subset(active), cfg, stream_key=f, point_ids=ids[active].tolist(),
                      anchors_xy=anchors, return_maps=maps_on(f))

    if on_frame is not None and state.replay:
        # Maps of frames passed before the checkpoint: the same inputs give the same Location.
        for f in sorted(f for f in state.replay if maps_on(f)):
            active, anchors = state.replay[f]
            on_frame(f, active, located(f, reader.get_frame(f), active, anchors))

    forward = [int(f) for f in tracked if np.any(query_t < f)]
    backward = [int(f) for f in tracked[::-1] if np.any(query_t > f)]
    total = len(forward) + len(backward)
    if progress is not None and state.done:
        progress("track", state.done, total)
    if saver is not None:
        saver.start_clock()
    for sweep, frame_list in ((resume.FORWARD, forward), (resume.BACKWARD, backward)):
        if sweep < state.sweep:
            continue
        if sweep > state.sweep:
            state.start_sweep(sweep, query_xy, global_search)
        for f, image in _frames_in_order(reader, frame_list[state.position:], stride, read_batch):
            active = np.flatnonzero(query_t < f) if sweep == resume.FORWARD else np.flatnonzero(query_t > f)
            anchors = state.previous_xy[active] if state.previous_known[active].all() else None
            loc = located(f, image, active, anchors)
            row = row_of[f]
            state.points[row, active] = loc.points
            state.confidence[row, active] = np.minimum(loc.confidence / ref_attention[active], 1.0)
            state.previous_xy[active] = loc.points
            state.previous_known[active] = True
            if maps_on(f) and not isinstance(return_maps, bool):
                state.replay[f] = (active, anchors)
            state.position += 1
            state.done += 1
            if on_frame is not None:
                on_frame(f, active, loc)
            if saver is not None:
                saver.frame_done(state)
            if progress is not None:
                progress("track", state.done, total)
    if not state.finished:
        state.sweep = resume.FINISHED
        if saver is not None:
            saver.save(state)

    points, confidence = state.points, state.confidence
    # Fit steps each point skipped (non-finite fp16 gradients), summed over restarts; None if unknown.
    skipped = None if embeddings.skipped_steps is None else embeddings.skipped_steps.tolist()
    return Tracks(points=points, visible=confidence >= visibility_threshold, confidence=confidence,
                  queries=np.column_stack([query_t, query_xy]), frame_indices=tracked, fps=info.fps, size=info.size,
                  meta={"model": ldm.model_id, "autocast": ldm.autocast_name, "precision": precision_name(ldm),
                        "fit_precision": embeddings.precision, "skipped_steps": skipped, "config": cfg.to_dict(),
                        "confidence_rule": CONFIDENCE_RULE, "visibility_threshold": visibility_threshold,
                        "global_search": global_search})


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
