"""Opening a video as a stream of RGB frames: `open_video` picks the reader (decord, OpenCV, a frame folder, frames
in memory).

Readers know the frame count, frame rate and size up front and stream frames in small batches, so
memory does not grow with the length of the video. Four readers share one interface:

- ``decord``: preferred where it is importable (it ships wheels for x86-64 only).
- ``opencv``: the fallback, also selectable.
- ``frames``: a folder of JPEG/PNG frames (`vidcorr.io.frames`), with a given frame rate.
- ``memory``: a list or array of HxWx3 uint8 frames already in memory.

Frames are always ``uint8`` RGB ``(H, W, 3)``; batches are ``(B, H, W, 3)``.

A rotation flag (the container's display matrix, as phones write it) is applied: frames come out
as players and browsers show them, and (W, H) is the displayed size. decord and OpenCV both do so
(tests/test_real_files.py checks that they agree); OpenCV's auto-orientation is switched on
explicitly in case a build defaults it off. Tracks are therefore in displayed pixels, and the
annotated video is written upright, without a flag.

A variable frame rate is read frame by frame: frame t is the t-th decoded frame, and `VideoInfo.fps`
is the rate the container announces (its average for decord, OpenCV's guess otherwise).
Timestamps are not kept; the annotated video is written at that constant rate.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.frames import DEFAULT_FOLDER_FPS, FrameFolderReader
from vidcorr.io.reader import DEFAULT_MEMORY_FPS, MemoryReader, VideoInfo, VideoReader, quiet_native_stderr
from vidcorr.validate import check_video_file

BACKENDS = ("auto", "decord", "opencv")


# What backend="auto" tries, in order. decord first (the design's choice); benchmarks/video_memory.py
# measures the trade-off (here OpenCV streamed faster with less memory), so revisit with its numbers.
AUTO_BACKEND_ORDER = ("decord", "opencv")


@functools.lru_cache(maxsize=1)
def decord_available() -> bool:
    """Whether decord can be imported here."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


class DecordReader(VideoReader):
    """Reads a video file with decord (frame-accurate seeking, batched decoding).

    decord's reader pushes packets to its decoder thread until the first frame comes back, and the
    thread then decodes all of them into an unbounded queue: left alone, one batch makes it decode
    a large part of the video in the background (measured: 1.2 GB of a 600-frame 720p clip within
    two seconds of reading 16 frames). Seeking clears that queue, so every read ends with
    ``seek(0)``; the next read seeks to its keyframe and decodes forward, which costs at most one
    group of pictures per batch. See benchmarks/video_memory.py.
    """

    backend = "decord"

    def __init__(self, path: Path, num_threads: int = 0) -> None:
        # decord is optional (x86-64 wheels only): imported by the reader that uses it
        import decord

        # decord's decoder threads run ahead of the reads and log damaged streams to fd 2 at any time,
        # outside any window `quiet_native_stderr` could cover: silence its FFmpeg log (errors still raise).
        decord.logging.set_level(decord.logging.QUIET)
        self.name = str(path)
        with quiet_native_stderr():
            try:
                self._vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
                num_frames = len(self._vr)
                # Decoded the way reads decode (get_batch), so a file decord mishandles fails here, where
                # backend="auto" then tries OpenCV: decord 0.6 gives 4-channel frames, and fails to copy
                # them, for some rotated videos (a 64x48 clip with a 90-degree display matrix, for one).
                first = _decord_to_numpy(self._vr.get_batch([0]))[0] if num_frames > 0 else None
                self._vr.seek(0)  # stop decord's read-ahead (class docstring)
                fps = float(self._vr.get_avg_fps())
            except Exception:  # decord raises its own DECORDError / RuntimeError types
                raise _diagnose_unreadable(path, failed="decord") from None
        if first is None:
            raise InputError(f"video {str(path)!r} has no frames")
        if first.ndim != 3 or first.shape[2] != 3:
            raise _diagnose_unreadable(path, failed="decord")
        height, width = first.shape[:2]
        sar = _probe_with_pyav(path, (width, height), count=False).sample_aspect_ratio
        self.info = VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height, sample_aspect_ratio=sar)

    def close(self) -> None:
        self._vr = None

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        try:
            with quiet_native_stderr():  # a damaged stream makes FFmpeg print per macroblock
                batch = _decord_to_numpy(self._vr.get_batch(indices.tolist()))
                self._vr.seek(0)  # stop decord's read-ahead (class docstring)
        except Exception:  # decord raises its own DECORDError / RuntimeError types
            raise self._decode_error(int(indices[0])) from None
        return np.ascontiguousarray(batch, dtype=np.uint8)


def _decord_to_numpy(x: Any) -> np.ndarray:
    # The caller's process may have switched decord's global bridge (to torch, say).
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


class OpenCVReader(VideoReader):
    """Reads a video file with OpenCV's FFmpeg backend, decoding sequentially and seeking only on jumps."""

    backend = "opencv"

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(path))
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # apply a rotation flag (module docstring)
            if not cap.isOpened():
                cap.release()
                raise _diagnose_unreadable(path)
            ok, first = cap.read()
            # OpenCV estimates the count from duration x rate where the container does not store it
            # (Matroska, WebM): wrong for a variable frame rate. Count the stream's packets instead.
            probe = _probe_with_pyav(path, (first.shape[1], first.shape[0]) if ok else None, count=True)
            num_frames = probe.num_frames if probe.num_frames is not None else \
                int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
            fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not ok:
            cap.release()
            raise InputError(f"video {str(path)!r} has no frames")
        if num_frames <= 0:
            # The container does not say; count by decoding without colour conversion.
            num_frames = 1
            while cap.grab():
                num_frames += 1
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._next = 0
        else:
            self._next = 1
        if not math.isfinite(fps) or fps <= 0:
            cap.release()
            raise InputError(f"video {str(path)!r} has no valid frame rate (got {fps})")
        self._cap: cv2.VideoCapture | None = cap
        height, width = first.shape[:2]
        self.info = VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height,
                              sample_aspect_ratio=probe.sample_aspect_ratio)

    def close(self) -> None:
        cap = getattr(self, "_cap", None)  # unset when __init__ failed
        if cap is not None:
            with quiet_native_stderr():  # releasing flushes the decoder, which logs a damaged stream
                cap.release()
            self._cap = None

    def __del__(self) -> None:  # a reader never closed is released quietly too
        with contextlib.suppress(Exception):
            self.close()

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        with quiet_native_stderr():  # a damaged stream makes FFmpeg print per macroblock
            return self._decode(indices)

    def _decode(self, indices: np.ndarray) -> np.ndarray:
        cap = self._cap
        assert cap is not None, "read from a closed reader"
        h, w = self.info.height, self.info.width
        out = np.empty((len(indices), h, w, 3), dtype=np.uint8)
        for i, t in enumerate(indices.tolist()):
            if t < self._next or t - self._next > 64:
                cap.set(cv2.CAP_PROP_POS_FRAMES, t)
                self._next = t
            while self._next < t:  # short forward jump: grab (decode, no colour conversion)
                if not cap.grab():
                    raise self._decode_error(self._next)
                self._next += 1
            ok, frame = cap.read()
            if not ok or frame.shape[:2] != (h, w):
                raise self._decode_error(t)
            self._next = t + 1
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out[i])
        return out


class StreamProbe(NamedTuple):
    """What PyAV tells of a file's first video stream (None: PyAV is missing, cannot read it, or it does not say)."""

    num_frames: int | None
    sample_aspect_ratio: Fraction | None


def _probe_with_pyav(path: Path, displayed_size: tuple[int, int] | None, count: bool) -> StreamProbe:
    """The first video stream's frame count (`count`: the container's where it stores one, as MP4 and MOV do,
    else the number of its packets, demuxed without decoding, as decord counts) and its sample aspect ratio.

    The ratio is given for the frames as read: where a rotation flag turned them (`displayed_size` is the
    stored size transposed), it is inverted. Square pixels (1:1) and an unset ratio (0:1) give None.
    """
    try:
        # PyAV is imported where it is used, so reading frames never pays for it
        import av
    except ImportError:
        return StreamProbe(None, None)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return StreamProbe(None, None)
            stream = container.streams.video[0]
            ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            sar = Fraction(ratio) if ratio else None
            stored = (stream.codec_context.width, stream.codec_context.height)
            if sar is not None and displayed_size is not None and stored[0] != stored[1] \
                    and tuple(displayed_size) == stored[::-1]:
                sar = 1 / sar
            num_frames = None
            if count:
                num_frames = int(stream.frames) if stream.frames > 0 else \
                    sum(1 for packet in container.demux(stream) if packet.size > 0)
    except Exception:  # PyAV raises FFmpeg's error types; OpenCV's own count is then used
        return StreamProbe(None, None)
    return StreamProbe(num_frames, sar if sar is not None and sar > 0 and sar != 1 else None)


_FILE_READERS: dict[str, Callable[[Path], VideoReader]] = {"decord": DecordReader, "opencv": OpenCVReader}


def _diagnose_unreadable(path: Path, failed: str | None = None) -> InputError:
    """The error for a file a backend could not open: a video with no frames, not a video at all, or (where
    `failed` names the backend that failed and OpenCV decodes the file) a file that backend mishandles."""
    cap = cv2.VideoCapture(str(path))
    try:
        if cap.isOpened():
            if not cap.grab():
                return InputError(f"video {str(path)!r} has no frames")
            if failed is not None:
                return InputError(f"video backend {failed!r} cannot decode {str(path)!r}: use backend 'opencv'")
    finally:
        cap.release()
    return InputError(f"cannot read video {str(path)!r}: no decodable video stream")


def open_video(
    source: str | os.PathLike | Sequence[np.ndarray] | np.ndarray | VideoReader,
    backend: str = "auto",
    fps: float | None = None,
) -> VideoReader:
    """Open a video file or a frame folder, or wrap frames already in memory, as a `VideoReader`.

    Args:
        source: a video file path; a folder of JPEG/PNG frames (`vidcorr.frames`); a sequence of
            uint8 (H, W, 3) RGB frames or a uint8 (T, H, W, 3) array (any other iterable of frames
            is read into a list first); or a `VideoReader`, returned unchanged.
        backend: "auto" (decord where importable, else OpenCV; a file decord cannot open is tried
            with OpenCV), "decord" or "opencv". Ignored for frame folders and frames in memory.
        fps: frame rate of a frame folder or of frames in memory (default 30). A video file's frame
            rate is read from the file, so passing fps with one is an error.

    Returns:
        A reader whose `info` gives (num_frames, fps, width, height).

    Raises:
        InputError: unknown backend, decord requested but not installed, missing path, a file that
            is not a video, a video with no frames, a malformed frame folder (see `vidcorr.frames`),
            malformed in-memory frames.
    """
    if isinstance(source, VideoReader):
        return source
    if backend not in BACKENDS:
        raise InputError(f"unknown video backend {backend!r}: choose 'auto', 'decord' or 'opencv'")
    if not isinstance(source, (str, os.PathLike)):
        frames: Sequence[np.ndarray] | np.ndarray = source
        if not isinstance(source, (Sequence, np.ndarray)):  # any other iterable of frames, or not frames
            if not isinstance(source, Iterable):
                raise InputError(f"not a video: {type(source).__name__!r} is neither a path nor frames")
            frames = list(source)
        return MemoryReader(frames, DEFAULT_MEMORY_FPS if fps is None else fps)
    path = Path(source)
    if not path.exists():
        raise InputError(f"video {str(path)!r} does not exist")
    if path.is_dir():

        return FrameFolderReader(path, DEFAULT_FOLDER_FPS if fps is None else fps)
    if fps is not None:
        raise InputError(
            f"fps={fps!r} applies to frame folders and frames in memory only: video {str(path)!r} has its own "
            "frame rate"
        )
    check_video_file(path)  # a still image: say so, not "truncated"
    if backend == "decord" and not decord_available():
        raise InputError(
            "video backend 'decord' is not available (decord is not installed; it ships wheels for "
            "x86-64 only): use backend 'opencv'"
        )
    if backend == "auto":
        candidates = [name for name in AUTO_BACKEND_ORDER if name != "decord" or decord_available()]
    else:
        candidates = [backend]
    for i, name in enumerate(candidates):
        try:
            return _FILE_READERS[name](path)
        except InputError as err:
            # A file the first backend cannot open gets a second chance; an empty video does not.
            if i == len(candidates) - 1 or str(err).endswith("has no frames"):
                raise
    raise AssertionError("unreachable: the last candidate returns or raises")
