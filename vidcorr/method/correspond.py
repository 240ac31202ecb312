"""One image pair: fit embeddings on the source points, locate them on the target (``vidcorr match`` and the
pair benchmarks both run this)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vidcorr.config import Config
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress, fit
from vidcorr.method.locate import Location, locate
from vidcorr.method.model import LDM


@dataclass(frozen=True)
class Correspondence:
    """The method's answer for one pair.

    Attributes:
        embeddings: the (K points x restarts) embeddings fitted on the source.
        target: their :class:`~vidcorr.locate.Location` on the target: ``points`` float64 (K, 2) x, y in the
            target's pixels, ``confidence`` (K,), ``maps`` float32 (K, L, S, S) when asked for.
        source_maps: float32 (K, L, S, S) maps of the embeddings located on their own source image, or None.
    """

    embeddings: Embeddings
    target: Location
    source_maps: torch.Tensor | None


def correspond(ldm: LDM, src_image: np.ndarray, trg_image: np.ndarray, src_xy: np.ndarray, cfg: Config, *,
               return_maps: bool = False, progress: Progress | None = None,
               point_ids: list[int] | None = None) -> Correspondence:
    """Fit one embedding per source point (all points in one :func:`vidcorr.fit` call), locate them on the target.

    Args:
        ldm: the model.
        src_image, trg_image: uint8 (H, W, 3) RGB images.
        src_xy: float (K, 2) x, y source points in the source's pixels.
        cfg: the hyper-parameters.
        return_maps: also keep the attention maps on the target, and locate the embeddings on the source image
            for its maps (one more locate; for the viewer only).
        progress: ``progress(stage, done, total)`` for the fit steps and the locate crops.
        point_ids: (K,) keys of the points' random streams (default 0..K-1; a benchmark keys them by pair and
            keypoint, ``vidcorr.streams.item_point_ids``).

    Returns:
        The :class:`Correspondence`.
    """
    embeddings = fit(ldm, src_image, src_xy, cfg, progress=progress, point_ids=point_ids)
    target = locate(ldm, trg_image, embeddings, cfg, progress=progress, return_maps=return_maps, point_ids=point_ids)
    source_maps = (locate(ldm, src_image, embeddings, cfg, return_maps=True, point_ids=point_ids).maps
                   if return_maps else None)
    return Correspondence(embeddings, target, source_maps)
