"""Every hyper-parameter of fitting and locating, in one frozen dataclass.

`Config()` is the `paper` preset: the seed's defaults (ubc-vision/LDM_correspondences), value for value.
Other presets change named fields only and say so in `PRESET_NOTES`; the CLI passes on only the options a
user set, so no default is restated anywhere else.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vidcorr.errors import InputError

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"
"""The model the paper used (SD 1.4): what every command and ``LDM.from_pretrained`` load by default."""
DEFAULT_VISIBILITY_THRESHOLD = 0.5
"""A tracked point is visible where its confidence is at least this (``vidcorr.track``)."""

SIGMA_SIZE = 512
"""The model-space side `Config.sigma` is given at (the seed's); it scales with the image size from there."""

NoiseKind = Literal["uniform", "gaussian", "none"]
HeadsRule = Literal["second_half", "all"]


@dataclass(frozen=True)
class Config:
    """Hyper-parameters of the method. Pixel sizes are in the `image_size` x `image_size` space."""

    # --- model input -------------------------------------------------------------------------
    # The seed squashes every image to 512x512 (no aspect kept) before anything else: SD 1.4's
    # native resolution. None means the model's native resolution, unet.config.sample_size x the
    # VAE factor (`LDM.native_image_size`): 512 for SD 1.x, so the paper preset is unchanged, 768
    # for SD 2.x 768 models, 64 for `LDM.tiny()`. Every pipeline resolves it against its model
    # first (`plan.prepare`), and outputs record the resolved number.
    image_size: int | None = None
    # Cross-attention layers in the seed's numbering (attention.number_layers): up 16x16 x3 and
    # the first up 32x32 layer, the seed's eval default.
    layers: tuple[int, ...] = (5, 6, 7, 8)
    # The seed keeps attn[h // 2:], a prompt-to-prompt leftover that assumed classifier-free
    # guidance: with no CFG that is the second half of the heads (4..7 of SD 1.x's 8).
    heads: HeadsRule = "second_half"
    # Only the map of the token at this index is supervised and read (the seed's `[..., 1]`).
    token_index: int = 1
    # Length of the optimized embedding: CLIP's context length in SD 1.x.
    num_tokens: int = 77

    # --- diffusion -----------------------------------------------------------------------------
    # DDIM with 50 steps gives timesteps 980, 960, ..., 0; the seed fits at timesteps[-8] (t=140)
    # and locates at timesteps[-3] (t=40), the latter hard-coded whatever its noise_level flag says.
    num_inference_steps: int = 50
    fit_timestep_index: int = -8
    locate_timestep_index: int = -3
    # The seed draws the "noise" with torch.rand_like: uniform on [0, 1), not Gaussian.
    noise: NoiseKind = "uniform"

    # --- fitting -------------------------------------------------------------------------------
    # The seed's defaults.
    num_steps: int = 129
    lr: float = 0.0023755632081200314
    # Gaussian target std in pixels of a 512 x 512 model space (the seed's default, at the seed's size).
    # Like the crop side, margin and corner anchors it is relative: at another image_size the target's
    # std is sigma * image_size / 512 pixels (`sigma_px`), so SD 2.x at 768 gets the seed's relative width.
    sigma: float = 27.97853316316864
    # Side of a random crop as a percentage of the image side (the seed's default).
    crop_percent: float = 93.16549294381423
    # The point stays at least this fraction of the crop size from the crop's edges (crop_image).
    crop_margin: float = 0.15
    # Probability of a horizontal flip per fit step; the seed's eval runs with 0.
    flip_prob: float = 0.0
    # Independent optimizations per point (the seed's num_opt_iterations); maps are averaged.
    restarts: int = 5
    # Start embeddings from the CLIP text encoder's output for this prompt instead of N(0, 1)
    # noise. Off in the seed.
    init_prompt: str | None = None

    # --- locating ------------------------------------------------------------------------------
    # Crop iterations per embedding (the seed's num_iterations): 4 corner crops, then random crops
    # whose window keeps the running argmax at least crop_margin of the crop from its edges.
    crops: int = 20

    # --- execution (changes how, never what, is computed) ------------------------------------
    seed: int = 0
    # Most (point x restart) samples per UNet call; None sizes micro-batches automatically.
    max_batch: int | None = None
    # Stop the UNet after the deepest captured layer (the rest cannot change the maps).
    stop_early: bool = True

    def __post_init__(self) -> None:
        _check(self.image_size is None or (self.image_size > 0 and self.image_size % 64 == 0), "image_size",
               self.image_size, "a positive multiple of 64")
        _check(len(self.layers) > 0 and all(int(i) >= 0 for i in self.layers), "layers", self.layers,
               "a non-empty list of layer numbers >= 0")
        _check(self.heads in ("second_half", "all"), "heads", self.heads, "'second_half' or 'all'")
        _check(self.noise in ("uniform", "gaussian", "none"), "noise", self.noise,
               "'uniform', 'gaussian' or 'none'")
        _check(self.num_steps >= 0, "num_steps", self.num_steps, ">= 0")
        _check(self.restarts >= 1, "restarts", self.restarts, ">= 1")
        _check(self.crops >= 1, "crops", self.crops, ">= 1")
        _check(0 < self.crop_percent <= 100, "crop_percent", self.crop_percent, "in (0, 100]")
        _check(0 <= self.crop_margin < 0.5, "crop_margin", self.crop_margin, "in [0, 0.5)")
        _check(0 <= self.flip_prob <= 1, "flip_prob", self.flip_prob, "in [0, 1]")
        _check(self.sigma > 0, "sigma", self.sigma, "> 0")
        _check(self.lr > 0, "lr", self.lr, "> 0")
        _check(self.max_batch is None or self.max_batch >= 1, "max_batch", self.max_batch, ">= 1")
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @staticmethod
    def preset(name: str, **overrides: Any) -> Config:
        """The named preset (`paper`, `balanced`, `fast`), with `overrides` applied on top."""
        if name not in PRESETS:
            raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return dataclasses.replace(Config(**PRESETS[name]), **overrides)

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` applied (validated like any Config)."""
        return dataclasses.replace(self, **changes)

    def sigma_px(self, image_size: int) -> float:
        """The Gaussian target's std in pixels of an `image_size` x `image_size` model space: sigma * size / 512
        (exactly sigma at 512)."""
        return self.sigma * (image_size / SIGMA_SIZE)

    def at_size(self, native_image_size: int) -> Config:
        """This config with image_size resolved: `native_image_size` where image_size is None."""
        return self if self.image_size is not None else self.replace(image_size=int(native_image_size))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Config:
        """Inverse of `to_dict`; unknown keys are an error (a file from a newer vidcorr)."""
        known = {f.name for f in dataclasses.fields(Config)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown config fields {unknown}")
        data = dict(data)
        if "layers" in data:
            data["layers"] = tuple(data["layers"])
        return Config(**data)


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise InputError(f"config {name} must be {expected}, got {value!r}")


# Changes from the paper preset. `balanced` and `fast` change the math (fewer restarts and
# crops); neither has been validated on the benchmarks here.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "balanced": {"restarts": 2, "crops": 8},
    "fast": {"restarts": 1, "crops": 4},
}

PRESET_NOTES: dict[str, str] = {
    "paper": "the seed's schedule: 5 restarts x 129 fit steps, 20 crops per embedding per image",
    "balanced": "2 restarts x 129 fit steps, 8 crops per embedding per image (changes the math)",
    "fast": "1 restart x 129 fit steps, the 4 corner crops per image (changes the math)",
}


LOCATE_FIELDS = ("seed", "crops", "max_batch", "image_size")
"""Config fields a run with fitted embeddings may change: they act at locate time only."""


def config_for(preset: str | None, overrides: Mapping[str, Any] | None = None,
               fitted: Config | None = None) -> Config:
    """The config of a run: the preset (default ``paper``) with the `overrides` that are not None; or, with
    `fitted` (the config of loaded embeddings), that config with its :data:`LOCATE_FIELDS` overridden (and
    the preset's crops, if a preset is named).

    Raises:
        InputError: an unknown preset or a bad value.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if fitted is None:
        return Config.preset(preset or "paper", **given)
    changes = {k: v for k, v in given.items() if k in LOCATE_FIELDS}
    if preset is not None:
        changes = {"crops": Config.preset(preset).crops, **changes}
    return fitted.replace(**changes)


def setting_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON-like settings: ``"start 0 there, 2 now"``."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            found += setting_differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')} {old!r} there, {new!r} now"]
