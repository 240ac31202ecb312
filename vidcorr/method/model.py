"""The latent diffusion model: UNet + VAE encoder + the seed's DDIM scheduler.

Only the UNet and the VAE's encoder are ever used (no text encoder, tokenizer, decoder or safety
checker), so only those are loaded. Everything is frozen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from vidcorr.config import DEFAULT_MODEL
from vidcorr.errors import InputError, ModelLoadError
from vidcorr.memory import ModelSize
from vidcorr.method.attention import AttentionCapture, CrossAttentionLayer, number_layers

# Compiled variants allowed per function (dynamo's default is 8): SD 1.x's ResNet blocks see about
# 20 distinct input shapes per batch size.
_RECOMPILE_LIMIT = 64

# SD 1.x UNet and VAE architectures (the configs CompVis/stable-diffusion-v1-4 ships), for building
# the full-size architecture with random weights (speed benchmarks) or on the meta device (tests).
SD14_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
    "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "act_fn": "silu",
}
SD14_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": 512,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
    "act_fn": "silu",
}

# SD 1.5 (runwayml/stable-diffusion-v1-5) is SD 1.4's architecture, retrained.
SD15_UNET_CONFIG, SD15_VAE_CONFIG = SD14_UNET_CONFIG, SD14_VAE_CONFIG

# SD 2.x (stabilityai/stable-diffusion-2-1-base at 512, stabilityai/stable-diffusion-2-1 at 768): the
# same blocks with a 1024-d (OpenCLIP ViT-H) context, linear projections in and out of each
# Transformer2D, and per-block head counts. diffusers' `attention_head_dim` is, despite its name,
# the number of heads (its `num_attention_heads` defaults to it): [5, 10, 20, 20] gives 5, 10, 20 heads
# of 64 channels each at 320, 640, 1280 channels; the mid block takes the last entry (20) and the up
# blocks the list reversed (20, 20, 10, 5). The 768 model upcasts attention to float32 (fp16 overflow).
SD21_BASE_UNET_CONFIG: dict[str, Any] = {
    **SD14_UNET_CONFIG, "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20],
    "use_linear_projection": True, "upcast_attention": False,
}
SD21_UNET_CONFIG: dict[str, Any] = {**SD21_BASE_UNET_CONFIG, "sample_size": 96, "upcast_attention": True}
SD21_BASE_VAE_CONFIG = SD14_VAE_CONFIG
SD21_VAE_CONFIG: dict[str, Any] = {**SD14_VAE_CONFIG, "sample_size": 768}

# name -> (UNet config, VAE config, the hub model whose architecture it is).
ARCHITECTURES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "sd14": (SD14_UNET_CONFIG, SD14_VAE_CONFIG, "CompVis/stable-diffusion-v1-4"),
    "sd15": (SD15_UNET_CONFIG, SD15_VAE_CONFIG, "runwayml/stable-diffusion-v1-5"),
    "sd21-base": (SD21_BASE_UNET_CONFIG, SD21_BASE_VAE_CONFIG, "stabilityai/stable-diffusion-2-1-base"),
    "sd21": (SD21_UNET_CONFIG, SD21_VAE_CONFIG, "stabilityai/stable-diffusion-2-1"),
}

# SD 1.x's block structure (4 levels, 2 layers per block, 16 cross-attention layers, 8 heads, VAE
# /8) with tiny channels: layer numbers and the heads rule mean what they mean for SD.
TINY_UNET_CONFIG: dict[str, Any] = {
    **SD14_UNET_CONFIG, "sample_size": 8, "block_out_channels": [32, 32, 64, 64],
    "cross_attention_dim": 32, "norm_num_groups": 8,
}
TINY_VAE_CONFIG: dict[str, Any] = {
    **SD14_VAE_CONFIG, "sample_size": 64, "block_out_channels": [8, 16, 16, 16], "layers_per_block": 1,
    "norm_num_groups": 4,
}


def seed_scheduler() -> DDIMScheduler:
    """DDIM exactly as the seed builds it (load_ldm): timesteps 980, 960, ..., 0 for 50 steps."""
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`auto` (or None) -> cuda if available, else mps, else cpu."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but this torch build sees no CUDA GPU")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"device {device!r} asked for, but MPS is not available here")
    return resolved


class LDM:
    """A frozen Stable Diffusion UNet + VAE encoder and the seed's DDIM scheduler.

    Build with `LDM.from_pretrained(id_or_folder)`, `LDM(unet=..., vae=...)` (any diffusers
    UNet2DConditionModel and AutoencoderKL), or `LDM.tiny()` (random weights, for tests).
    """

    def __init__(self, unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: DDIMScheduler | None = None,
                 model_id: str = "custom", text_encoder: Any = None, tokenizer: Any = None,
                 source: str | None = None, random_weights: bool = False) -> None:
        check_architecture(unet)
        self.unet = unet.eval().requires_grad_(False)
        # Only the encoder half of the VAE is ever run; drop the decoder's weights.
        vae.decoder = None
        vae.post_quant_conv = None
        self.vae = vae.eval().requires_grad_(False)
        if next(self.vae.parameters()).device.type == "cpu":
            # oneDNN runs the VAE's full-resolution convolutions 8-13 % faster in NHWC (benchmarks/README.md);
            # the same math up to fp32 rounding.
            # (torch's stubs omit Module.to's memory_format keyword)
            cast(Callable[..., torch.nn.Module], torch.nn.Module.to)(self.vae, memory_format=torch.channels_last)
        self.scheduler = scheduler or seed_scheduler()
        self.model_id = model_id
        self.source = source
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.random_weights = random_weights
        self._capture: AttentionCapture | None = None
        self._capture_key: tuple | None = None
        self._fingerprint: str | None = None
        self.autocast: torch.dtype | None = None
        self.compiled = False

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def tiny(cls, seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LDM:
        """Random weights with SD 1.x's block structure and tiny channels. Its output means nothing."""
        unet, vae = random_components(TINY_UNET_CONFIG, TINY_VAE_CONFIG, seed)
        return cls(_cast(unet, device, dtype), _cast(vae, device, dtype), model_id="tiny", random_weights=True)

    @classmethod
    def random_sd14(cls, seed: int = 0, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> LDM:
        """The full SD 1.x architecture with random weights (speed does not depend on weight values)."""
        return cls.random_architecture("sd14", seed, device, dtype)

    @classmethod
    def random_architecture(cls, name: str, seed: int = 0, device: str | torch.device = "cpu",
                            dtype: torch.dtype = torch.float32) -> LDM:
        """A real SD architecture (`ARCHITECTURES`: sd14, sd15, sd21-base, sd21) with random weights.

        device="meta" builds it without allocating or initializing any weight, in well under a second:
        enough for the layer numbering, the heads, the context width and the native resolution (no
        forward can run there). model_id is f"{name}-random".
        """
        if name not in ARCHITECTURES:
            raise InputError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
        unet_config, vae_config, _ = ARCHITECTURES[name]
        if torch.device(device).type == "meta":
            with torch.device("meta"):
                unet, vae = UNet2DConditionModel(**unet_config), AutoencoderKL(**vae_config)
            return cls(_cast(unet, "meta", dtype), _cast(vae, "meta", dtype), model_id=f"{name}-random",
                       random_weights=True)
        unet, vae = random_components(unet_config, vae_config, seed)
        return cls(_cast(unet, device, dtype), _cast(vae, device, dtype), model_id=f"{name}-random",
                   random_weights=True)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike = DEFAULT_MODEL, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> LDM:
        """Load the UNet and VAE of a diffusers Stable Diffusion folder or hub id.

        Uses the normal Hugging Face cache (HF_HOME, HF_HUB_OFFLINE apply). With dtype float16 the
        repository's fp16 variant is taken where it has one. Raises ModelLoadError, with one line
        saying how to get the weights, when they cannot be had.
        """
        source = str(model)
        local = Path(source).expanduser()
        if not local.exists() and looks_like_a_path(source):
            raise ModelLoadError(f"model folder {source!r} does not exist (a local model is a diffusers folder "
                                 "with unet/ and vae/ subfolders)")
        if local.exists():
            if not (local / "unet").is_dir() or not (local / "vae").is_dir():
                raise ModelLoadError(f"{source} is not a diffusers Stable Diffusion folder "
                                     "(it needs unet/ and vae/ subfolders)")
            source = str(local)
            variant = "fp16" if dtype == torch.float16 and any((local / "unet").glob("*.fp16.*")) else None
        else:
            variant = "fp16" if dtype == torch.float16 else None
        try:
            unet, vae = _load_components(source, dtype, variant)
        except ModelLoadError:
            raise
        except Exception as exc:  # hub, file-system and format errors all mean "no weights"
            raise ModelLoadError(_explain_load_failure(str(model), exc)) from exc
        return cls(unet.to(device), vae.to(device), model_id=str(model), source=source)

    # --- how the math is computed ------------------------------------------------------------------
    def set_autocast(self, dtype: torch.dtype | None) -> LDM:
        """Run the UNet and VAE under torch.autocast in `dtype` (float16 or bfloat16; None: off).

        The weights stay as they are (keep them float32), and so do the embeddings, the maps handed
        back and the loss; `fit` scales the loss against fp16 gradient underflow (torch.amp.GradScaler).
        Autocast changes the rounding, so its points can differ slightly from float32's.
        """
        if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
            raise InputError(f"autocast takes float16 or bfloat16, not {dtype}")
        if dtype is not None and self.dtype != torch.float32:
            raise InputError(f"autocast needs float32 weights; these are {str(self.dtype).removeprefix('torch.')} "
                             "(load the model with dtype=torch.float32)")
        self.autocast = dtype
        return self

    @property
    def autocast_name(self) -> str | None:
        """'float16', 'bfloat16' or None: recorded beside the weights' dtype in results."""
        return None if self.autocast is None else str(self.autocast).removeprefix("torch.")

    def compute_context(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast region the UNet and VAE run in (a no-op without autocast)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def compile(self, mode: str | None = None) -> LDM:
        """torch.compile the VAE encoder (weights frozen into the graph: it only ever runs without
        gradients) and every ResNet block of the UNet (forward and backward).

        The attention layers stay eager: their processors capture maps and stop the forward. The
        first call at each batch size compiles (minutes on a CPU, cached on disk by inductor); the
        math is the same up to fp32 rounding. Needs a C++ compiler on a CPU, Triton on CUDA.
        """
        if self.compiled:
            return self
        # compile-only modules, loaded when compiling is asked for
        import torch._dynamo
        from diffusers.models.resnet import ResnetBlock2D

        # All ResNet blocks share one forward; each distinct input shape is one compiled variant, and
        # SD's UNet has more of them than dynamo's default limit of 8 (the rest would run eager).
        limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
        setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), _RECOMPILE_LIMIT))
        # dynamic=False: one static graph per batch size. Automatic dynamic shapes would recompile
        # size-generic graphs as soon as fit and locate use different batch sizes, and those ran
        # slower than eager on a CPU (benchmarks/README.md).
        self.vae.encoder.compile(mode=mode, dynamic=False, options={"freezing": True})
        for module in self.unet.modules():
            if isinstance(module, ResnetBlock2D):
                module.compile(mode=mode, dynamic=False)
        self.compiled = True
        return self

    # --- properties ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def context_dim(self) -> int:
        """D of the (77, D) embeddings the UNet's cross-attention takes (768 for SD 1.x)."""
        return int(self.unet.config.cross_attention_dim)

    @property
    def native_image_size(self) -> int:
        """The resolution the model was trained at: unet.config.sample_size x the VAE factor (512 for SD
        1.x and 2.x-base, 768 for SD 2.x 768, 64 for tiny). Config(image_size=None) resolves to it."""
        return int(self.unet.config.sample_size) * self.latent_factor

    @property
    def sizes(self) -> ModelSize:
        """What a run's memory depends on in this model (`vidcorr.memory`): D, the native image size, the UNet's
        width relative to SD's 320 channels, and the bytes per weight."""
        return ModelSize(self.context_dim, self.native_image_size, self.unet.config.block_out_channels[0] / 320,
                         int(torch.finfo(self.dtype).bits // 8))

    @property
    def latent_factor(self) -> int:
        """Image pixels per latent pixel (8 for SD's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.unet.parameters()) + sum(p.numel() for p in self.vae.parameters())

    @property
    def is_full_size(self) -> bool:
        """True for SD-sized models (hours per point on a CPU), False for tiny test models."""
        return self.num_parameters > 100_000_000

    def fingerprint(self) -> str:
        """A short hash of the UNet's architecture and a few of its weights (fp16-rounded, so the
        fp32 and fp16 copies of one model agree); embeddings record it to refuse other models."""
        if self._fingerprint is None:
            architecture = {k: v for k, v in self.unet.config.items() if not k.startswith("_")}
            digest = hashlib.sha256(json.dumps(architecture, sort_keys=True, default=str).encode())
            for name in ("conv_in.weight", "conv_out.weight"):
                tensor = self.unet.get_parameter(name)
                if tensor.device.type != "meta":
                    digest.update(tensor.detach().to("cpu", torch.float16).numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    # --- the pieces of the method -----------------------------------------------------------------
    def layers(self, image_size: int) -> list[CrossAttentionLayer]:
        """The seed's numbering of this UNet's cross-attention layers at `image_size`."""
        return number_layers(self.unet, image_size // self.latent_factor)

    def select_layers(self, image_size: int, indices: Sequence[int]) -> list[CrossAttentionLayer]:
        """Layers by seed number; an unknown number is an InputError listing the valid ones."""
        available = self.layers(image_size)
        bad = [i for i in indices if not 0 <= i < len(available)]
        if bad:
            raise InputError(f"layers {bad} do not exist: this model has layers 0..{len(available) - 1} "
                             f"at image size {image_size}")
        return [available[i] for i in indices]

    def timestep(self, num_inference_steps: int, index: int) -> int:
        """The DDIM timestep at `index` of a `num_inference_steps` schedule (50, -8 -> 140)."""
        self.scheduler.set_timesteps(num_inference_steps)
        return int(self.scheduler.timesteps[index])

    @torch.no_grad()
    def encode(self, images: torch.Tensor, max_batch: int | None = None) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> latents (B, 4, S/8, S/8) float32: the posterior mean, scaled."""
        chunks = images.split(max_batch or images.shape[0])
        scale = float(self.vae.config.scaling_factor)
        with self.compute_context():
            out = [self.vae.encode(c.to(self.device, self.dtype) * 2 - 1).latent_dist.mean * scale for c in chunks]
        return torch.cat(out).float()

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        """The scheduler's forward process at `timestep`, with the given noise (B, 4, h, w)."""
        t = torch.full((latents.shape[0],), timestep, dtype=torch.long)
        alphas = self.scheduler.alphas_cumprod
        return (alphas[t].sqrt().view(-1, 1, 1, 1).to(latents) * latents
                + (1 - alphas[t]).sqrt().view(-1, 1, 1, 1).to(latents) * noise.to(latents))

    def attention_maps(self, latents: torch.Tensor, timestep: int, contexts: torch.Tensor,
                       layers: Sequence[CrossAttentionLayer], heads: str = "second_half", token_index: int = 1,
                       stop_early: bool = True, explicit_everywhere: bool = False) -> dict[int, torch.Tensor]:
        """One UNet call; token `token_index`'s cross-attention maps on `layers`.

        latents (B, 4, h, w); contexts (B, T, D), used directly as encoder_hidden_states (no CFG).
        Returns {layer index: (B, heads_kept, s, s) float32}, differentiable w.r.t. `contexts`.
        """
        capture = self._capture_for(layers, explicit_everywhere)
        t = torch.full((latents.shape[0],), timestep, device=self.device, dtype=torch.long)
        sample = latents.to(self.device, self.dtype)
        hidden = contexts.to(self.device, self.dtype)
        with self.compute_context():
            maps = capture.run(lambda: self.unet(sample, t, encoder_hidden_states=hidden),
                               token_index=token_index, heads=heads, stop_early=stop_early)
        return {index: m.float() for index, m in maps.items()}

    def _capture_for(self, layers: Sequence[CrossAttentionLayer], explicit_everywhere: bool) -> AttentionCapture:
        # Processors are installed once per layer set, never per step.
        key = (tuple(layer.name for layer in layers), explicit_everywhere)
        if self._capture_key != key:
            self._capture = AttentionCapture(self.unet, layers, explicit_everywhere=explicit_everywhere)
            self._capture_key = key
        assert self._capture is not None
        return self._capture


def check_architecture(unet: Any) -> None:
    """Refuse, in one line, a UNet whose cross-attention the method cannot read: the method feeds a
    (77, D) embedding as the only condition and reads the seed-numbered maps of square latents."""
    config = unet.config

    def refuse(why: str) -> None:
        raise ModelLoadError(f"unsupported UNet architecture: {why}; vidcorr handles Stable Diffusion 1.x and "
                             "2.x UNets (e.g. SD 1.4, SD 1.5, SD 2.1-base, SD 2.1)")

    if not isinstance(config.sample_size, int):
        refuse(f"sample_size {config.sample_size!r} is not square")
    if not isinstance(config.cross_attention_dim, int):
        refuse(f"cross_attention_dim {config.cross_attention_dim!r} varies per block")
    if config.in_channels != 4:
        refuse(f"in_channels is {config.in_channels}, not the VAE's 4 latent channels (an inpainting, "
               "depth or upscaling UNet?)")
    for field, what in (("addition_embed_type", "added conditioning (SDXL's text_time?)"),
                        ("class_embed_type", "class labels"), ("num_class_embeds", "class labels"),
                        ("encoder_hid_dim", "a projected context")):
        if config.get(field) is not None:
            refuse(f"{field}={config.get(field)!r} needs {what}")
    only_cross = config.get("only_cross_attention")
    if config.get("dual_cross_attention") or any(only_cross if isinstance(only_cross, (list, tuple)) else [only_cross]):
        refuse("dual or cross-attention-only transformer blocks")
    if not number_layers(unet, int(config.sample_size)):
        refuse("no cross-attention layer at or below 1/16 of the input resolution, which the seed's numbering "
               "counts")


def random_components(unet_config: dict[str, Any], vae_config: dict[str, Any],
                      seed: int = 0) -> tuple[UNet2DConditionModel, AutoencoderKL]:
    """A UNet and a whole VAE (decoder too, so they can be saved as a diffusers folder) with random
    weights drawn from `seed`, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(**unet_config), AutoencoderKL(**vae_config)


def _cast(module: torch.nn.Module, device: str | torch.device, dtype: torch.dtype) -> Any:
    # diffusers' ModelMixin.to warns about casting; casting the tensors through nn.Module's own
    # _apply is the same operation without the message.
    return torch.nn.Module.to(module, device=device, dtype=dtype)


def _load_components(source: str, dtype: torch.dtype, variant: str | None) -> tuple[Any, Any]:
    def load(cls: Any, subfolder: str) -> Any:
        try:
            return cls.from_pretrained(source, subfolder=subfolder, torch_dtype=dtype, variant=variant)
        except (OSError, ValueError):
            if variant is None:
                raise
            # No fp16 files in this repository: take the full-precision ones and cast.
            return cls.from_pretrained(source, subfolder=subfolder, torch_dtype=dtype)

    return load(UNet2DConditionModel, "unet"), load(AutoencoderKL, "vae")


def looks_like_a_path(model: str) -> bool:
    """Whether `model` names a local folder rather than a hub id ("namespace/name", one slash)."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (model.startswith(("./", "../", "/", "~", ".\\", "..\\")) or model in (".", "..")
            or model.count("/") > 1 or model.endswith(tuple(seps)) or any(sep in model for sep in seps - {"/"}))


def hub_commands() -> tuple[str, str]:
    """(download, login) commands of the installed huggingface_hub: its `hf` entry point where it ships
    one (huggingface_hub >= 0.34), else the older `huggingface-cli`."""
    try:
        scripts = {e.name for e in metadata.distribution("huggingface_hub").entry_points
                   if e.group == "console_scripts"}
    except metadata.PackageNotFoundError:
        scripts = set()
    if "hf" in scripts:
        return "hf download", "hf auth login"
    return "huggingface-cli download", "huggingface-cli login"


def _explain_load_failure(model: str, exc: BaseException) -> str:
    """One line: why the weights of `model` cannot be had, and how to get them."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:  # the hub's real reason is often a cause or context
        chain.append(f"{type(seen).__name__} {seen}")
        seen = seen.__cause__ or seen.__context__
    text = " | ".join(chain).lower()
    download, login = hub_commands()
    local = "or use a local diffusers folder (with unet/ and vae/) instead"
    fix = f"download them once with `{download} {model}` (then HF_HUB_OFFLINE=1 works), {local}"
    if "gated" in text or "401" in text or "403" in text or "access to model" in text:
        why = f"the repository is gated or private: accept its licence on the hub and log in (`{login}`)"
        return f"cannot load Stable Diffusion weights {model!r}: {why}; {local}"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        why = "they are not in the local Hugging Face cache and the hub is off (HF_HUB_OFFLINE=1)"
    elif any(s in text for s in ("offline", "connection", "name or service not known", "timed out", "resolve host",
                                 "network is unreachable", "cannot find the requested files in the local cache")):
        why = "they are not in the local Hugging Face cache and the hub cannot be reached"
    elif "repositorynotfound" in text or "404" in text or "not a valid model identifier" in text:
        why = "no such model on the hub and no such local folder"
    else:
        first = str(exc).strip().splitlines()
        why = first[0] if first else type(exc).__name__
    return f"cannot load Stable Diffusion weights {model!r}: {why}; {fix}"
