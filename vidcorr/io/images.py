"""Reading and writing still images (RGB uint8), with one-line errors for bad files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied; InputError if missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image {str(path)!r} does not exist")
    if not path.is_file():
        raise InputError(f"image {str(path)!r} is not a file")
    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {str(path)!r}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}") \
            from None


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image atomically; the format follows the extension."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path
