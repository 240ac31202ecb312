"""How many (point x restart) samples go through the UNet at once.

Micro-batching changes how, never what, is computed: per-sample losses are summed, so gradients
accumulate to the same values, and inference maps are per sample anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from vidcorr import memory
from vidcorr.config import Config
from vidcorr.method.model import LDM

_MAX_AUTO_BATCH = 64


def sample_bytes(ldm: LDM, image_size: int, training: bool) -> float:
    """Estimated device bytes one sample needs (`vidcorr.memory.sample_bytes`: SD 1.x's at 512, scaled by area,
    width and dtype)."""
    return memory.sample_bytes(image_size, ldm.sizes, training)


def device_available(ldm: LDM) -> float | None:
    """Free memory of the model's device where it is not the host's (CUDA), else None (the host's: see
    `vidcorr.memory.check_memory`)."""
    if ldm.device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(ldm.device)
    return float(free)


def auto_batch(ldm: LDM, cfg: Config, training: bool, budget_bytes: float | None = None) -> int:
    """Samples per UNet call: cfg.max_batch if set, else what fits in `budget_bytes` (default: 80 %
    of free CUDA memory, or a quarter of the machine's RAM on other devices)."""
    if cfg.max_batch is not None:
        return cfg.max_batch
    if budget_bytes is None:
        device = ldm.device
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget_bytes = 0.8 * free
        else:
            budget_bytes = 0.25 * _physical_memory()
    size = cfg.image_size or ldm.native_image_size
    return int(max(1, min(_MAX_AUTO_BATCH, budget_bytes // sample_bytes(ldm, size, training))))


def encode_batch(ldm: LDM, batch: int) -> int:
    """Images per VAE encode call: `batch`, except one at a time on a CPU.

    The encoder's full-resolution activations (128 MB per 512x512 image, fp32) make larger CPU
    batches slower per image: 4 crops took 41.7-43.8 s one at a time and 50.2-53.3 s as one batch
    of 4 on a 2-core CPU (benchmarks/README.md). The latents are the same to fp32 rounding.
    """
    return 1 if ldm.device.type == "cpu" else batch


def _physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8e9


def chunks(total: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` covering range(total)."""
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def chunk_progress(progress: Callable[[str, int, int], None] | None, chunk: int,
                   num_chunks: int) -> Callable[[str, int, int], None] | None:
    """`progress` for one of `num_chunks` chunks of points that each report (stage, done, total): counted over all
    chunks, so a progress bar runs once from 0 to the end."""
    if progress is None or num_chunks == 1:
        return progress
    report = progress
    return lambda stage, done, total: report(stage, chunk * total + done, num_chunks * total)
