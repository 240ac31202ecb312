"""Masks as queries: read a binary or label (palette) mask, and place a grid of query points inside it.

A mask is an image of the reference frame's exact size (never resized: a mask of another size is an
error, since resizing would silently move the object):

- binary: a 1-bit PNG, or a greyscale one with 0 for background (any non-zero value is the object);
- labels: a palette (indexed) PNG such as DAVIS's ``Annotations/480p/<seq>/00000.png``, whose
  palette indices are object ids (0 background), or a greyscale PNG of label values. ``mask_id``
  picks one object; by default every non-zero label is kept.

A colour (RGB) image is accepted only where it is grey (R = G = B), as a greyscale mask saved as
RGB; a coloured one is an error, because colours are not labels.

`grid_in_mask` follows CoTracker's ``segm_mask`` (cotracker/predictor.py): the grid is the one the
same N gives without a mask, laid over the whole frame, and only the points whose pixel is set in the
mask are kept, so the object gets the points of the grid that fall on it (fewer than N x N). The
pixel of a point (x, y) (centres at +0.5) is (floor(y), floor(x)), which is CoTracker's rounding of
its centre-at-integer coordinates. Unlike CoTracker, the test is made at the frame's own resolution
(CoTracker resizes the mask to its model's input with nearest-neighbour sampling first).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidcorr.errors import InputError

DEFAULT_GRID_MARGIN = 0.1


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """The mask file's label image: int64 (H, W), 0 for background.

    1-bit images give 0/1, greyscale and 16-bit images their values, palette images their palette
    indices (not their colours), grey RGB images their grey value.

    Raises:
        InputError: missing or unreadable file, a folder, a coloured RGB image, a float image.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"mask {str(path)!r} is a folder: give the mask image of the reference frame (e.g. "
                         "Annotations/480p/<seq>/00000.png)")
    if not path.is_file():
        raise InputError(f"mask {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("1", "L", "P", "I") or mode.startswith("I;16"):
                return np.asarray(img).astype(np.int64)
            if mode in ("LA", "PA"):
                return np.asarray(img.getchannel(0)).astype(np.int64)
            if mode in ("RGB", "RGBA"):
                rgb = np.asarray(img.convert("RGB")).astype(np.int64)
                if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
                    return rgb[..., 0]
                raise InputError(
                    f"mask {str(path)!r} is a colour image: give a binary PNG, or a palette (indexed) PNG "
                    "whose indices are object labels"
                )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read mask {str(path)!r}: not an image") from None
    raise InputError(f"mask {str(path)!r} has pixel mode {mode!r}: give a binary or palette (indexed) PNG")


def read_mask(
    path: str | os.PathLike, size_wh: tuple[int, int] | None = None, mask_id: int | None = None
) -> np.ndarray:
    """The pixels of one object (mask_id) or of every non-zero label: bool (H, W).

    Args:
        path: the mask image (see the module docstring).
        size_wh: (W, H) of the frame the mask is for; a mask of another size is an error.
        mask_id: the label to keep (>= 1); None keeps every non-zero label.

    Raises:
        InputError: unreadable mask, wrong size, mask_id < 1 or absent from the mask, an empty selection.
    """
    labels = read_labels(path)
    name = str(path)
    height, width = labels.shape
    if size_wh is not None and (width, height) != tuple(size_wh):
        raise InputError(
            f"mask {name!r} is {width}x{height} but the frame is {size_wh[0]}x{size_wh[1]}: "
            "a mask must have the frame's size (it is not resized)"
        )
    present = [int(v) for v in np.unique(labels) if v != 0]
    if mask_id is None:
        if not present:
            raise InputError(f"mask {name!r} is empty: every pixel is 0 (background)")
        return labels != 0
    if isinstance(mask_id, bool) or not isinstance(mask_id, int | np.integer) or mask_id < 1:
        raise InputError(f"mask id {mask_id!r} is invalid: it must be an object label >= 1 (0 is the background)")
    if mask_id not in present:
        listed = ", ".join(map(str, present[:20])) + (", ..." if len(present) > 20 else "") if present else "none"
        raise InputError(f"mask {name!r} has no object {mask_id} (its labels: {listed})")
    return labels == mask_id


def grid_points(n: int, size_wh: tuple[int, int], margin: float = DEFAULT_GRID_MARGIN) -> np.ndarray:
    """An n x n grid of (x, y) pixel positions inside a margin of `margin` of each side, row by row.

    n = 1 gives the frame's centre.

    Returns:
        float64 (n * n, 2) x, y in pixels (centres at +0.5).

    Raises:
        InputError: n < 1.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"grid size {n!r} is invalid: it must be an integer >= 1")
    width, height = size_wh
    xs = np.linspace(margin * width, (1 - margin) * width, n) if n > 1 else np.array([width / 2])
    ys = np.linspace(margin * height, (1 - margin) * height, n) if n > 1 else np.array([height / 2])
    return np.array([[x, y] for y in ys for x in xs], dtype=np.float64)


def grid_in_mask(n: int, mask: np.ndarray, margin: float = DEFAULT_GRID_MARGIN) -> np.ndarray:
    """The points of `grid_points(n, (W, H))` whose pixel is set in `mask` (CoTracker's segm_mask rule).

    Args:
        n: grid side.
        mask: bool (H, W), the frame's size.
        margin: the grid's margin, as in `grid_points`.

    Returns:
        float64 (M, 2) x, y, M <= n * n, in the grid's row-by-row order.

    Raises:
        InputError: no grid point falls inside the mask.
    """
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    points = grid_points(n, (width, height), margin)
    cols = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, width - 1)
    rows = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, height - 1)
    inside = mask[rows, cols]
    if not inside.any():
        raise InputError(
            f"no point of the {n}x{n} grid falls inside the mask ({int(mask.sum())} pixels): use a larger grid"
        )
    return points[inside]
