"""Independent random streams, one per (purpose, point, restart, ...) sample.

Every random draw of the method (initial embedding, flip, crop corner, noise) comes from the
stream of the sample it belongs to, drawn in the seed's order within that stream. The batched path
and the sequential reference path therefore see the same draws whatever their batch layout, which
is what lets a test demand that they agree. Streams are CPU generators, so results do not depend on
the device either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from vidcorr.errors import InputError

INIT = 1
FIT = 2
LOCATE = 3


def stream(seed: int, *key: int) -> torch.Generator:
    """A CPU generator seeded from `seed` and the sample's key (purpose, point id, restart, ...)."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(int(k) for k in key)).encode()).digest()
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
    return generator


def fit_key(point_id: int, restart: int, frame: int | None = None) -> tuple[int, ...]:
    """The key of one fit sample's stream: a label of a point, under one restart.

    A point with one label draws from ``(FIT, point, restart)``, the single-image fit's key, whatever its
    frame: one label fits exactly as before. Each label of a point with several draws from its own
    ``(FIT, point, frame, restart)`` (give `frame`), so adding a label never changes another point's draws.
    """
    if frame is None:
        return (FIT, int(point_id), int(restart))
    return (FIT, int(point_id), int(frame), int(restart))


def draw_noise(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Noise for add_noise: uniform [0, 1) (the seed's torch.rand_like), Gaussian, or zeros."""
    if kind == "uniform":
        return torch.rand(shape, generator=generator)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator)
    return torch.zeros(shape)


def item_point_ids(item: str, count: int) -> list[int]:
    """Stream keys of the `count` points of one named item (a benchmark pair, a TAP-Vid video).

    Point k of item `item` gets its own key, so no two pairs (or videos) share random draws, and a pair's
    draws do not depend on which pairs run before it, in which shard or batch. The key is an integer: the
    item name's SHA-256 (64 bits) shifted left by 20 bits, plus k (k < 2**20).
    """
    if not 0 <= count <= 1 << 20:
        raise ValueError(f"an item has at most {1 << 20} points, got {count}")
    base = int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "little")
    return [(base << 20) + k for k in range(count)]


def point_ids(ids: Sequence[int] | None, count: int) -> list[int]:
    """The stream keys of `count` points: `ids` as ints (default 0..count-1), one per point.

    Raises:
        InputError: `ids` has another length.
    """
    keys = list(range(count)) if ids is None else [int(i) for i in ids]
    if len(keys) != count:
        raise InputError(f"point_ids has {len(keys)} entries for {count} points")
    return keys
