"""How many (point x restart) samples go through the UNet at once.

Micro-batching changes how, never what, is computed: per-sample losses are summed, so gradients
accumulate to the same values, and inference maps are per sample anyway.
"""

from __future__ import annotations

import os

import torch

from vidcorr.config import Config
from vidcorr.method.model import LDM

# Memory for one 512x512 sample through the SD 1.x UNet (fp32), with margin: activations kept for the
# backward pass of the early-stopped UNet (fit; measured +0.7 GB per sample on a CPU) and peak transient
# memory without gradients (locate).
_FIT_BYTES_SD_512 = 1.0e9
_LOCATE_BYTES_SD_512 = 0.6e9
_MAX_AUTO_BATCH = 64


def sample_bytes(ldm: LDM, image_size: int, training: bool) -> float:
    """Estimated device bytes one sample needs, scaled from SD 1.x at 512 by area, width and dtype."""
    base = _FIT_BYTES_SD_512 if training else _LOCATE_BYTES_SD_512
    width = ldm.unet.config.block_out_channels[0] / 320
    dtype_bytes = torch.finfo(ldm.dtype).bits / 8
    return base * (image_size / 512) ** 2 * width * dtype_bytes / 4


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
