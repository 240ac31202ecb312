"""Reading and writing still images (RGB uint8), with one-line errors for bad files.

16-bit images become 8-bit by keeping the high byte of each value (``value // 256``): Pillow does so itself
for 16-bit colour PNGs, and `rgb8` does the same for 16-bit greyscale ones, which Pillow would otherwise clip
to 255 (a nearly white frame). The scale is fixed, not stretched per image, so the frames of a video keep
their relative brightness.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path

SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Pillow's modes for 16-bit greyscale PNGs ("I" in older Pillows): scaled, not clipped, by `rgb8`."""


def rgb8(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an opened image; 16-bit greyscale keeps its high byte (module docstring)."""
    if img.mode in SIXTEEN_BIT_GREY_MODES:
        values = np.asarray(img).astype(np.int64)
        grey = (np.clip(values, 0, 0xFFFF) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB image of at least 2 x 2 pixels; return it as a contiguous array.

    `name` is the image as the message should call it ("frame", "source image")."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"{name} must be an HxWx3 uint8 RGB array, got shape {shape} dtype {dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"{name} is too small: {image.shape[1]}x{image.shape[0]} pixels")
    return np.ascontiguousarray(image)


def frame_digest(image: np.ndarray) -> str:
    """sha256 of an (H, W, 3) uint8 image's shape and pixels: what identifies a reference frame (embeddings record
    their frames' digests, so that reusing them tells the video they were fitted on from another one)."""
    image = np.ascontiguousarray(check_image(image))
    digest = hashlib.sha256(np.asarray(image.shape, dtype=np.int64).tobytes())
    digest.update(image.tobytes())
    return digest.hexdigest()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied; InputError if missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image {str(path)!r} does not exist")
    if not path.is_file():
        raise InputError(f"image {str(path)!r} is not a file")
    try:
        with Image.open(path) as img:
            return rgb8(ImageOps.exif_transpose(img)).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {str(path)!r}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}") \
            from None


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image atomically; the format follows the extension."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path
