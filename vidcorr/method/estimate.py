"""How long a run will take, measured on the machine before it starts (for CPU warnings)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from vidcorr.config import Config
from vidcorr.method.model import LDM
from vidcorr.method.plan import image_size, prepare


@dataclass(frozen=True)
class Estimate:
    """Seconds for one UNet forward and one VAE encode at batch 1, and the whole run's estimate."""

    unet_forward_s: float
    vae_encode_s: float
    fit_s: float
    locate_s: float

    @property
    def total_s(self) -> float:
        return self.fit_s + self.locate_s


@torch.no_grad()
def estimate_run(ldm: LDM, cfg: Config, num_points: int, num_images: int) -> Estimate:
    """Time one forward and one encode, then scale to fitting `num_points` and locating them on
    `num_images` images. A backward pass is counted as two forwards. A compiled model is timed on
    its second call: the first one compiles."""
    cfg = prepare(ldm, cfg)
    size = image_size(cfg)
    latent = torch.zeros(1, 4, size // ldm.latent_factor, size // ldm.latent_factor)
    contexts = torch.randn(1, cfg.num_tokens, ldm.context_dim)
    layers = ldm.select_layers(size, cfg.layers)
    for _ in range(2 if ldm.compiled else 1):
        start = time.perf_counter()
        ldm.encode(torch.rand(1, 3, size, size))
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        ldm.attention_maps(latent, 0, contexts, layers, cfg.heads, cfg.token_index, stop_early=cfg.stop_early)
        forward_s = time.perf_counter() - start
    samples = num_points * cfg.restarts
    fit_s = cfg.num_steps * samples * (encode_s + 3 * forward_s)
    locate_s = num_images * cfg.crops * (samples * forward_s + encode_s)
    return Estimate(forward_s, encode_s, fit_s, locate_s)
