"""Checkpoints of one video's tracking, so that a killed run resumes where it stopped.

`vidcorr.track(..., checkpoint=PATH)` keeps two files:

- ``PATH``: the tracker's state (:class:`TrackState`) every K frames, and once more when done.
- ``PATH.embeddings.safetensors``: the embeddings fitted for the run, written once, before any frame
  is tracked, so that a resumed run never fits again (and never fits differently).

A checkpoint file is a fixed header and a payload::

    MAGIC (13 bytes) | format version (uint32 LE) | payload length (uint64 LE) | sha256(payload) | payload

The payload is an uncompressed ``.npz`` (read without pickle) holding the state's arrays and a JSON
``meta`` (the run's identity, the sweep and position). It is written to a temporary name, fsynced and
renamed onto PATH (then the folder is fsynced), so PATH is always a complete checkpoint or the previous
one; a temporary left by a kill is never read and is overwritten by the next save. A PATH whose
header, length or checksum is wrong was damaged outside vidcorr: loading it raises a one-line
InputError naming the file (delete it to start the video afresh) rather than silently discarding the
work it may describe.

Why a resumed run equals an uninterrupted one, bit for bit: every frame's random streams are keyed by
the frame (``locate(stream_key=frame)``), so a frame's result depends only on the frame, the embeddings
and each point's previous position in the sweep, and the checkpoint holds exactly those (plus the rows
located so far, in float64 as computed). The run's identity (config, model fingerprint and precision,
video, frame range, visibility threshold, queries or embeddings) is stored too; resuming with any of
them changed is refused in one line.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.config import setting_differences
from vidcorr.errors import InputError
from vidcorr.io.atomic import partial_path
from vidcorr.io.points import PointLabels
from vidcorr.method.embeddings import Embeddings

FORMAT_VERSION = 1
MAGIC = b"VIDCORR-CKPT\n"
_HEADER = struct.Struct("<IQ32s")  # version, payload length, sha256 of the payload
DEFAULT_CHECKPOINT_SECONDS = 60.0
"""How much work a checkpoint may lose when `checkpoint_every` is left to the tracker."""

FORWARD, BACKWARD, FINISHED = 0, 1, 2
"""TrackState.sweep values: the forward sweep, the backward sweep, nothing left to locate."""


@dataclass
class TrackState:
    """Everything `vidcorr.track` needs to continue a video from where it stopped.

    Attributes:
        sweep: FORWARD, BACKWARD or FINISHED.
        position: frames of the current sweep already located (its frame list is fixed by the run's
            identity: the tracked frames after, resp. before, some query frame).
        done: frames located so far over both sweeps (the tracker's progress count).
        previous_xy: float64 (N, 2) each point's position on the last frame located in this sweep (the
            centre of its first crop on the next frame); the query point before the sweep's first frame.
        previous_known: bool (N,) False where a point has no previous position yet (global search before
            the first frame: the seed's corner crops are used).
        points: float64 (T, N, 2) the rows located so far (query rows hold the queries; others zeros).
        confidence: float64 (T, N) the same for confidence.
        replay: frame -> (point ids (M,) int64, anchors (M, 2) float64 or None): the inputs of each frame
            whose attention maps were asked for, so that a resumed run can recompute them exactly.
        embeddings_sha256: `embeddings_digest` of the embeddings the rows were located with.
    """

    sweep: int
    position: int
    done: int
    previous_xy: np.ndarray
    previous_known: np.ndarray
    points: np.ndarray
    confidence: np.ndarray
    embeddings_sha256: str
    replay: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.sweep == FINISHED

    def start_sweep(self, sweep: int, query_xy: np.ndarray, global_search: bool) -> None:
        """Enter `sweep` at its first frame: every point starts again from its query (or from nowhere)."""
        self.sweep, self.position = sweep, 0
        self.previous_xy = np.array(query_xy, dtype=np.float64, copy=True)
        self.previous_known = np.full(len(query_xy), not global_search)


def embeddings_digest(embeddings: Embeddings) -> str:
    """sha256 of what locating reads from embeddings: tensors, points, frames, model, reference scale."""
    digest = hashlib.sha256()
    digest.update(embeddings.tensors.detach().to("cpu").float().contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(embeddings.points, dtype=np.float64).tobytes())
    if embeddings.frames is not None:
        digest.update(np.ascontiguousarray(embeddings.frames, dtype=np.int64).tobytes())
    digest.update(json.dumps([embeddings.model_fingerprint, embeddings.config.to_dict(),
                              embeddings.extra.get("ref_attention")], sort_keys=True).encode())
    return digest.hexdigest()


def video_identity(source: Any, reader: Any) -> dict[str, Any]:
    """What names a video for a checkpoint: its absolute path, size in bytes, frame count and (W, H).

    A folder (of frames) counts the bytes and names of its files. Frames without a file behind them
    (in memory) are named by the sha256 of their pixels.
    """
    info = reader.info
    identity: dict[str, Any] = {"frames": int(info.num_frames), "size": [int(info.width), int(info.height)]}
    path = Path(source) if isinstance(source, (str, os.PathLike)) else Path(str(getattr(reader, "name", "")))
    if str(path) and path.exists():
        identity["path"] = str(path.resolve())
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            identity["bytes"] = sum(p.stat().st_size for p in files)
            identity["files"] = hashlib.sha256("\n".join(p.name for p in files).encode()).hexdigest()[:16]
        else:
            identity["bytes"] = path.stat().st_size
        return identity
    digest = hashlib.sha256()
    for batch in reader.iter_frames():
        digest.update(np.ascontiguousarray(batch.frames).tobytes())
    identity["pixels_sha256"] = digest.hexdigest()
    return identity


def frames_per_checkpoint(seconds_per_frame: float, interval_s: float = DEFAULT_CHECKPOINT_SECONDS) -> int:
    """K, the number of frames between checkpoints, so that one interval is about `interval_s` of work.

    seconds_per_frame: the measured rate (wall seconds per located frame). At least 1.
    """
    if not math.isfinite(seconds_per_frame) or seconds_per_frame <= 0:
        return 1
    return max(1, int(round(interval_s / seconds_per_frame)))


# ------------------------------------------------------------------------------------------- the file


def embeddings_path(checkpoint: str | os.PathLike) -> Path:
    """Where the run's fitted embeddings are kept beside checkpoint `checkpoint`."""
    path = Path(checkpoint)
    return path.with_name(path.name + ".embeddings.safetensors")


def save_checkpoint(path: str | os.PathLike, state: TrackState, identity: Mapping[str, Any]) -> Path:
    """Write `state` and the run's `identity` to `path` atomically and durably (see the module docstring)."""
    path = Path(path)
    frames = sorted(state.replay)
    active = [state.replay[f][0] for f in frames]
    anchors = [state.replay[f][1] for f in frames]
    meta = {"identity": dict(identity), "sweep": state.sweep, "position": state.position, "done": state.done,
            "embeddings_sha256": state.embeddings_sha256}
    arrays = {
        "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
        "previous_xy": np.asarray(state.previous_xy, dtype=np.float64),
        "previous_known": np.asarray(state.previous_known, dtype=bool),
        "points": np.asarray(state.points, dtype=np.float64),
        "confidence": np.asarray(state.confidence, dtype=np.float64),
        "replay_frames": np.asarray(frames, dtype=np.int64),
        "replay_counts": np.asarray([len(a) for a in active], dtype=np.int64),
        "replay_active": np.concatenate(active).astype(np.int64) if active else np.zeros(0, np.int64),
        "replay_has_anchors": np.asarray([a is not None for a in anchors], dtype=bool),
        "replay_anchors": np.concatenate([a for a in anchors if a is not None]).astype(np.float64)
        if any(a is not None for a in anchors) else np.zeros((0, 2), np.float64),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs mistype **kwargs
    payload = buffer.getvalue()
    data = MAGIC + _HEADER.pack(FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest()) + payload
    tmp = partial_path(path)
    _write_durably(tmp, data)
    _replace(tmp, path)
    _fsync_folder(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], TrackState] | None:
    """(identity, state) from a checkpoint written by `save_checkpoint`; None if `path` does not exist.

    Raises:
        InputError: the file is not a complete vidcorr checkpoint of this format version (truncated,
            damaged, or from another version); the message names the file.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {str(path)!r}: {exc.strerror}") from None
    corrupt = f"checkpoint {str(path)!r} is corrupt"
    fix = "delete it to track this video from the start"
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or not data.startswith(MAGIC):
        raise InputError(f"{corrupt} (no vidcorr checkpoint header); {fix}")
    version, length, checksum = _HEADER.unpack_from(data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise InputError(f"checkpoint {str(path)!r} has format version {version}, this vidcorr reads version "
                         f"{FORMAT_VERSION}; {fix}")
    payload = data[head:]
    if len(payload) != length:
        raise InputError(f"{corrupt} ({len(payload)} bytes of payload, the header says {length}); {fix}")
    if hashlib.sha256(payload).digest() != checksum:
        raise InputError(f"{corrupt} (checksum mismatch); {fix}")
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    replay: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    offset = anchor_offset = 0
    for frame, count, has in zip(arrays["replay_frames"].tolist(), arrays["replay_counts"].tolist(),
                                 arrays["replay_has_anchors"].tolist(), strict=True):
        anchors = None
        if has:
            anchors = arrays["replay_anchors"][anchor_offset:anchor_offset + count]
            anchor_offset += count
        replay[int(frame)] = (arrays["replay_active"][offset:offset + count], anchors)
        offset += count
    state = TrackState(sweep=int(meta["sweep"]), position=int(meta["position"]), done=int(meta["done"]),
                       previous_xy=arrays["previous_xy"], previous_known=arrays["previous_known"],
                       points=arrays["points"], confidence=arrays["confidence"],
                       embeddings_sha256=str(meta["embeddings_sha256"]), replay=replay)
    return meta["identity"], state


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a checkpoint, its embeddings and any temporaries (once the video's outputs are complete)."""
    path = Path(path)
    for p in (path, partial_path(path), embeddings_path(path), partial_path(embeddings_path(path))):
        p.unlink(missing_ok=True)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a power cut otherwise may undo it); not possible on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------- the run's side


class Checkpointer:
    """One run's checkpoint: loads and checks it, keeps its embeddings, and saves every K frames.

    identity: the JSON-able settings that determine the tracks (see `vidcorr.track`); a checkpoint made
    with other settings is refused. every: K in frames, or None to pick K from the measured rate so that
    a checkpoint holds about `interval_s` of work (re-estimated at each save).
    """

    def __init__(self, path: str | os.PathLike, identity: Mapping[str, Any], every: int | None = None,
                 interval_s: float = DEFAULT_CHECKPOINT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise InputError(f"checkpoint_every must be a whole number of frames >= 1, got {every!r}")
        self.path = Path(path)
        self.identity = json.loads(json.dumps(dict(identity)))  # JSON's view: tuples become lists
        self.every = every
        self.interval_s = interval_s
        self._clock = clock
        self._since_save = 0
        self._frames = 0
        self._began: float | None = None
        self.saves = 0

    def load(self) -> TrackState | None:
        """The saved state of this run, or None when there is none yet.

        Raises:
            InputError: a corrupt checkpoint, or one written with other settings (the differences named).
        """
        loaded = load_checkpoint(self.path)
        if loaded is None:
            return None
        identity, state = loaded
        differ = setting_differences(identity, self.identity)
        if differ:
            shown = "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "")
            raise InputError(f"checkpoint {str(self.path)!r} was written by a run with other settings ({shown}); "
                             "resume with the same settings or delete it")
        return state

    def load_embeddings(self, state: TrackState) -> Embeddings:
        """The embeddings saved for `state`'s run, checked against the state's digest."""
        path = embeddings_path(self.path)
        if not path.is_file():
            raise InputError(f"checkpoint {str(self.path)!r} has lost its embeddings file {str(path)!r}; "
                             "delete the checkpoint to track this video from the start")
        embeddings = Embeddings.load(path)
        if embeddings_digest(embeddings) != state.embeddings_sha256:
            raise InputError(f"embeddings file {str(path)!r} is not the one checkpoint {str(self.path)!r} was "
                             "made with; delete both to track this video from the start")
        return embeddings

    def save_embeddings(self, embeddings: Embeddings) -> None:
        """Keep the run's fitted embeddings (atomically, fsynced) before any frame is tracked."""
        path = embeddings.save(embeddings_path(self.path))
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())

    def save(self, state: TrackState) -> None:
        save_checkpoint(self.path, state, self.identity)
        self._since_save = 0
        self.saves += 1

    def start_clock(self) -> None:
        """Mark the start of the frame loop: the measured rate counts from here."""
        self._began = self._clock()

    def frame_done(self, state: TrackState) -> None:
        """Count one located frame (`state` already updated) and save when K frames have passed."""
        if self._began is None:
            self.start_clock()
        self._frames += 1
        self._since_save += 1
        every = self.every
        if every is None:
            assert self._began is not None
            every = frames_per_checkpoint((self._clock() - self._began) / self._frames, self.interval_s)
        if self._since_save >= every:
            self.save(state)


@dataclass(frozen=True)
class TrackSettings:
    """How a `vidcorr.track` call tracks, beside its model, config and points: what `track_identity` records
    and what the tracker is set up with.

    Attributes:
        tracked: int (T,) the tracked frame indices (from ``start``, ``end``, ``stride``); stride: their step.
        visibility_threshold: visible = confidence >= this.
        global_search: no frame is a reference (the embeddings come from another video).
        point_ids: (N,) keys of the points' random streams, or None for 0..N-1.
    """

    tracked: np.ndarray
    stride: int
    visibility_threshold: float
    global_search: bool
    point_ids: Sequence[int] | None = None


def track_identity(ldm: Any, cfg: Any, video: Mapping[str, Any], settings: TrackSettings, *,
                   labels: PointLabels | None = None, embeddings: Embeddings | None = None) -> dict[str, Any]:
    """The settings that determine a track's result, as a checkpoint records them.

    The whole config counts (micro-batch size included: it can change float rounding), and so do the
    model's fingerprint, weights' dtype, autocast and device type, and every field of `settings`. The points:
    their `labels` when the run fits its own embeddings (they are then kept beside the checkpoint): the queries
    (each point's first label), and every point's labels (t, x, y rows) when some point has more than one; else
    the digest of the given `embeddings`.
    """
    tracked, point_ids = settings.tracked, settings.point_ids
    queries = None if labels is None else labels.queries  # each point's first label
    return {
        "format": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "model": ldm.model_id,
        "model_fingerprint": ldm.fingerprint(),
        "dtype": str(ldm.dtype).removeprefix("torch."),
        "autocast": ldm.autocast_name,
        "device": ldm.device.type,
        "video": dict(video),
        "start": int(tracked[0]),
        "end": int(tracked[-1]) + 1,
        "stride": int(settings.stride),
        "visibility_threshold": float(settings.visibility_threshold),
        "global_search": bool(settings.global_search),
        "queries": None if queries is None else np.asarray(queries, dtype=np.float64).tolist(),
        "embeddings": None if embeddings is None else embeddings_digest(embeddings),
        **({} if point_ids is None else {"point_ids": [int(i) for i in point_ids]}),
        **({} if labels is None or max(labels.counts, default=1) <= 1
           else {"labels": [rows.tolist() for rows in labels.labels]}),
    }
