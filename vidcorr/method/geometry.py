"""Coordinates between an image's own pixels, the square model space and crops.

Conventions: points are (x, y); in an image's own pixels the top-left pixel's centre is (0.5, 0.5).
The model space is the image squashed (no aspect kept) to S x S, S = Config.image_size; a point maps
there by scaling each axis (x * S / W, y * S / H). Crops are square windows of that space, given by
their integer top-left corner and side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# The checks of images and points live in io (no torch); check_points is re-exported for method.fit.
from vidcorr.io.images import check_image
from vidcorr.io.points import check_points as check_points

# The four anchors of the seed's first locate crops, as (x, y) in model space of side 512; they are
# scaled with the model space (run_image_with_tokens_cropped's pixel_locs).
CORNER_ANCHORS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))


@dataclass(frozen=True)
class CropWindow:
    """A square window of the model space: columns x0..x0+size-1, rows y0..y0+size-1."""

    x0: int
    y0: int
    size: int


def squash_points(points_xy: np.ndarray, size_wh: tuple[int, int], image_size: int) -> np.ndarray:
    """Image pixels (N, 2) -> model space of side `image_size`."""
    width, height = size_wh
    scale = np.array([image_size / width, image_size / height])
    return np.asarray(points_xy, dtype=np.float64) * scale


def unsquash_points(points_model: np.ndarray, size_wh: tuple[int, int], image_size: int) -> np.ndarray:
    """Model space (N, 2) -> the image's own pixels; inverse of `squash_points`."""
    width, height = size_wh
    scale = np.array([width / image_size, height / image_size])
    return np.asarray(points_model, dtype=np.float64) * scale


def to_model_image(image: np.ndarray, image_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 -> (3, S, S) float32 in [0, 1], squashed with antialiased bilinear resampling."""
    tensor = torch.from_numpy(check_image(image)).to(device).permute(2, 0, 1).float().div_(255.0)
    if tensor.shape[1:] == (image_size, image_size):
        return tensor
    return F.interpolate(tensor[None], size=(image_size, image_size), mode="bilinear",
                         align_corners=False, antialias=True)[0].clamp_(0.0, 1.0)


def crop_side(image_size: int, crop_percent: float) -> int:
    """Side of a crop: int(S * crop_percent / 100), as the seed truncates it (477 at 512)."""
    return int(image_size * crop_percent / 100)


def crop_corner_range(point: float, image_size: int, side: int, margin: float) -> tuple[int, int]:
    """Inclusive range of a crop's top-left coordinate along one axis (the seed's crop_image).

    The point stays at least int(side * margin) pixels from the crop's edges; the range is clamped
    to [0, S - side], and its float ends truncated with int() as the seed does.
    """
    safe = int(side * margin)
    lo = min(max(0.0, point - side + safe), image_size - side)
    hi = min(max(0.0, point - safe), image_size - side)
    return int(lo), int(hi)


def draw_window(point_xy: tuple[float, float], image_size: int, side: int, margin: float,
                generator: torch.Generator) -> CropWindow:
    """A random crop window for a point in model space: x corner, then y corner, each uniform."""
    x_lo, x_hi = crop_corner_range(point_xy[0], image_size, side, margin)
    y_lo, y_hi = crop_corner_range(point_xy[1], image_size, side, margin)
    x0 = int(torch.randint(x_lo, x_hi + 1, (1,), generator=generator))
    y0 = int(torch.randint(y_lo, y_hi + 1, (1,), generator=generator))
    return CropWindow(x0, y0, side)


def crop_resize(images: Sequence[torch.Tensor], windows: Sequence[CropWindow], out_size: int) -> torch.Tensor:
    """Cut windows[i] from images[i] (each (3, S, S)) and resize bilinearly: (B, 3, out_size, out_size).

    All windows of one call share one side, so they are resized in one interpolate call.
    """
    crops = torch.stack([img[:, w.y0:w.y0 + w.size, w.x0:w.x0 + w.size] for img, w in zip(images, windows,
                                                                                        strict=True)])
    if crops.shape[-1] == out_size:
        return crops
    return F.interpolate(crops, size=(out_size, out_size), mode="bilinear", align_corners=False)


def point_in_crop(point_xy: tuple[float, float], window: CropWindow, out_size: int) -> tuple[float, float]:
    """A model-space point's position in a crop resized to out_size (seed: (p - start) / side * S)."""
    return ((point_xy[0] - window.x0) / window.size * out_size,
            (point_xy[1] - window.y0) / window.size * out_size)


def gaussian_targets(centers_xy: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, 2) centres -> (B, size, size) maps exp(-d^2 / (2 sigma^2)).

    d is measured from integer column/row indices (the seed's gaussian_circle), so a centre at
    (x, y) = (3, 5) peaks at column 3, row 5.
    """
    grid = torch.arange(size, dtype=torch.float32, device=centers_xy.device)
    cx = centers_xy[:, 0].float()[:, None, None]
    cy = centers_xy[:, 1].float()[:, None, None]
    dist_sq = (grid[None, None, :] - cx) ** 2 + (grid[None, :, None] - cy) ** 2
    return torch.exp(-dist_sq / (2.0 * sigma**2))


def argmax_point(maps: torch.Tensor) -> torch.Tensor:
    """(B, S, S) -> (B, 2) x, y of each map's first maximum, at the pixel centre (+0.5)."""
    flat = maps.reshape(maps.shape[0], -1).argmax(dim=1)
    side = maps.shape[-1]
    return torch.stack([flat % side, flat // side], dim=1).float() + 0.5
