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
reference attention, clipped to [0, 1]. The reference attention is measured at fit time at every label (the
label's frame located from the label's position) and averaged over the point's labels. 1 means "claimed as
strongly as at the labels"; `visible = confidence >= visibility_threshold`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
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
                   "layers) divided by the same measured at each of the point's labels on its frame and averaged over "
                   "the labels, clipped to [0, 1]")

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


def track(ldm: LDM, video: Any, queries: PointLabels | np.ndarray | None = None, cfg: Config | None = None, *,
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
        given = None
        if embeddings is None:
            assert queries is not None  # checked above
            given = check_labels(queries, info.num_frames, info.size)
        identity = resume.track_identity(ldm, fitted_cfg, resume.video_identity(video, reader), tracked, stride,
                                         visibility_threshold=visibility_threshold, global_search=global_search,
                                         queries=None if given is None else given.queries, labels=given,
                                         embeddings=embeddings, point_ids=point_ids)
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
    # Global search: no frame of this video is labelled; each point is followed from frame to frame after a
    # label "before the video" (t = -1) whose position is unknown (the seed's corner crops).
    labels = None if global_search else check_labels(embeddings.point_labels(), info.num_frames, info.size)
    anchor_rows = [np.column_stack([query_t[p:p + 1], query_xy[p:p + 1]]) for p in range(n)] if labels is None \
        else list(labels.labels)
    forward_steps, backward_steps = sweeps([rows[:, 0] for rows in anchor_rows], tracked)
    ref_attention = np.maximum(np.asarray(embeddings.extra.get("ref_attention", [1.0] * n), dtype=np.float64), 1e-6)

    row_of = {int(f): i for i, f in enumerate(tracked)}
    if state is None:
        digest = "" if saver is None else (saver.identity["embeddings"] or resume.embeddings_digest(embeddings))
        state = _initial_state(digest, anchor_rows, query_xy, row_of, len(tracked), global_search)
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

    total = len(forward_steps) + len(backward_steps)
    if progress is not None and state.done:
        progress("track", state.done, total)
    if saver is not None:
        saver.start_clock()
    for sweep, steps in ((resume.FORWARD, forward_steps), (resume.BACKWARD, backward_steps)):
        if sweep < state.sweep:
            continue
        if sweep > state.sweep:
            state.start_sweep(sweep, query_xy, global_search)
        todo = steps[state.position:]
        for step, (f, image) in zip(todo, _frames_in_order(reader, [s.frame for s in todo], stride, read_batch),
                                    strict=True):
            active = step.points
            if labels is None:
                anchors = state.previous_xy[active] if state.previous_known[active].all() else None
            else:  # a sweep's first frame from a label starts at the label, later ones at the previous position
                from_label = np.array([anchor_rows[p][k, 1:] for p, k in zip(active, step.labels, strict=True)])
                anchors = np.where(step.fresh[:, None], from_label, state.previous_xy[active])
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
                        "global_search": global_search}, labels=labels)


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
