"""Writing videos: `VideoWriter` encodes RGB frames as H.264 (yuv420p, through PyAV's bundled libx264) so that
browsers and phones play them, or MPEG-4 part 2 through OpenCV as a warned fallback where no H.264 encoder is
found. Output is written to a partial file and renamed into place whole; the source's pixel aspect ratio is kept.
"""

from __future__ import annotations

import contextlib
import fractions
import functools
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.reader import as_int, check_fps, quiet_native_stderr

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


NO_H264_WARNING = (
    "no H.264 encoder found (PyAV with libx264: pip install av): wrote MPEG-4 part 2 (mp4v) instead, "
    "which browsers and most phones do not play"
)


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Whether PyAV is installed with an H.264 encoder (libx264): probed once with a tiny encode."""
    try:
        # PyAV is imported where it is used, so a reader never pays for it
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
        sample_aspect_ratio: the pixel aspect ratio written (H.264 only), None for square pixels.
        warning: None, or one line saying why the file is not H.264 (the mp4v fallback).
        frames_written: frames written so far.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, size: tuple[int, int], codec: str | None = None,
        sample_aspect_ratio: fractions.Fraction | None = None,
    ) -> None:
        """Check the arguments; the file is opened by ``with``.

        Args:
            path: output file; its suffix selects the container (.mp4, .m4v, .mov, .mkv, .avi).
            fps: frames per second, > 0.
            size: (W, H) of every frame in pixels.
            codec: 'h264' (also 'avc1'), or an OpenCV FourCC (e.g. 'FFV1' for lossless .mkv),
                instead of `default_codec(path)`.
            sample_aspect_ratio: the on-screen width:height of a pixel, for frames of a source with
                non-square pixels (`VideoInfo.sample_aspect_ratio`), so players show them as the source;
                None for square pixels. Written in H.264 streams only (OpenCV's writers cannot).
        """
        self.path = Path(path)
        self.fps = check_fps(fps)
        if sample_aspect_ratio is not None and not sample_aspect_ratio > 0:
            raise InputError(f"sample aspect ratio {sample_aspect_ratio} is invalid: it must be > 0")
        self.sample_aspect_ratio = sample_aspect_ratio
        try:
            width, height = (as_int("frame size", v) for v in size)
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
            if self.codec == H264:
                self._writer = _PyAVEncoder(tmp, self.path, self.fps, self.encoded_size, self.sample_aspect_ratio)
            else:
                self._writer = _OpenCVEncoder(tmp, self.path, self.codec, self.fps, self.encoded_size)
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
        with quiet_native_stderr():
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*codec), fps, size)
        if not self._writer.isOpened():
            raise InputError(f"cannot write video {str(path)!r} with codec {codec!r}")

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self, flush: bool) -> None:
        self._writer.release()


class _PyAVEncoder:
    """libx264 through PyAV: yuv420p, tagged colours, even-sized RGB frames in."""

    def __init__(self, tmp: Path, path: Path, fps: float, size: tuple[int, int],
                 sample_aspect_ratio: fractions.Fraction | None) -> None:
        # PyAV is imported where it is used, so a reader never pays for it
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
            if sample_aspect_ratio is not None:  # stored in the H.264 stream and the MP4/MOV 'pasp' box
                context.sample_aspect_ratio = fractions.Fraction(sample_aspect_ratio)
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._pts = 0
        # One converter for the whole video: VideoFrame.reformat would build a new swscale context per frame.
        self._reformatter, self._colorspace = VideoReformatter(), Colorspace.ITU601

    def write(self, rgb: np.ndarray) -> None:
        # PyAV is imported where it is used, so a reader never pays for it
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
