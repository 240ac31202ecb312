"""Reading videos as streams of RGB frames (decord, OpenCV, frame folders) and writing them (PyAV, OpenCV).

Readers know the frame count, frame rate and size up front and stream frames in small batches, so
memory does not grow with the length of the video. Four readers share one interface:

- ``decord``: preferred where it is importable (it ships wheels for x86-64 only).
- ``opencv``: the fallback, also selectable.
- ``frames``: a folder of JPEG/PNG frames (`vidcorr.frames`), with a given frame rate.
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
import fractions
import functools
import math
import operator
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import cv2
import numpy as np

from vidcorr.atomic import atomic_path
from vidcorr.errors import InputError
from vidcorr.validate import check_video_file

BACKENDS = ("auto", "decord", "opencv")
# What backend="auto" tries, in order. decord first, as the design asks; benchmarks/video_memory.py
# measures the trade-off (here OpenCV streamed faster with less memory), so revisit with its numbers.
AUTO_BACKEND_ORDER = ("decord", "opencv")
DEFAULT_MEMORY_FPS = 30.0
MEMORY_NAME = "<in-memory frames>"

# Containers for which the writer picks H.264 where available, else MPEG-4 part 2.
_MP4_LIKE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
_SUFFIX_CODECS = {".avi": "MJPG"}
_PYAV_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
H264 = "h264"
_H264_ALIASES = {"h264", "avc1", "H264", "X264", "x264"}
# libx264 settings: CRF 20 looks clean on markers and text; "veryfast" keeps rendering well under the
# tracking time (benchmarks/h264_writers.py measured it against imageio-ffmpeg).
H264_OPTIONS = {"crf": "20", "preset": "veryfast"}
# Colour tags of the H.264 stream, matching the conversion: swscale's BT.601 matrix in limited range
# (what OpenCV and decord assume when they decode), BT.709 primaries and transfer (sRGB's).
_AVCOL_SPC_SMPTE170M, _AVCOL_PRI_BT709, _AVCOL_TRC_BT709, _AVCOL_RANGE_MPEG = 6, 1, 1, 1


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before any frame is streamed.

    Attributes:
        num_frames: number of frames T (> 0).
        fps: frames per second (> 0).
        width: frame width W in pixels.
        height: frame height H in pixels.
    """

    num_frames: int
    fps: float
    width: int
    height: int

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


def _as_int(name: str, value: Any) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise InputError(f"{name} {value!r} is not an integer") from None


def _check_fps(fps: Any) -> float:
    try:
        fps_f = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"fps {fps!r} is invalid: it must be a finite number > 0") from None
    if not math.isfinite(fps_f) or fps_f <= 0:
        raise InputError(f"fps {fps!r} is invalid: it must be a finite number > 0")
    return fps_f


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
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


@functools.lru_cache(maxsize=1)
def decord_available() -> bool:
    """Whether decord can be imported here."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


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
        start = _as_int("start frame", start)
        stride = _as_int("stride", stride)
        if not 0 <= start < n:
            raise InputError(f"start frame {start} is out of range 0..{n - 1} (the video has {n} frames)")
        if end is None:
            end = n
        end = _as_int("end frame", end)
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
        batch_size = _as_int("batch_size", batch_size)
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
        t = _as_int("frame", t)
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
        import decord

        # decord's decoder threads run ahead of the reads and log damaged streams to fd 2 at any time,
        # outside any window `_quiet_native_stderr` could cover: silence its FFmpeg log (errors still raise).
        decord.logging.set_level(decord.logging.QUIET)
        self.name = str(path)
        with _quiet_native_stderr():
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
        self.info = VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height)

    def close(self) -> None:
        self._vr = None

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        try:
            with _quiet_native_stderr():  # a damaged stream makes FFmpeg print per macroblock
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
        with _quiet_native_stderr():
            cap = cv2.VideoCapture(str(path))
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # apply a rotation flag (module docstring)
            if not cap.isOpened():
                cap.release()
                raise _diagnose_unreadable(path)
            # OpenCV estimates the count from duration x rate where the container does not store it
            # (Matroska, WebM): wrong for a variable frame rate. Count the stream's packets instead.
            counted = _count_video_packets(path)
            num_frames = counted if counted is not None else int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            ok, first = cap.read()
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
        self.info = VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height)

    def close(self) -> None:
        cap = getattr(self, "_cap", None)  # unset when __init__ failed
        if cap is not None:
            with _quiet_native_stderr():  # releasing flushes the decoder, which logs a damaged stream
                cap.release()
            self._cap = None

    def __del__(self) -> None:  # a reader never closed is released quietly too
        with contextlib.suppress(Exception):
            self.close()

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        with _quiet_native_stderr():  # a damaged stream makes FFmpeg print per macroblock
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


def _count_video_packets(path: Path) -> int | None:
    """Frames in the first video stream: the container's count where it stores one (MP4, MOV), else
    the number of its packets, demuxed without decoding (as decord counts). None where PyAV is not
    installed or cannot read the file."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except Exception:  # PyAV raises FFmpeg's error types; OpenCV's own count is then used
        return None


class MemoryReader(VideoReader):
    """Frames already in memory: a sequence of uint8 (H, W, 3) RGB frames, or a (T, H, W, 3) array."""

    backend = "memory"

    def __init__(self, frames: Sequence[np.ndarray] | np.ndarray, fps: float = DEFAULT_MEMORY_FPS) -> None:
        self.name = MEMORY_NAME
        fps_f = _check_fps(fps)
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
        from vidcorr.frames import DEFAULT_FOLDER_FPS, FrameFolderReader

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


# ---------------------------------------------------------------------------------------------- writing


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Whether PyAV is installed with an H.264 encoder (libx264): probed once with a tiny encode."""
    try:
        import av
    except ImportError:
        return False
    try:
        context = av.CodecContext.create("libx264", "w")
        context.width, context.height, context.pix_fmt = 64, 64, "yuv420p"
        context.time_base = fractions.Fraction(1, 24)
        context.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
        frame.pts = 0
        context.encode(frame)
        context.encode(None)
    except Exception:  # an FFmpeg build without libx264 raises its own error types
        return False
    return True


NO_H264_WARNING = (
    "no H.264 encoder found (PyAV with libx264: pip install av): wrote MPEG-4 part 2 (mp4v) instead, "
    "which browsers and most phones do not play"
)


def default_codec(path: str | os.PathLike) -> str:
    """The codec `VideoWriter` uses for `path` when none is given.

    .mp4, .m4v, .mov, .mkv: 'h264' (libx264 through PyAV, yuv420p) where it is installed, else
    OpenCV's 'mp4v' (MPEG-4 part 2; `VideoWriter.warning` then says so). .avi: OpenCV's 'MJPG'.

    Raises:
        InputError: another suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix in _MP4_LIKE_SUFFIXES:
        return H264 if h264_available() else "mp4v"
    if suffix in _SUFFIX_CODECS:
        return _SUFFIX_CODECS[suffix]
    raise InputError(
        f"unsupported video suffix {suffix!r} in {path}: use one of "
        f"{', '.join(_MP4_LIKE_SUFFIXES + tuple(_SUFFIX_CODECS))}"
    )


class VideoWriter:
    """Write uint8 RGB frames to a video file, atomically: H.264 through PyAV, other codecs through OpenCV.

    Frames go to a temporary name next to `path` that is renamed onto `path` only when the `with`
    block ends without an exception; an interrupted or failed write leaves nothing at `path`.

    H.264 is written with libx264 in yuv420p (High profile, colour tagged BT.601 matrix / BT.709
    primaries, limited range; .mp4 and .mov with the index at the front, so a browser plays it
    while it loads), which every browser and phone plays. 4:2:0 chroma needs even sides, and H.264
    cannot crop by one pixel in 4:2:0 (its crop window moves in steps of two), so no yuv420p H.264
    file has an odd side. An odd width or height is therefore padded by repeating the last
    column/row at the right/bottom: every input pixel keeps its coordinates (tracks drawn on the
    video stay exact) and `encoded_size` says what the file holds. OpenCV's codecs get the same
    padding (they would drop the last column/row).

    Without an H.264 encoder the default for .mp4 falls back to 'mp4v', and `warning` says so for
    the caller to show (the library never prints).

    Example::

        with VideoWriter("out.mp4", fps=reader.info.fps, size=reader.info.size) as writer:
            for _, frames in reader.iter_frames():
                writer.write_batch(frames)
        writer.codec  # 'h264', or 'mp4v' with writer.warning set

    Attributes:
        path: the final path.
        fps: frames per second.
        size: (W, H) of the frames written.
        encoded_size: (W, H) in the file: `size` rounded up to even numbers.
        codec: 'h264' (PyAV) or the OpenCV FourCC actually used ('mp4v', 'MJPG', 'FFV1', ...).
        warning: None, or one line saying why the file is not H.264 (the mp4v fallback).
        frames_written: frames written so far.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, size: tuple[int, int], codec: str | None = None
    ) -> None:
        """Check the arguments; the file is opened by ``with``.

        Args:
            path: output file; its suffix selects the container (.mp4, .m4v, .mov, .mkv, .avi).
            fps: frames per second, > 0.
            size: (W, H) of every frame in pixels.
            codec: 'h264' (also 'avc1'), or an OpenCV FourCC (e.g. 'FFV1' for lossless .mkv),
                instead of `default_codec(path)`.
        """
        self.path = Path(path)
        self.fps = _check_fps(fps)
        try:
            width, height = (_as_int("frame size", v) for v in size)
        except (TypeError, ValueError):
            raise InputError(f"frame size {size!r} is invalid: it must be (width, height)") from None
        if width < 1 or height < 1:
            raise InputError(f"frame size {size!r} is invalid: width and height must be >= 1")
        self.size = (width, height)
        self.encoded_size = (width + width % 2, height + height % 2)
        self.warning: str | None = None
        if codec is None:
            codec = default_codec(self.path)
            if codec == "mp4v":
                self.warning = NO_H264_WARNING
        elif codec in _H264_ALIASES:
            codec = H264
            if self.path.suffix.lower() not in _PYAV_FORMATS:
                raise InputError(f"codec 'h264' needs a {', '.join(_PYAV_FORMATS)} file, not {self.path.name!r}")
            if not h264_available():
                raise InputError("codec 'h264' is not available here: install PyAV (pip install av)")
        elif len(codec) != 4:
            raise InputError(f"codec {codec!r} is invalid: use 'h264' or a four-character code such as 'mp4v'")
        self.codec = codec
        self.frames_written = 0
        self._writer: _OpenCVEncoder | _PyAVEncoder | None = None
        self._atomic: contextlib.AbstractContextManager[Path] | None = None

    def __enter__(self) -> VideoWriter:
        if not self.path.parent.is_dir():
            raise InputError(f"output folder {str(self.path.parent)!r} does not exist")
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            encoder = _PyAVEncoder if self.codec == H264 else _OpenCVEncoder
            self._writer = encoder(tmp, self.path, self.codec, self.fps, self.encoded_size)
        except BaseException:
            self._atomic.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None and self._atomic is not None, "VideoWriter used outside `with`"
        writer, atomic = self._writer, self._atomic
        self._writer = self._atomic = None
        try:
            writer.close(flush=exc_type is None)
            if exc_type is None and self.frames_written == 0:
                raise ValueError(f"no frames were written to {self.path}")
        except BaseException:
            atomic.__exit__(*sys.exc_info())
            raise
        atomic.__exit__(exc_type, exc, tb)

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) RGB frame of the writer's size.

        Raises:
            InputError: wrong shape or dtype.
        """
        if self._writer is None:
            raise RuntimeError("VideoWriter.write called outside its `with` block")
        frame = np.asarray(frame)
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise InputError(
                f"frame has shape {frame.shape} and dtype {frame.dtype}; this writer takes "
                f"({height}, {width}, 3) uint8 RGB"
            )
        if self.encoded_size != self.size:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        self._writer.write(frame)
        self.frames_written += 1

    def write_batch(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
        """Append frames: uint8 (B, H, W, 3) RGB, or any iterable of (H, W, 3) frames."""
        for frame in frames:
            self.write(frame)


class _OpenCVEncoder:
    """An OpenCV VideoWriter for one FourCC, taking even-sized RGB frames."""

    def __init__(self, tmp: Path, path: Path, codec: str, fps: float, size: tuple[int, int]) -> None:
        with _quiet_native_stderr():
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*codec), fps, size)
        if not self._writer.isOpened():
            raise InputError(f"cannot write video {str(path)!r} with codec {codec!r}")

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self, flush: bool) -> None:
        self._writer.release()


class _PyAVEncoder:
    """libx264 through PyAV: yuv420p, tagged colours, even-sized RGB frames in."""

    def __init__(self, tmp: Path, path: Path, codec: str, fps: float, size: tuple[int, int]) -> None:
        import av
        from av.video.reformatter import Colorspace, VideoReformatter

        fmt = _PYAV_FORMATS[path.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._container = av.open(str(tmp), "w", format=fmt, options=options)
        except av.FFmpegError as exc:
            raise InputError(f"cannot write video {str(path)!r} with codec 'h264': {exc}") from None
        try:
            rate = fractions.Fraction(fps).limit_denominator(100_000)
            stream = self._container.add_stream("libx264", rate=rate, options=dict(H264_OPTIONS))
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            context = stream.codec_context
            context.colorspace, context.color_primaries = _AVCOL_SPC_SMPTE170M, _AVCOL_PRI_BT709
            context.color_trc, context.color_range = _AVCOL_TRC_BT709, _AVCOL_RANGE_MPEG
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._pts = 0
        # One converter for the whole video: VideoFrame.reformat would build a new swscale context per frame.
        self._reformatter, self._colorspace = VideoReformatter(), Colorspace.ITU601

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = self._reformatter.reformat(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p",
                                           dst_colorspace=self._colorspace)
        frame.pts = self._pts
        self._pts += 1
        self._container.mux(self._stream.encode(frame))

    def close(self, flush: bool) -> None:
        try:
            if flush:
                self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
