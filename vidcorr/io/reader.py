"""What a video is to the rest of vidcorr: `VideoInfo` up front and frames streamed in batches (`VideoReader`).

Frames are always ``uint8`` RGB ``(H, W, 3)``; batches are ``(B, H, W, 3)``. Readers know the frame count, frame
rate and size before any frame is decoded and stream frames in small batches, so memory does not grow with the
length of the video. This module holds the interface, the in-memory reader (`MemoryReader`), the reader that
keeps a few frames for later passes (`KeptFrames`) and `evenly_spaced`, the one rule for choosing frames to show.
File readers are in `vidcorr.io.video` (decord, OpenCV) and `vidcorr.io.frames` (folders of frames); writing is
`vidcorr.io.writer`'s.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from vidcorr.errors import InputError

DEFAULT_MEMORY_FPS = 30.0


MEMORY_NAME = "<in-memory frames>"


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before any frame is streamed.

    Attributes:
        num_frames: number of frames T (> 0).
        fps: frames per second (> 0).
        width: frame width W in pixels.
        height: frame height H in pixels.
        sample_aspect_ratio: the width:height of one pixel on screen where it is not square (an anamorphic
            video's, e.g. 4/3 for PAL DV's 16:9), None for square pixels; frames are read in stored pixels.
    """

    num_frames: int
    fps: float
    width: int
    height: int
    sample_aspect_ratio: Fraction | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) in pixels."""
        return (self.width, self.height)


class FrameBatch(NamedTuple):
    """One batch from `VideoReader.iter_frames`; unpacks as ``indices, frames``.

    Attributes:
        indices: int64 (B,), the video frame index of each frame.
        frames: uint8 (B, H, W, 3) RGB.
    """

    indices: np.ndarray
    frames: np.ndarray


def as_int(name: str, value: Any) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise InputError(f"{name} {value!r} is not an integer") from None


def check_fps(fps: Any) -> float:
    try:
        fps_f = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"fps {fps!r} is invalid: it must be a finite number > 0") from None
    if not math.isfinite(fps_f) or fps_f <= 0:
        raise InputError(f"fps {fps!r} is invalid: it must be a finite number > 0")
    return fps_f


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what FFmpeg, decord and OpenCV's C++ code print to file descriptor 2.

    They print to the process's stderr directly (not through Python), which would break the rule
    that the library never prints. Used only around short calls (opening a file, probing a codec).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def evenly_spaced(n: int, count: int) -> list[int]:
    """`count` positions spread evenly over 0..n-1, first and last included, ascending and distinct (all of
    them when there are no more than `count`): the one rule for choosing frames to show (the picker's frames,
    the viewer's key frames, the review page's)."""
    if n <= 0 or count <= 0:
        return []
    if count >= n:
        return list(range(n))
    if count == 1:
        return [0]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


class VideoReader(ABC):
    """A video as frames: `info` up front, `iter_frames` to stream, `get_frame` for one frame.

    Use `open_video` to make one. Readers are context managers; `close` frees the decoder.
    """

    backend: str
    info: VideoInfo
    name: str

    def __len__(self) -> int:
        return self.info.num_frames

    def __repr__(self) -> str:
        i = self.info
        return (
            f"{type(self).__name__}({self.name!r}, backend={self.backend!r}, "
            f"{i.num_frames} frames, {i.width}x{i.height}, {i.fps:g} fps)"
        )

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 (readers without a native handle have nothing to free)
        """Free the decoder; the reader cannot be used afterwards."""

    def frame_indices(self, start: int = 0, end: int | None = None, stride: int = 1) -> np.ndarray:
        """The video frame indices ``range(start, end, stride)`` after checking them.

        Args:
            start: first frame index, 0 <= start < T.
            end: one past the last frame index, start < end <= T; None means T.
            stride: step between frames, >= 1.

        Returns:
            int64 (K,) frame indices.

        Raises:
            InputError: a value is out of range or not an integer.
        """
        n = self.info.num_frames
        start = as_int("start frame", start)
        stride = as_int("stride", stride)
        if not 0 <= start < n:
            raise InputError(f"start frame {start} is out of range 0..{n - 1} (the video has {n} frames)")
        if end is None:
            end = n
        end = as_int("end frame", end)
        if not start < end <= n:
            raise InputError(
                f"end frame {end} is out of range {start + 1}..{n} (start is {start}, the video has {n} frames)"
            )
        if stride < 1:
            raise InputError(f"stride {stride} is invalid: it must be an integer >= 1")
        return np.arange(start, end, stride, dtype=np.int64)

    def iter_frames(
        self, start: int = 0, end: int | None = None, stride: int = 1, batch_size: int = 16
    ) -> Iterator[FrameBatch]:
        """Stream frames ``start, start + stride, ... < end`` in batches.

        Only one batch is decoded at a time, so memory is bounded by ``batch_size`` frames plus the
        decoder's working set, whatever the video's length (benchmarks/video_memory.py measures it).
        Each batch is a fresh array the caller may keep.

        Args:
            start: first frame index, 0 <= start < T.
            end: one past the last frame index, start < end <= T; None means T.
            stride: step between frames, >= 1.
            batch_size: frames per batch B, >= 1 (the last batch may be shorter).

        Yields:
            FrameBatch(indices int64 (B,), frames uint8 (B, H, W, 3) RGB).

        Raises:
            InputError: a range value is invalid (raised at the call, before anything is decoded),
                or a frame the file announces cannot be decoded.
        """
        indices = self.frame_indices(start, end, stride)
        batch_size = as_int("batch_size", batch_size)
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size} is invalid: it must be an integer >= 1")
        return self._iter_batches(indices, batch_size)

    def _iter_batches(self, indices: np.ndarray, batch_size: int) -> Iterator[FrameBatch]:
        for lo in range(0, len(indices), batch_size):
            chunk = indices[lo : lo + batch_size]
            yield FrameBatch(chunk, self._read_batch(chunk))

    def get_frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as uint8 (H, W, 3) RGB.

        Raises:
            InputError: t is out of range 0..T-1.
        """
        n = self.info.num_frames
        t = as_int("frame", t)
        if not 0 <= t < n:
            raise InputError(f"frame {t} is out of range 0..{n - 1} (the video has {n} frames)")
        return self._read_batch(np.array([t], dtype=np.int64))[0]

    @abstractmethod
    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        """Decode the (already checked) increasing frame indices into uint8 (B, H, W, 3) RGB."""

    def _decode_error(self, t: int) -> InputError:
        return InputError(
            f"cannot decode frame {t} of video {self.name!r} (it announces {self.info.num_frames} frames): "
            "the file may be truncated or corrupt"
        )


class MemoryReader(VideoReader):
    """Frames already in memory: a sequence of uint8 (H, W, 3) RGB frames, or a (T, H, W, 3) array."""

    backend = "memory"

    def __init__(self, frames: Sequence[np.ndarray] | np.ndarray, fps: float = DEFAULT_MEMORY_FPS) -> None:
        self.name = MEMORY_NAME
        fps_f = check_fps(fps)
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise InputError(
                    f"frames must be a (T, H, W, 3) uint8 array; got shape {frames.shape} and dtype {frames.dtype}"
                )
        if len(frames) == 0:
            raise InputError(f"video {MEMORY_NAME!r} has no frames")
        first = np.asarray(frames[0])
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
                raise InputError(
                    f"frames must be HxWx3 uint8 arrays; frame {i} has shape {frame.shape} and dtype {frame.dtype}"
                )
            if frame.shape != first.shape:
                raise InputError(
                    f"frame {i} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
                    f"{first.shape[1]}x{first.shape[0]}: all frames must have one size"
                )
        self._frames = frames
        self.info = VideoInfo(
            num_frames=len(frames), fps=fps_f, width=int(first.shape[1]), height=int(first.shape[0])
        )

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        if isinstance(self._frames, np.ndarray):
            return self._frames[indices]  # fancy indexing copies
        return np.stack([np.asarray(self._frames[t]) for t in indices.tolist()])


class KeptFrames(VideoReader):
    """`reader`, keeping each decoded frame whose index is in `keep` and serving it again without decoding.

    A track run passes over its video several times (the fit on the query frames, the sweeps, the reference
    maps, the key frames): the few frames that more than one pass needs are decoded once and kept here, so
    memory holds `keep` frames at most, never the video.
    """

    def __init__(self, reader: VideoReader, keep: Iterable[int]) -> None:
        self.inner = reader
        self.backend, self.info, self.name = reader.backend, reader.info, reader.name
        self._keep = {int(t) for t in keep}
        self._kept: dict[int, np.ndarray] = {}

    def close(self) -> None:
        self.inner.close()

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        wanted = indices.tolist()
        missing = [t for t in wanted if t not in self._kept]
        decoded = dict(zip(missing, self.inner._read_batch(np.array(missing, dtype=np.int64)), strict=True)) \
            if missing else {}
        for t, frame in decoded.items():
            if t in self._keep:
                self._kept[t] = frame
        return np.stack([self._kept[t] if t in self._kept else decoded[t] for t in wanted])
