"""What one fit or locate run needs from the model and config, derived once."""

from __future__ import annotations

from dataclasses import dataclass

from .attention import CrossAttentionLayer
from .config import Config
from .geometry import crop_side
from .model import LDM


@dataclass(frozen=True)
class Plan:
    """size: S, the model space's side; side: a crop's side in that space; latent_shape: (4, S/8,
    S/8); layers: the numbered layers cfg.layers names; timestep: the DDIM timestep used."""

    size: int
    side: int
    latent_shape: tuple[int, int, int]
    layers: list[CrossAttentionLayer]
    timestep: int


def make_plan(ldm: LDM, cfg: Config, timestep_index: int) -> Plan:
    size = cfg.image_size
    latent = size // ldm.latent_factor
    return Plan(size, crop_side(size, cfg.crop_percent), (4, latent, latent), ldm.select_layers(size, cfg.layers),
                ldm.timestep(cfg.num_inference_steps, timestep_index))
