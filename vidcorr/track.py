"""Video tracking: fit once per reference frame, then locate on every frame forward and backward.

For each query (t, x, y) the embedding is fitted on frame t (queries sharing a frame are fitted in
one batch). Each point is then located on every tracked frame after t (a forward sweep) and before
t (a backward sweep, in reverse order), all active points x restarts batched per frame. On each
frame the first crop of a point is centred on its position on the previous frame processed, and the
later crops on the running argmax, as in the seed; at its own query frame a point is the query.

Confidence per frame and point (documented rule): the attention probability of the point's token at
the located pixel (restart- and layer-averaged, as `Location.confidence`), divided by the same
quantity on the reference frame at fit time, clipped to [0, 1]. 1 means "claimed as strongly as the
query point itself"; `visible = confidence >= visibility_threshold`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import torch

from .config import Config
from .embeddings import Embeddings
from .errors import InputError
from .fit import Progress, fit
from .locate import Location, locate
from .model import LDM
from .tracks import Tracks
from .validate import check_fraction
from .video import VideoReader, open_video

DEFAULT_VISIBILITY_THRESHOLD = 0.5
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


def fit_queries(ldm: LDM, video: Any, queries: np.ndarray, cfg: Config | None = None,
                progress: Progress | None = None) -> Embeddings:
    """Fit an embedding per query (t, x, y) on its own frame; queries sharing a frame in one batch.

    Returns Embeddings in query order with `frames` set, and in `extra["ref_attention"]` the
    attention each point's embedding gives its query point on its own frame (the confidence scale).
    """
    cfg = cfg or Config()
    reader = open_video(video)
    info = reader.info
    q = check_queries(queries, info.num_frames, info.size)
    frames = q[:, 0].astype(np.int64)
    parts: dict[int, tuple[np.ndarray, Embeddings, np.ndarray]] = {}
    for t in np.unique(frames):
        idx = np.flatnonzero(frames == t)
        image = reader.get_frame(int(t))
        emb = fit(ldm, image, q[idx, 1:], cfg, progress=progress, point_ids=idx.tolist(), frames=frames[idx])
        # The reference scale of confidence: the query frame located from the query points.
        ref = locate(ldm, image, emb, cfg, stream_key=int(t), point_ids=idx.tolist(), anchors_xy=q[idx, 1:])
        parts[int(t)] = (idx, emb, ref.confidence)
    order = np.concatenate([p[0] for p in parts.values()])
    inverse = np.argsort(order)
    tensors = torch.cat([p[1].tensors for p in parts.values()])[torch.from_numpy(inverse)]
    ref_attention = np.concatenate([p[2] for p in parts.values()])[inverse]
    return Embeddings(tensors, q[:, 1:].copy(), info.size, cfg, ldm.model_id, ldm.fingerprint(), frames.copy(),
                      {"ref_attention": [float(a) for a in ref_attention], "video_size": list(info.size),
                       "video_frames": int(info.num_frames)})


def track(ldm: LDM, video: Any, queries: np.ndarray | None = None, cfg: Config | None = None, *,
          embeddings: Embeddings | None = None, global_search: bool = False, start: int = 0,
          end: int | None = None, stride: int = 1, visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
          progress: Progress | None = None, on_frame: FrameCallback | None = None,
          return_maps: bool | Collection[int] = False, read_batch: int = 8) -> Tracks:
    """Track points through `video` (a path, a VideoReader, or a sequence of (H, W, 3) uint8 frames).

    queries: (N, 3) t, x, y in the video's pixels; fitted here unless `embeddings` is given (then
    their frames and points are the queries). global_search: the embeddings come from another video,
    so no frame is a reference: every point is searched from the seed's corner crops on the first
    tracked frame and followed from there. start/end/stride: which frames are tracked.
    on_frame: called after each located frame, with Location.maps on every frame (return_maps=True)
    or on the frames in return_maps (a collection of frame indices; maps cost memory traffic).
    Returns Tracks: points (T, N, 2), visible (T, N), confidence (T, N), queries (N, 3).
    """
    check_fraction(visibility_threshold, "visibility_threshold")
    reader = open_video(video)
    info = reader.info
    if embeddings is None:
        if queries is None:
            raise InputError("give the points to track (queries) or fitted embeddings")
        embeddings = fit_queries(ldm, reader, queries, cfg, progress)
    cfg = cfg or embeddings.config
    embeddings.check_compatible(ldm, cfg)
    if embeddings.frames is None and not global_search:
        raise InputError("these embeddings were fitted on an image, not a video frame: track with global search")
    n = embeddings.num_points
    query_t = np.full(n, -1, dtype=np.int64) if global_search else np.asarray(embeddings.frames, dtype=np.int64)
    query_xy = np.asarray(embeddings.points, dtype=np.float64)
    if not global_search:
        check_queries(np.column_stack([query_t, query_xy]), info.num_frames, info.size)
    ref_attention = np.maximum(np.asarray(embeddings.extra.get("ref_attention", [1.0] * n), dtype=np.float64), 1e-6)

    tracked = reader.frame_indices(start, end, stride)
    row_of = {int(f): i for i, f in enumerate(tracked)}
    points = np.zeros((len(tracked), n, 2), dtype=np.float64)
    confidence = np.zeros((len(tracked), n), dtype=np.float64)
    for p in range(n):
        if int(query_t[p]) in row_of:
            points[row_of[int(query_t[p])], p] = query_xy[p]
            confidence[row_of[int(query_t[p])], p] = 1.0

    forward = [int(f) for f in tracked if np.any(query_t < f)]
    backward = [int(f) for f in tracked[::-1] if np.any(query_t > f)]
    total, done = len(forward) + len(backward), 0
    for direction, frame_list in ((1, forward), (-1, backward)):
        previous: list[np.ndarray | None] = [None if global_search else query_xy[p] for p in range(n)]
        for f, image in _frames_in_order(reader, frame_list, stride, read_batch):
            active = np.flatnonzero(query_t < f) if direction == 1 else np.flatnonzero(query_t > f)
            anchors = None if any(previous[p] is None for p in active) else np.stack([previous[p] for p in active])
            loc = locate(ldm, image, embeddings.subset(active), cfg, stream_key=f, point_ids=active.tolist(),
                         anchors_xy=anchors,
                         return_maps=return_maps if isinstance(return_maps, bool) else f in return_maps)
            row = row_of[f]
            points[row, active] = loc.points
            confidence[row, active] = np.minimum(loc.confidence / ref_attention[active], 1.0)
            for j, p in enumerate(active):
                previous[p] = loc.points[j]
            if on_frame is not None:
                on_frame(f, active, loc)
            done += 1
            if progress is not None:
                progress("track", done, total)

    return Tracks(points=points, visible=confidence >= visibility_threshold, confidence=confidence,
                  queries=np.column_stack([query_t, query_xy]), frame_indices=tracked, fps=info.fps, size=info.size,
                  meta={"model": ldm.model_id, "autocast": ldm.autocast_name, "config": cfg.to_dict(),
                        "confidence_rule": CONFIDENCE_RULE, "visibility_threshold": visibility_threshold,
                        "global_search": global_search})


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
