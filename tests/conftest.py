"""Shared fixtures: a tiny random-weight model and small synthetic images.

Tests run at image_size 64 (latent 8, the tiny model's native size): the same 11-layer numbering as
SD at 512, at a cost a CPU test suite can pay, single-threaded.
"""

from __future__ import annotations

import os

# Before torch is imported (libgomp reads it once): idle OpenMP threads sleep (vidcorr/threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vidcorr import LDM, Config  # noqa: E402

# Tiny models: one thread is the fastest there is, and it cannot thrash beside other processes.
torch.set_num_threads(1)

SMALL = dict(image_size=64, num_steps=3, restarts=2, crops=6, lr=0.05)


@pytest.fixture(scope="session")
def tiny() -> LDM:
    return LDM.tiny(seed=0)


@pytest.fixture
def small_cfg() -> Config:
    return Config(**SMALL)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB image (uint8), so crops and resizes have structure to move."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    image = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:height, :width]
    image += rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def images() -> tuple[np.ndarray, np.ndarray]:
    return random_image(48, 80, seed=1), random_image(72, 56, seed=2)
