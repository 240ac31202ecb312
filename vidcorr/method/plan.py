"""What one fit or locate run needs from the model and config, derived once."""

from __future__ import annotations

from dataclasses import dataclass

from vidcorr.config import Config
from vidcorr.method.attention import CrossAttentionLayer
from vidcorr.method.geometry import crop_side
from vidcorr.method.model import LDM
from vidcorr.threads import ensure_threads


@dataclass(frozen=True)
class Plan:
    """size: S, the model space's side; side: a crop's side in that space; latent_shape: (4, S/8,
    S/8); layers: the numbered layers cfg.layers names; timestep: the DDIM timestep used; sigma: the fit
    target's std in pixels of that space (`Config.sigma_px`)."""

    size: int
    side: int
    latent_shape: tuple[int, int, int]
    layers: list[CrossAttentionLayer]
    timestep: int
    sigma: float


def prepare(ldm: LDM, cfg: Config | None) -> Config:
    """What every pipeline does first: the config with image_size resolved against the model (None
    -> `ldm.native_image_size`; the result is what outputs record), and the thread policy applied
    once per process (`threads.ensure_threads`)."""
    ensure_threads(small_model=not ldm.is_full_size)
    return (cfg or Config()).at_size(ldm.native_image_size)


def image_size(cfg: Config) -> int:
    """`cfg.image_size` of a config `prepare` resolved (it is None only before that)."""
    size = cfg.image_size
    assert size is not None, "resolve the config with prepare() first"
    return size


def make_plan(ldm: LDM, cfg: Config, timestep_index: int) -> Plan:
    size = image_size(cfg)
    latent = size // ldm.latent_factor
    return Plan(size, crop_side(size, cfg.crop_percent), (4, latent, latent), ldm.select_layers(size, cfg.layers),
                ldm.timestep(cfg.num_inference_steps, timestep_index), cfg.sigma_px(size))
