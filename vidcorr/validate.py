"""Checks of a run's arguments that can be made before any work, with one-line messages.

Each check takes the name the caller's user knows the value by (the CLI passes its option names,
``--visibility-threshold``; a Python caller its argument names), so the message names the real
cause in the caller's terms. Output paths are checked by `vidcorr.staging.check_output`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidcorr.errors import InputError

# File signatures of still-image formats, which video decoders half-open and then fail on.
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)


def check_fraction(value: Any, name: str) -> float:
    """`value` as a float, which must be finite and in [0, 1] (a threshold on a confidence, say)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InputError(f"{name} must be a number in [0, 1], got {number:g}")
    return number


def check_frame_index(value: int | None, name: str, num_frames: int | None = None) -> int | None:
    """A frame index given by the user: not negative, and before `num_frames` where that is known.

    None (not given) passes. Frames are numbered from 0.
    """
    if value is None:
        return None
    if value < 0:
        raise InputError(f"{name} {value} is negative: frames are numbered from 0")
    if num_frames is not None and value >= num_frames:
        raise InputError(f"{name} {value} is past the end of the video (frames 0..{num_frames - 1})")
    return value


def image_kind(path: str | os.PathLike) -> str | None:
    """'a JPEG image', 'a PNG image', ... when the file's first bytes are a still image's; else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return next((kind for signature, kind in _IMAGE_SIGNATURES if head.startswith(signature)), None)


def check_video_file(path: str | os.PathLike) -> Path:
    """A path given as a video: it must exist and must not be a still image (those are half-opened by
    video decoders, which then report them as truncated)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"video {str(path)!r} does not exist")
    kind = image_kind(path) if path.is_file() else None
    if kind is not None:
        raise InputError(f"{str(path)!r} is {kind}, not a video")
    return path


def refuse_options(options: Mapping[str, Any], reason: str) -> None:
    """Refuse the first option that was set (not None) in `options`: `name reason` as the message.

    For options that do not apply to a mode, e.g. ``refuse_options({"--steps": steps}, "applies to
    fitting; it has no effect with --embeddings")``.
    """
    for name, value in options.items():
        if value is not None:
            raise InputError(f"{name} {reason}")
