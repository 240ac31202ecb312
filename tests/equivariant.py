"""A tiny model made exactly equivariant to circular shifts by multiples of its total stride.

Every padded Conv2d pads circularly, and the VAE's Downsample2D (which pads asymmetrically with
zeros through F.pad) gets padding=1 on a circular conv. With noise="none", one full-frame crop and
shifts that are multiples of 64 image pixels (VAE /8 times the UNet's /8), a frame rolled by the
shift gives attention maps rolled by the shift.
"""

from __future__ import annotations

import cv2
import numpy as np
from diffusers.models.downsampling import Downsample2D
from torch import nn

from vidcorr import LDM, Config

TOTAL_STRIDE = 64


def equivariant_tiny(seed: int = 0) -> LDM:
    ldm = LDM.tiny(seed=seed)
    for module in list(ldm.unet.modules()) + list(ldm.vae.modules()):
        if isinstance(module, Downsample2D) and module.padding == 0:
            module.padding = 1  # skips Downsample2D's own asymmetric F.pad
            module.conv.padding = (1, 1)
            module.conv._reversed_padding_repeated_twice = (1, 1, 1, 1)  # computed at init
        if isinstance(module, nn.Conv2d) and any(p > 0 for p in module.padding):
            module.padding_mode = "circular"
    return ldm


def exact_config(image_size: int = 256) -> Config:
    # One full-frame crop and no noise: nothing random and nothing position-dependent.
    return Config(image_size=image_size, noise="none", crop_percent=100.0, restarts=1, crops=1, num_steps=6,
                  lr=0.5)


def write_lossless_video(path, frames, fps: float = 12.0) -> None:
    """FFV1 in AVI: decoded frames equal the written ones bit for bit (decord and OpenCV)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def rolled_frames(base: np.ndarray, shifts_xy: list[tuple[int, int]]) -> list[np.ndarray]:
    return [np.roll(base, (dy, dx), axis=(0, 1)) for dx, dy in shifts_xy]


def interior_shifts(points_xy: np.ndarray, size: int, margin: int = 40) -> list[tuple[int, int]]:
    """Non-zero shifts (multiples of TOTAL_STRIDE) keeping every point >= margin px from the borders.

    Bilinear upsampling clamps at the image border, so only there is a rolled map not exactly the
    roll of the map; points kept away from it move exactly.
    """
    grid = range(0, size, TOTAL_STRIDE)
    ok = []
    for sx in grid:
        for sy in grid:
            moved = (points_xy + [sx, sy]) % size
            if (sx, sy) != (0, 0) and np.all((moved >= margin) & (moved <= size - margin)):
                ok.append((sx, sy))
    return ok
