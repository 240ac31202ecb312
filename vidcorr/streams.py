"""Independent random streams, one per (purpose, point, restart, ...) sample.

Every random draw of the method (initial embedding, flip, crop corner, noise) comes from the
stream of the sample it belongs to, drawn in the seed's order within that stream. The batched path
and the sequential reference path therefore see the same draws whatever their batch layout, which
is what lets a test demand that they agree. Streams are CPU generators, so results do not depend on
the device either.
"""

from __future__ import annotations

import hashlib

import torch

INIT = 1
FIT = 2
LOCATE = 3


def stream(seed: int, *key: int) -> torch.Generator:
    """A CPU generator seeded from `seed` and the sample's key (purpose, point id, restart, ...)."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(int(k) for k in key)).encode()).digest()
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
    return generator


def draw_noise(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Noise for add_noise: uniform [0, 1) (the seed's torch.rand_like), Gaussian, or zeros."""
    if kind == "uniform":
        return torch.rand(shape, generator=generator)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator)
    return torch.zeros(shape)
