"""Optimize one text embedding per point (and restart) so its attention map peaks on the point.

Per step and sample, in the seed's order (utils/optimize_token.py, optimize_prompt): flip with
probability flip_prob (x -> S - x); a random crop of crop_percent of the side that keeps the point
at least crop_margin of the crop from its edges; bilinear resize of the crop to S; VAE encode; noise
at the fit timestep; UNet; the chosen layers' maps of token 1 (heads averaged, upsampled to S); MSE
against one Gaussian target at the point's crop position for every layer; an Adam step.

`fit` runs all points x restarts in the UNet's batch dimension (micro-batched); `fit_reference`
runs the seed's literal loops (one point, one restart, batch 1, full UNet, explicit attention) and
is the yardstick for tests and the speed benchmark. Both draw from the same per-sample streams.

Precision: float32 unless the model computes under autocast (`LDM.set_autocast`). Under autocast each
sample (point x restart) is its own Adam parameter: a sample whose gradient is not finite (an fp16
overflow) skips that step alone, its embedding and Adam state untouched, while every other sample
steps. Under float16 the loss is scaled (dynamic loss scaling, as torch.amp.GradScaler: start 2**16,
halved on an overflow, doubled after 2000 clean steps) and the gradients unscaled before the check.
The skipped steps per point (summed over its restarts) and the precision are recorded in the
returned Embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidcorr.config import Config
from vidcorr.method import streams
from vidcorr.method.attention import layer_maps
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.encode_cache import EncodeCache
from vidcorr.method.geometry import (
    CropWindow,
    check_image,
    check_points,
    crop_resize,
    draw_window,
    gaussian_targets,
    point_in_crop,
    squash_points,
    to_model_image,
)
from vidcorr.method.microbatch import auto_batch, chunks
from vidcorr.method.model import LDM
from vidcorr.method.plan import image_size, make_plan, prepare

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called after each unit of work (a fit step, a locate crop)."""


@dataclass(frozen=True)
class _FitDraw:
    flipped: bool
    window: CropWindow
    target_xy: tuple[float, float]
    noise: torch.Tensor


def _draw(point_model: np.ndarray, cfg: Config, side: int, latent_shape: tuple[int, ...],
          generator: torch.Generator) -> _FitDraw:
    """One fit step's random choices for one sample, in the seed's order: flip, crop x, crop y, noise."""
    size = image_size(cfg)
    flipped = bool(torch.rand((), generator=generator) < cfg.flip_prob)
    x, y = float(point_model[0]), float(point_model[1])
    if flipped:
        x = size - x
    window = draw_window((x, y), size, side, cfg.crop_margin, generator)
    noise = streams.draw_noise(cfg.noise, latent_shape, generator)
    return _FitDraw(flipped, window, point_in_crop((x, y), window, size), noise)


def _initial_contexts(ldm: LDM, cfg: Config, point_ids: Sequence[int]) -> torch.Tensor:
    """(N * R, T, D) starting embeddings: N(0, 1) per sample stream, or the init prompt's encoding."""
    if cfg.init_prompt:
        # transformers (the text encoder) loads only for an init prompt; the seed never uses it
        from vidcorr.method.text_init import prompt_embedding

        start = prompt_embedding(ldm, cfg.init_prompt, cfg.num_tokens)
        return start[None].repeat(len(point_ids) * cfg.restarts, 1, 1)
    return torch.stack([
        torch.randn((cfg.num_tokens, ldm.context_dim), generator=streams.stream(cfg.seed, streams.INIT, pid, r))
        for pid in point_ids for r in range(cfg.restarts)])


def _prepare(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config,
             point_ids: Sequence[int] | None) -> tuple[torch.Tensor, np.ndarray, list[int], tuple[int, int]]:
    image = check_image(image)
    size_wh = (image.shape[1], image.shape[0])
    points = check_points(points_xy, size_wh)
    ids = streams.point_ids(point_ids, len(points))
    size = image_size(cfg)
    model_image = to_model_image(image, size, ldm.device)
    return model_image, squash_points(points, size_wh, size), ids, size_wh


def _finish(ldm: LDM, contexts: torch.Tensor, points: np.ndarray, size_wh: tuple[int, int],
            cfg: Config, frames: np.ndarray | None, skipped: np.ndarray | None = None) -> Embeddings:
    tensors = contexts.detach().float().cpu().reshape(len(points), cfg.restarts, cfg.num_tokens, -1)
    skipped = np.zeros(len(points), dtype=np.int64) if skipped is None else np.asarray(skipped, dtype=np.int64)
    return Embeddings(tensors, np.asarray(points, dtype=np.float64), size_wh, cfg, ldm.model_id,
                      ldm.fingerprint(), frames, precision=precision_name(ldm), skipped_steps=skipped)


def precision_name(ldm: LDM) -> str:
    """How the networks compute: ``float32``/``float16``/``bfloat16`` (the weights' dtype, no autocast) or
    ``autocast-float16``/``autocast-bfloat16`` (float32 weights under torch.autocast)."""
    if ldm.autocast is not None:
        return f"autocast-{ldm.autocast_name}"
    return str(ldm.dtype).removeprefix("torch.")


def _grad(param: torch.Tensor) -> torch.Tensor:
    assert param.grad is not None, "gradients are read after backward()"
    return param.grad


class LossScale:
    """Dynamic fp16 loss scaling (torch.amp.GradScaler's schedule) with a per-sample overflow check."""

    def __init__(self, enabled: bool, init_scale: float = 2.0**16, growth_interval: int = 2000) -> None:
        self.enabled = enabled
        self.scale = init_scale if enabled else 1.0
        self.growth_interval = growth_interval
        self._clean = 0

    def finite_samples(self, params: Sequence[torch.Tensor]) -> list[bool]:
        """Unscale every sample's gradient in place; True where all of it is finite. One device sync."""
        grads = [_grad(p) for p in params]
        if self.enabled:
            torch._foreach_mul_(grads, 1.0 / self.scale)
        return torch.stack([torch.isfinite(g).all() for g in grads]).tolist()

    def update(self, overflow: bool) -> None:
        if not self.enabled:
            return
        if overflow:
            self.scale *= 0.5
            self._clean = 0
            return
        self._clean += 1
        if self._clean == self.growth_interval:
            self.scale *= 2.0
            self._clean = 0


def fit(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config | None = None,
        progress: Progress | None = None, point_ids: Sequence[int] | None = None,
        frames: np.ndarray | None = None) -> Embeddings:
    """Fit embeddings for `points_xy` on `image`, all points x restarts batched.

    Args:
        ldm: the model.
        image: (H, W, 3) uint8 RGB, any size and aspect (squashed to cfg.image_size).
        points_xy: (N, 2) float x, y in the image's pixels (pixel centres at +0.5).
        cfg: the hyper-parameters (default ``Config()``, the seed's).
        progress: ``progress("fit", done, total)`` after each optimisation step.
        point_ids: keys of the points' random streams (default 0..N-1); equal ids and seed give equal
            draws, whatever else is in the batch.
        frames: (N,) int frame of each point, stored with the embeddings (video queries).

    Returns:
        Embeddings with tensors (N, R, 77, D) float32 (R = cfg.restarts, D the UNet's cross-attention width),
        their precision and, under autocast, the steps each point skipped (non-finite gradients; see the
        module docstring).
    """
    cfg = prepare(ldm, cfg)
    model_image, points_model, ids, size_wh = _prepare(ldm, image, points_xy, cfg, point_ids)
    flipped_image = model_image.flip(-1)
    plan = make_plan(ldm, cfg, cfg.fit_timestep_index)
    batch = auto_batch(ldm, cfg, training=True)

    samples = [(points_model[n], streams.stream(cfg.seed, streams.FIT, pid, r))
               for n, pid in enumerate(ids) for r in range(cfg.restarts)]
    # One leaf (and one Adam state) per sample, so that a sample can skip a step alone; Adam is
    # elementwise, so this is the same math as one (N * R, T, D) parameter.
    params = [c.to(ldm.device).requires_grad_(True) for c in _initial_contexts(ldm, cfg, ids)]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    checked = ldm.autocast is not None
    scaler = LossScale(enabled=ldm.autocast == torch.float16)
    skipped = np.zeros(len(params), dtype=np.int64)
    images = {False: model_image, True: flipped_image}
    cache = EncodeCache(ldm, plan.size, batch)

    for step in range(cfg.num_steps):
        draws = [_draw(point, cfg, plan.side, plan.latent_shape, gen) for point, gen in samples]
        with torch.no_grad():
            clean = cache.latents(images, [d.flipped for d in draws], [d.window for d in draws])
            latents = ldm.add_noise(clean, torch.stack([d.noise for d in draws]), plan.timestep)
            targets = gaussian_targets(torch.tensor([d.target_xy for d in draws], device=ldm.device),
                                       plan.size, cfg.sigma)
        for part in chunks(len(draws), batch):
            contexts = torch.stack(params[part])
            maps = ldm.attention_maps(latents[part], plan.timestep, contexts, plan.layers, cfg.heads,
                                      cfg.token_index, stop_early=cfg.stop_early)
            predicted = layer_maps(maps, cfg.layers, plan.size, heads_first=True)
            # Sum of per-sample MSEs: each sample's gradient is the one it would get alone.
            loss = ((predicted - targets[part, None]) ** 2).mean(dim=(1, 2, 3)).sum()
            (loss * scaler.scale if scaler.enabled else loss).backward()
        if checked:
            finite = scaler.finite_samples(params)
            for i, ok in enumerate(finite):
                if not ok:  # Adam leaves a parameter without a gradient alone: no step, no state change
                    params[i].grad = None
                    skipped[i] += 1
            scaler.update(overflow=not all(finite))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if progress is not None:
            progress("fit", step + 1, cfg.num_steps)
    per_point = skipped.reshape(len(ids), cfg.restarts).sum(axis=1)
    return _finish(ldm, torch.stack(params), points_xy, size_wh, cfg, frames, per_point)


def fit_reference(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config | None = None,
                  progress: Progress | None = None, point_ids: Sequence[int] | None = None) -> Embeddings:
    """The seed's schedule, literally: per point, per restart, batch 1, a VAE encode every step,
    the full UNet with explicit attention everywhere, every head upsampled before averaging.

    Same inputs and outputs as `fit`; slow by design (the benchmark's yardstick).
    """
    cfg = prepare(ldm, cfg)
    model_image, points_model, ids, size_wh = _prepare(ldm, image, points_xy, cfg, point_ids)
    flipped_image = model_image.flip(-1)
    plan = make_plan(ldm, cfg, cfg.fit_timestep_index)
    starts = _initial_contexts(ldm, cfg, ids)
    total, done = len(ids) * cfg.restarts * cfg.num_steps, 0

    fitted = []
    for n, pid in enumerate(ids):
        for r in range(cfg.restarts):
            generator = streams.stream(cfg.seed, streams.FIT, pid, r)
            context = starts[n * cfg.restarts + r][None].clone().to(ldm.device).requires_grad_(True)
            optimizer = torch.optim.Adam([context], lr=cfg.lr)
            for _ in range(cfg.num_steps):
                draw = _draw(points_model[n], cfg, plan.side, plan.latent_shape, generator)
                with torch.no_grad():
                    crop = crop_resize([flipped_image if draw.flipped else model_image], [draw.window], plan.size)
                    latent = ldm.add_noise(ldm.encode(crop), draw.noise[None], plan.timestep)
                maps = ldm.attention_maps(latent, plan.timestep, context, plan.layers, cfg.heads, cfg.token_index,
                                          stop_early=False, explicit_everywhere=True)
                predicted = layer_maps(maps, cfg.layers, plan.size, heads_first=False)[0]
                target = gaussian_targets(torch.tensor([draw.target_xy], device=ldm.device), plan.size, cfg.sigma)
                loss = torch.nn.functional.mse_loss(predicted, target.expand_as(predicted))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                done += 1
                if progress is not None:
                    progress("fit", done, total)
            fitted.append(context.detach()[0])
    return _finish(ldm, torch.stack(fitted), points_xy, size_wh, cfg, None)
